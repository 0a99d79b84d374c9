"""Calibrated similarity scores: a monotone map from cosine similarity to [0, 1].

The meaning (on the population it was fitted on): a score ``s`` >= 0.5 corresponds to a
false-match rate of ``10 ** -(3 + (s - 0.7) / 0.1)`` — 0.7 is 1 in 1,000, every 0.1 more is
a factor of 10 fewer false matches (0.67 ~ 1 in 500, 0.8 ~ 1 in 10,000). Below 0.5 (FMR above
10 %) the score only orders pairs; it falls linearly to 0 at cosine -1.

A calibration is data: a small versioned JSON file in ``facecmp/calibrations/`` naming the
dataset and method it was fitted on and the pipeline it belongs to, written by
``training/fit_calibration.py``. Loading one for another pipeline raises; nothing falls back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from facecmp.errors import CalibrationError

FORMAT_VERSION = 1
ANCHOR_SCORE = 0.7
ANCHOR_FMR = 1e-3
SCORE_PER_DECADE = 0.1
#: Below this score the map carries no false-match-rate promise (FMR > 10 %).
PROMISE_FLOOR = 0.5


def fmr_promised(score: float | np.ndarray) -> float | np.ndarray:
    """The false-match rate a calibrated score stands for (valid for scores >= 0.5)."""
    return ANCHOR_FMR * 10.0 ** (-(np.asarray(score, float) - ANCHOR_SCORE) / SCORE_PER_DECADE)


def score_for_fmr(fmr: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`fmr_promised`."""
    return ANCHOR_SCORE - SCORE_PER_DECADE * np.log10(np.asarray(fmr, float) / ANCHOR_FMR)


@dataclass(frozen=True)
class Calibration:
    """Piecewise-linear monotone map; ``cosine`` and ``score`` knots both increasing."""

    id: str
    pipeline: dict
    dataset: str
    method: str
    cosine_knots: np.ndarray
    score_knots: np.ndarray
    info: dict
    # Per embedder of the pipeline: its (D,) mean embedding to subtract, or None (not centred).
    centres: tuple[np.ndarray | None, ...] = ()

    def score(self, cosine: float | np.ndarray) -> float | np.ndarray:
        """Calibrated score in [0, 1] for cosine similarities in [-1, 1]; keeps the input shape."""
        values = np.interp(np.asarray(cosine, float), self.cosine_knots, self.score_knots)
        return float(values) if np.ndim(values) == 0 else values

    def cosine_at(self, score: float) -> float:
        """The cosine similarity at which the calibrated score equals ``score``."""
        return float(np.interp(score, self.score_knots, self.cosine_knots))

    fmr_at_score = staticmethod(fmr_promised)

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION, "id": self.id, "pipeline": self.pipeline,
            "dataset": self.dataset, "method": self.method,
            "anchor": {"score": ANCHOR_SCORE, "fmr": ANCHOR_FMR, "score_per_decade": SCORE_PER_DECADE},
            "knots": {"cosine": [round(float(c), 7) for c in self.cosine_knots],
                      "score": [round(float(s), 7) for s in self.score_knots]},
            "centres": [None if c is None else [round(float(v), 7) for v in c] for c in self.centres],
            **self.info,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        if data.get("format_version") != FORMAT_VERSION:
            raise CalibrationError(f"calibration format {data.get('format_version')} is not {FORMAT_VERSION}")
        cosine, score = np.array(data["knots"]["cosine"], float), np.array(data["knots"]["score"], float)
        if len(cosine) != len(score) or np.any(np.diff(cosine) <= 0) or np.any(np.diff(score) < 0):
            raise CalibrationError(f"calibration {data.get('id')}: knots are not monotone")
        centres = tuple(None if c is None else np.array(c, np.float32) for c in data.get("centres", []))
        info = {k: v for k, v in data.items()
                if k not in ("format_version", "id", "pipeline", "dataset", "method", "anchor", "knots", "centres")}
        return cls(data["id"], data["pipeline"], data["dataset"], data["method"], cosine, score, info, centres)


def load_calibration(mode: str, pipeline: dict, path: str | Path | None = None) -> Calibration:
    """The packaged calibration of ``mode`` (or the file at ``path``), checked against ``pipeline``."""
    try:
        if path is None:
            text = resources.files("facecmp.calibrations").joinpath(f"{mode}.json").read_text()
        else:
            text = Path(path).read_text()
        calibration = Calibration.from_dict(json.loads(text))
    except (FileNotFoundError, json.JSONDecodeError, KeyError) as exc:
        raise CalibrationError(f"no usable calibration for mode {mode!r}: {exc}") from exc
    if calibration.pipeline != pipeline:
        raise CalibrationError(
            f"calibration {calibration.id} was fitted for pipeline {calibration.pipeline}, not {pipeline}; "
            "refit it with training/fit_calibration.py"
        )
    wanted = [bool(e.get("centred")) for e in pipeline["embedders"]]
    if [c is not None for c in calibration.centres] != wanted:
        raise CalibrationError(f"calibration {calibration.id} lacks the embedding centres its pipeline needs; "
                               "refit it with training/fit_calibration.py")
    return calibration
