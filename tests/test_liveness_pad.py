"""eval/liveness_pad.py's rates come from eval.metrics (APCER = FMR over attacks, BPCER =
FNMR over live faces) and give what the former hand-written grid search gave."""
from __future__ import annotations

import numpy as np
import pytest

from eval.liveness_pad import error_rates, pick_threshold


def grid_search(spoof: np.ndarray, max_apcer: float) -> float:
    """The search this replaced, kept as the reference."""
    for threshold in np.round(np.arange(0.01, 1.0, 0.01), 2):
        if np.mean(spoof >= threshold) <= max_apcer:
            return float(threshold)
    return 0.99


@pytest.mark.parametrize("seed", range(5))
def test_threshold_and_rates_match_the_plain_definitions(seed):
    rng = np.random.default_rng(seed)
    live, spoof = rng.beta(5, 1, 214), rng.beta(1, 4, 617)
    spoof[:3] = [0.45, 0.45, 0.9]  # ties on grid points
    for max_apcer in (0.0, 0.005, 0.01, 0.05, 0.2):
        assert pick_threshold(live, spoof, max_apcer) == grid_search(spoof, max_apcer)
    rates = error_rates(live, spoof, 0.45)
    assert rates["apcer"] == np.mean(spoof >= 0.45) and rates["bpcer"] == np.mean(live < 0.45)
    assert (rates["n_live"], rates["n_spoof"]) == (214, 617)
    assert pick_threshold(live, np.full(5, 0.995), 0.0) == 0.99  # no grid point passes
