"""The score contract: what a calibrated score promises, and the cutoffs the tools default to.

A calibrated score ``s >= PROMISE_FLOOR`` stands for a false-match rate of
``ANCHOR_FMR * 10 ** (-(s - ANCHOR_SCORE) / SCORE_PER_DECADE)``
(:func:`facecmp.calibration.fmr_promised`): 0.7 is 1 in 1,000, and every 0.1 more is ten times
fewer false matches. These numbers are stated here once; the calibration, the pipeline, the
CLI, the service (its settings and its schema text) and eval take them from this module
(``tests/test_contract.py`` checks each surface). Nothing here imports anything.
"""
from __future__ import annotations

ANCHOR_SCORE = 0.7
ANCHOR_FMR = 1e-3
SCORE_PER_DECADE = 0.1
#: Below this score the map carries no false-match-rate promise (FMR > 10 %).
PROMISE_FLOOR = 0.5

#: ``is_match`` cutoff of the library, the CLI and the service unless a caller sets one: the anchor.
DEFAULT_SCORE_CUTOFF = ANCHOR_SCORE
#: The second cutoff eval reports, for photos years apart: about 1 in 500 (docs/score.md, "What
#: 0.7 and 0.67 mean, and do not mean").
CROSS_AGE_SCORE_CUTOFF = 0.67
#: How far a measured false-match rate may miss the promise (either way) before the answer says
#: so: where pairs were measured beyond it, ``within_calibration`` is False.
PROMISE_TOLERANCE = 3.0
