"""Calibrated similarity scores: pair of embeddings -> score in [0, 1] with a false-match meaning.

The meaning: a score ``s`` >= 0.5 corresponds to a false-match rate of
``10 ** -(3 + (s - 0.7) / 0.1)`` — 0.7 is 1 in 1,000, every 0.1 more is a factor of 10 fewer
false matches (0.67 ~ 1 in 500, 0.8 ~ 1 in 10,000). Below 0.5 (FMR above 10 %) the score only
orders pairs. The score is a monotone piecewise-linear map of the pair's *similarity*: its
cosine normalised by :mod:`facecmp.normalisation` (cohort AS-norm, an age shift and a quality
shift), so that the meaning holds across ages, groups and poor photos, not only on the
population the map was fitted on.

A calibration is data: a small versioned JSON file in ``facecmp/calibrations/`` naming the
dataset and method it was fitted on and the pipeline it belongs to, and beside it
``<mode>-normaliser.npz`` (the cohort's embeddings and the age and quality models' weights,
pinned by sha256 in the JSON), both written by ``training/fit_calibration.py``, with the
figures measured on data the fit held out (``info["heldout"]``). Loading one for another
pipeline raises; nothing falls back.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, PROMISE_FLOOR, PROMISE_TOLERANCE, SCORE_PER_DECADE
from facecmp.errors import CalibrationError
from facecmp.normalisation import FaceStats, ScoreNormaliser

FORMAT_VERSION = 4   # 4: the old-print model and shift; coverage limits measured, not percentiles
#: A face is flagged for one of these (Calibration.face_flags); the first three make a photo poor.
POOR_PHOTO_REASONS = ("quality", "face_width", "old_print")
FACE_REASONS = POOR_PHOTO_REASONS + ("cohort_similarity",)


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


def _figure(description: str, low: float | None = None, high: float | None = None) -> Any:
    """A field of :class:`FaceTrust`: None until measured; ``description`` documents it (the
    service's OpenAPI text too), ``low`` and ``high`` bound it."""
    return field(default=None, metadata={"description": description, "ge": low, "le": high})


@dataclass(frozen=True, eq=False)
class FaceTrust(Mapping):
    """Where one face falls among the faces its calibration was fitted on: the one declaration of
    the trust figures (``FaceReport.trust``).

    A figure that was not measured is None and left out of the mapping: without a normaliser
    there is no age, cohort similarity or quality, without coverage grids no percentiles, and a
    candidate pipeline (no calibration) has none. It reads as the dict it replaced
    (``trust["quality"]``, ``"estimated_age_note" in trust``, ``trust.items()``, ``== {}``);
    :meth:`to_dict` is what the library's ``to_dict``, the CLI's JSON and the service's
    ``faces[i]`` carry, and serve/schemas.py builds the service's response fields from these
    fields, their types, descriptions and ranges (tests/test_serve_api.py holds the two equal).

    Adding a figure is an edit here only: a field ``name: float | None = _figure("what it is",
    low, high)`` and its value in :meth:`measure`. The notebook card, the CLI's JSON, the
    service's answer and its OpenAPI text follow (eval computes its label columns from the
    embeddings: ``eval/groups.py:pipeline_columns``). Field order is the order they show in.
    """

    estimated_age: float | None = _figure("Age in years estimated from the embedding (clamped to the ages the age "
                                          "model was fitted on).")
    estimated_age_note: str | None = _figure("Present when the age model extrapolates (the estimate is then clamped "
                                             "to the ages it was fitted on); the score is unaffected.")
    cohort_similarity: float | None = _figure(
        "Mean of the face's top cosines with the normalisation cohort: how crowded its neighbourhood of faces is "
        "(children and some groups sit closer together).")
    quality: float | None = _figure(
        "Image quality of the face, from its embedding alone: the predicted cosine between this embedding and that "
        "of the same photo undegraded (1: sharp; blur, small size, noise and old prints lower it). The score "
        "corrects for it and, when both faces are below the calibration's floor, says so in `calibration_notes`.", 0, 1)
    old_print: float | None = _figure(
        "How likely the photo is a real old print (scanned, faded, sepia), from its embedding alone. Two old prints "
        "of different people look alike: the score corrects for it and, where the calibration measured it still "
        "missing the promise, says so in `calibration_notes`.", 0, 1)
    cohort_similarity_percentile: float | None = _figure("Its cohort similarity's percentile among the calibration "
                                                         "faces.", 0, 100)
    quality_percentile: float | None = _figure("Its quality's percentile among the (undegraded) calibration faces.",
                                               0, 100)
    face_width_percentile: float | None = _figure(
        "The face's width in pixels as a percentile of the calibration faces' (a resolution figure: low means "
        "smaller faces than it was fitted on).", 0, 100)

    @classmethod
    def measure(cls, stats: FaceStats, face, coverage: dict, *, normalised: bool) -> "FaceTrust":
        """The figures of one face (its ``stats`` and :class:`~facecmp.faces.Face`) against a
        calibration's ``coverage``; ``normalised``: the calibration has a normaliser (which the
        age, cohort and quality figures come from)."""
        figures: dict[str, Any] = {}
        if normalised:
            age = float(stats.estimated_age)
            low, high = coverage.get("age_range", (0.0, np.inf))
            figures["estimated_age"] = round(float(np.clip(age, low, high)), 1)
            if not low <= age <= high:
                figures["estimated_age_note"] = (f"the age model is extrapolating (raw estimate {age:.0f}, fitted on "
                                                 f"ages {low:.0f}-{high:.0f}); the score is unaffected")
            figures["cohort_similarity"] = round(float(stats.cohort_mean), 4)
            figures["quality"] = round(float(stats.quality), 3)
            figures["old_print"] = round(float(stats.old_print), 3)
        for key, value in (("cohort_similarity", stats.cohort_mean), ("quality", stats.quality),
                           ("face_width", face.width)):
            grid = coverage.get(f"{key}_percentiles")
            if grid:
                figures[f"{key}_percentile"] = round(float(np.interp(value, grid, np.linspace(0, 100, len(grid)))), 1)
        return cls(**figures)

    def to_dict(self) -> dict[str, Any]:
        """The measured figures, in field order."""
        return dict(self)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names() or getattr(self, name) is None:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._names() if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


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

    def face_trust(self, stats: FaceStats, face) -> FaceTrust:
        """One face's place among the calibration faces (:class:`FaceTrust`)."""
        return FaceTrust.measure(stats, face, self.coverage, normalised=self.normaliser is not None)

    def face_flags(self, stats: FaceStats, face_widths) -> dict[str, np.ndarray]:
        """Per face, where the calibration's measurements say the promise fails for pairs of two
        such faces, by reason (the limits in ``coverage`` are measured by
        ``training/fit_calibration.py`` on impostor pairs after every shift, not percentiles):
        ``quality`` (below the quality floor), ``face_width`` (narrower than the width below
        which pairs of two such faces missed the promise, or than any measured),
        ``cohort_similarity`` (a neighbourhood more crowded than where pairs missed the promise,
        or outside the range of every calibration face) and ``old_print`` (an old-print figure
        above the limit where pairs of two old prints still missed it)."""
        cov, widths = self.coverage, np.asarray(face_widths, float)
        none = np.zeros(np.shape(widths), bool)
        flags = {reason: none for reason in FACE_REASONS}
        if "cohort_similarity" in cov:
            flags["cohort_similarity"] = ~((cov["cohort_similarity"][0] <= stats.cohort_mean)
                                           & (stats.cohort_mean <= cov["cohort_similarity"][1]))
        if "face_width" in cov:
            flags["face_width"] = widths < cov["face_width"]
        if "quality" in cov:
            flags["quality"] = stats.quality < cov["quality"]
        if "old_print" in cov:
            flags["old_print"] = stats.old_print >= cov["old_print"]
        return flags

    def unkept_age(self, younger_age) -> np.ndarray:
        """Whether the younger face's estimated age falls in an age band whose held-out
        false-match rate at 0.7 exceeded the promise more than 3x."""
        younger, unkept = np.asarray(younger_age, float), np.zeros(np.shape(younger_age), bool)
        for band in self.coverage.get("unkept_age_bands", []):
            unkept |= (band["low"] <= younger) & (younger < band["high"])
        return unkept

    def outside(self, a: FaceStats, widths_a, b: FaceStats, widths_b) -> np.ndarray:
        """Pairs (broadcasting like :meth:`similarity`) whose score's promise may not hold: what
        ``within_calibration = False`` means, for many pairs at once. Poor photos (low quality,
        small, old prints) fail in pairs: one beside a good photo keeps the promise (measured), so
        a pair is outside when *both* faces are poor, when both lie beyond the cohort similarity
        limits (measured on pairs of two such faces), or when the younger face's age band missed
        the promise."""
        flags_a, flags_b = self.face_flags(a, widths_a), self.face_flags(b, widths_b)
        poor_a = np.logical_or.reduce([flags_a[r] for r in POOR_PHOTO_REASONS])
        poor_b = np.logical_or.reduce([flags_b[r] for r in POOR_PHOTO_REASONS])
        unusual = flags_a["cohort_similarity"] & flags_b["cohort_similarity"]
        return (poor_a & poor_b) | unusual | self.unkept_age(np.minimum(a.estimated_age, b.estimated_age))

    def coverage_notes(self, stats: FaceStats, face_widths) -> list[str]:
        """Why the score of a pair with faces ``stats`` (2,) and widths (2,) may not keep its
        promise, in words (empty when :meth:`outside` is False): each note names the face and
        the measured limit it falls beyond."""
        notes, cov = [], self.coverage
        flags = self.face_flags(stats, face_widths)
        poor = [any(flags[r][i] for r in POOR_PHOTO_REASONS) for i in range(2)]
        for i, role in enumerate(("probe", "reference")):
            if all(flags["cohort_similarity"]):
                notes.append(f"{role}: this face resembles many different people more than the calibration "
                             f"measured (cohort similarity {stats.cohort_mean[i]:.3f}, limits "
                             f"{cov['cohort_similarity'][0]:.3f}-{cov['cohort_similarity'][1]:.3f})")
            if not all(poor):
                continue
            if flags["old_print"][i]:
                notes.append(f"{role}: looks like an old print (scanned, faded or sepia photo; old-print figure "
                             f"{stats.old_print[i]:.2f}, limit {cov['old_print']:.2f})")
            if flags["quality"][i]:
                notes.append(f"{role}: low image quality (blurred, noisy, compressed or an old print; quality "
                             f"{stats.quality[i]:.2f}, limit {cov['quality']:.2f})")
            if flags["face_width"][i]:
                notes.append(f"{role}: a small face ({face_widths[i]:.0f} px wide, limit {cov['face_width']:.0f} px)")
        if all(poor):
            notes.append(f"different people in two such photos were measured to score {ANCHOR_SCORE:g} or more "
                         f"over {PROMISE_TOLERANCE:g} times as often as the score promises")
        younger = float(np.nanmin(stats.estimated_age)) if np.isfinite(stats.estimated_age).any() else None
        for band in cov.get("unkept_age_bands", []):
            if younger is not None and band["low"] <= younger < band["high"]:
                notes.append(f"younger face's estimated age {younger:.0f}: at {ANCHOR_SCORE:g} the held-out "
                             f"false-match rate of ages {band['low']}-{band['high'] - 1} was {band['fmr']:.1e}, "
                             f"over {PROMISE_TOLERANCE:g}x the promised {ANCHOR_FMR:.1e}")
        return notes

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION, "id": self.id, "pipeline": self.pipeline,
            "dataset": self.dataset, "method": self.method,
            "anchor": {"score": ANCHOR_SCORE, "fmr": ANCHOR_FMR, "score_per_decade": SCORE_PER_DECADE},
            "knots": {"similarity": [round(float(c), 7) for c in self.similarity_knots],
                      "score": [round(float(s), 7) for s in self.score_knots]},
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
        normaliser = None
        if data.get("normaliser") is not None:
            if normaliser_arrays is None:
                raise CalibrationError(f"calibration {data.get('id')} needs its normaliser file")
            normaliser = ScoreNormaliser.from_parts(data["normaliser"], normaliser_arrays)
        info = {k: v for k, v in data.items()
                if k not in ("format_version", "id", "pipeline", "dataset", "method", "anchor", "knots",
                             "normaliser", "coverage")}
        return cls(data["id"], data["pipeline"], data["dataset"], data["method"], similarity, score, info,
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
    return calibration
