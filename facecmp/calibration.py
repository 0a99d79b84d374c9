"""Calibrated similarity scores: pair of embeddings -> score in [0, 1] with a false-match meaning.

The meaning: a score ``s`` >= 0.5 corresponds to a false-match rate of
``10 ** -(3 + (s - 0.7) / 0.1)`` — 0.7 is 1 in 1,000, every 0.1 more is a factor of 10 fewer
false matches (0.67 ~ 1 in 500, 0.8 ~ 1 in 10,000). Below 0.5 (FMR above 10 %) the score only
orders pairs. The score is a monotone piecewise-linear map of the pair's *similarity*: its
cosine normalised by :mod:`facecmp.normalisation` (cohort AS-norm and an age shift), so that
the meaning holds across ages and groups, not only on the population the map was fitted on.

A calibration is data: a small versioned JSON file in ``facecmp/calibrations/`` naming the
dataset and method it was fitted on and the pipeline it belongs to, and beside it
``<mode>-normaliser.npz`` (cohort and age model, pinned by sha256), both written by
``training/fit_calibration.py``. Loading one for another pipeline raises; nothing falls back.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, PROMISE_FLOOR, SCORE_PER_DECADE
from facecmp.errors import CalibrationError
from facecmp.normalisation import FaceStats, ScoreNormaliser

FORMAT_VERSION = 2


def fmr_promised(score: float | np.ndarray) -> float | np.ndarray:
    """The false-match rate a calibrated score stands for (valid for scores >= 0.5)."""
    return ANCHOR_FMR * 10.0 ** (-(np.asarray(score, float) - ANCHOR_SCORE) / SCORE_PER_DECADE)


def score_meaning(score: float) -> str:
    """What a calibrated score stands for, in words: the share of different people who score this
    high (two significant digits), or that it carries no such promise (below 0.5)."""
    if score < PROMISE_FLOOR:
        return "below 0.5: no false-match promise (more than 1 in 10 different people score this high)"
    one_in = float(1.0 / fmr_promised(score))
    one_in = round(one_in, -max(int(np.floor(np.log10(one_in))) - 1, 0))
    return f"about 1 in {one_in:,.0f} different people score this high"


def score_for_fmr(fmr: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`fmr_promised`."""
    return ANCHOR_SCORE - SCORE_PER_DECADE * np.log10(np.asarray(fmr, float) / ANCHOR_FMR)


@dataclass(frozen=True)
class Calibration:
    """Normaliser plus a piecewise-linear monotone map; ``similarity`` and ``score`` knots both increasing.

    Without a normaliser (a calibration fitted with ``--no-cohort``) the similarity is the cosine.
    ``coverage``: the ranges of the faces it was fitted on (see :meth:`coverage_notes`).
    """

    id: str
    pipeline: dict
    dataset: str
    method: str
    similarity_knots: np.ndarray
    score_knots: np.ndarray
    info: dict
    # Per embedder of the pipeline: its (D,) mean embedding to subtract, or None (not centred).
    centres: tuple[np.ndarray | None, ...] = ()
    normaliser: ScoreNormaliser | None = field(default=None, repr=False)
    coverage: dict = field(default_factory=dict)

    def face_stats(self, embeddings: np.ndarray) -> FaceStats:
        """What the score needs of each of (N, D) embeddings besides their cosines."""
        if self.normaliser is None:
            return FaceStats.neutral(len(np.atleast_2d(embeddings)))
        return self.normaliser.face_stats(embeddings)

    def similarity(self, cosine, a: FaceStats, b: FaceStats) -> np.ndarray:
        """Normalised similarity of pairs with cosine ``cosine`` and face statistics ``a``, ``b``."""
        cosine = np.clip(np.asarray(cosine, np.float32), -1.0, 1.0)
        return cosine if self.normaliser is None else self.normaliser.normalise(cosine, a, b)

    def score_pairs(self, cosine, a: FaceStats, b: FaceStats) -> float | np.ndarray:
        """Calibrated score(s) in [0, 1] of pairs (broadcasting like :meth:`similarity`)."""
        return self.score(self.similarity(cosine, a, b))

    def score(self, similarity: float | np.ndarray) -> float | np.ndarray:
        """Calibrated score in [0, 1] of normalised similarities; keeps the input shape."""
        values = np.interp(np.asarray(similarity, float), self.similarity_knots, self.score_knots)
        return float(values) if np.ndim(values) == 0 else values

    def similarity_at(self, score: float) -> float:
        """The normalised similarity at which the calibrated score equals ``score``."""
        return float(np.interp(score, self.score_knots, self.similarity_knots))

    fmr_at_score = staticmethod(fmr_promised)

    def face_trust(self, stats: FaceStats, face) -> dict:
        """One face's place among the calibration faces: estimated age, cohort similarity and
        the percentiles of that similarity and of the face's width (a resolution figure)."""
        trust = {}
        if self.normaliser is not None:
            trust["estimated_age"] = round(float(stats.estimated_age), 1)
            trust["cohort_similarity"] = round(float(stats.cohort_mean), 4)
        for key, value in (("cohort_similarity", stats.cohort_mean), ("face_width", face.width)):
            grid = self.coverage.get(f"{key}_percentiles")
            if grid:
                trust[f"{key}_percentile"] = round(float(np.interp(value, grid, np.linspace(0, 100, len(grid)))), 1)
        return trust

    def coverage_notes(self, stats: FaceStats, face_widths) -> list[str]:
        """Why the score of a pair with faces ``stats`` (2,) and widths (2,) may not keep its
        promise: each note names a face outside what the calibration was fitted on, or an age
        band where the held-out false-match rate at 0.7 exceeded the promise more than 3x."""
        notes = []
        cov = self.coverage
        for role, mean, width in zip(("probe", "reference"), stats.cohort_mean, face_widths):
            if "cohort_similarity" in cov and not cov["cohort_similarity"][0] <= mean <= cov["cohort_similarity"][1]:
                notes.append(f"{role}: cohort similarity {mean:.3f} outside the range of 99 % of the calibration "
                             f"faces [{cov['cohort_similarity'][0]:.3f}, {cov['cohort_similarity'][1]:.3f}]")
            if "face_width" in cov and width < cov["face_width"]:
                notes.append(f"{role}: face {width:.0f} px wide, smaller than 99 % of the calibration "
                             f"faces ({cov['face_width']:.0f} px)")
        younger = float(np.nanmin(stats.estimated_age)) if np.isfinite(stats.estimated_age).any() else None
        for band in cov.get("unkept_age_bands", []):
            if younger is not None and band["low"] <= younger < band["high"]:
                notes.append(f"younger face's estimated age {younger:.0f}: at {ANCHOR_SCORE:g} the held-out "
                             f"false-match rate of ages {band['low']}-{band['high'] - 1} was {band['fmr']:.1e}, "
                             f"over 3x the promised {ANCHOR_FMR:.1e}")
        return notes

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION, "id": self.id, "pipeline": self.pipeline,
            "dataset": self.dataset, "method": self.method,
            "anchor": {"score": ANCHOR_SCORE, "fmr": ANCHOR_FMR, "score_per_decade": SCORE_PER_DECADE},
            "knots": {"similarity": [round(float(c), 7) for c in self.similarity_knots],
                      "score": [round(float(s), 7) for s in self.score_knots]},
            "centres": [None if c is None else [round(float(v), 7) for v in c] for c in self.centres],
            "normaliser": None if self.normaliser is None else self.normaliser.to_dict(),
            "coverage": self.coverage,
            **self.info,
        }

    @classmethod
    def from_dict(cls, data: dict, normaliser_arrays=None) -> "Calibration":
        if data.get("format_version") != FORMAT_VERSION:
            raise CalibrationError(f"calibration format {data.get('format_version')} is not {FORMAT_VERSION}; "
                                   "refit it with training/fit_calibration.py")
        similarity, score = np.array(data["knots"]["similarity"], float), np.array(data["knots"]["score"], float)
        if len(similarity) != len(score) or np.any(np.diff(similarity) <= 0) or np.any(np.diff(score) < 0):
            raise CalibrationError(f"calibration {data.get('id')}: knots are not monotone")
        centres = tuple(None if c is None else np.array(c, np.float32) for c in data.get("centres", []))
        normaliser = None
        if data.get("normaliser") is not None:
            if normaliser_arrays is None:
                raise CalibrationError(f"calibration {data.get('id')} needs its normaliser file")
            normaliser = ScoreNormaliser.from_parts(data["normaliser"], normaliser_arrays)
        info = {k: v for k, v in data.items()
                if k not in ("format_version", "id", "pipeline", "dataset", "method", "anchor", "knots", "centres",
                             "normaliser", "coverage")}
        return cls(data["id"], data["pipeline"], data["dataset"], data["method"], similarity, score, info, centres,
                   normaliser, data.get("coverage", {}))

    def save(self, path: str | Path) -> None:
        """Write ``path`` (JSON) and, with a normaliser, ``<stem>-normaliser.npz`` beside it."""
        path = Path(path)
        data = self.to_dict()
        if self.normaliser is not None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **self.normaliser.to_arrays())
            blob = buffer.getvalue()
            normaliser_path(path).write_bytes(blob)
            data["normaliser"]["sha256"] = hashlib.sha256(blob).hexdigest()
        path.write_text(json.dumps(data, indent=1) + "\n")


def normaliser_path(calibration_path: Path) -> Path:
    return calibration_path.with_name(f"{calibration_path.stem}-normaliser.npz")


def load_calibration(mode: str, pipeline: dict, path: str | Path | None = None) -> Calibration:
    """The packaged calibration of ``mode`` (or the file at ``path``), checked against ``pipeline``."""
    try:
        folder = resources.files("facecmp.calibrations") if path is None else Path(path).parent
        name = f"{mode}.json" if path is None else Path(path).name
        data = json.loads(folder.joinpath(name).read_text())
        arrays = None
        if data.get("normaliser") is not None:
            blob = folder.joinpath(normaliser_path(Path(name)).name).read_bytes()
            if hashlib.sha256(blob).hexdigest() != data["normaliser"].get("sha256"):
                raise CalibrationError(f"the normaliser file of calibration {data.get('id')} does not match its "
                                       "sha256; refit it with training/fit_calibration.py")
            arrays = dict(np.load(io.BytesIO(blob)))
        calibration = Calibration.from_dict(data, arrays)
    except (FileNotFoundError, json.JSONDecodeError, KeyError, ValueError) as exc:
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
