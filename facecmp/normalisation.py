"""Score normalisation: one cutoff, one false-match rate, whoever is in the photos.

A raw cosine does not mean the same thing for every face. These embedders put faces of some
groups (young children, Asian adults, ...) closer together than others, so a fixed cosine
cutoff lets through up to 100 times more different-person pairs there than on LFW. The
normaliser turns a pair's cosine into a *normalised similarity* whose impostor distribution
is (nearly) the same for every face, using nothing but the two embeddings:

1. **Adaptive symmetric normalisation (AS-norm)** against an impostor *cohort* that spans
   ages and groups: for each face, the mean and standard deviation of its ``top_k`` highest
   cosines with the cohort say how crowded its neighbourhood is;
   ``z = ((cos - mean_a) / std_a + (cos - mean_b) / std_b) / 2``.
2. **Age shift.** AS-norm over-corrects children (their neighbourhoods are crowded, yet an
   impostor pair of two children is not proportionally closer), so ``z`` is shifted by a
   piecewise-linear function of the *younger* face's estimated age, clamped at
   ``age_clamp`` (adults all share one shift). The age comes from a linear model on the
   embedding (``log1p(age)``), fitted with the shift.
3. **Quality shift.** Blurred, small, noisy or scanned faces lose identity: their embeddings
   drift towards one another, so two poor photos of different people look alike. Each face's
   *quality* is a linear model on its embedding that predicts how close it stays to the
   embedding of the same photo undegraded (the cosine between the two; 1 = unchanged), fitted on
   seeded degraded copies (``training/degrade.py``) as a pseudo-label. ``z`` is further shifted
   by a piecewise-linear, non-negative function of the pair's *higher* quality: a poor photo
   beside a good one is no more alike a stranger than usual (measured), two poor photos are.
4. **Old-print shift.** Real old photographs (scanned prints: faded colour, sepia, grain, the
   look of an era) crowd together far more than any degradation we can make: two old prints of
   different people match at 0.7 some 20 times more often than promised. Each face's *old-print*
   figure is a logistic model on its embedding (the probability that it is a real old print),
   fitted on real old photos against ordinary ones; ``z`` is shifted by a non-negative,
   non-decreasing function of the pair's *lower* figure: both photos must be old prints.

All four are fitted by ``training/fit_calibration.py``: the cohort and the age model on a
labelled face set (by default utkface-dev's fit half, with the old photos of the fit people), the
age shift on impostor pairs of it and of LFW folds 1-5, the quality model and the quality shift on
those faces and their seeded degraded copies, the old-print model and shift on real old photos
(by default fgnet-dev's fit people) against those faces. The cohort and the three models' weights
are stored beside the mode's calibration as ``<mode>-normaliser.npz``, the shifts' knots in its
JSON, and the data named in its provenance. The calibration then maps the normalised similarity
to the score.

Shapes: ``embeddings`` (N, D) unit-norm; :class:`FaceStats` arrays (N,); pair functions
broadcast their arguments like NumPy (pass ``stats.column()`` for a matrix of pairs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: A cohort cosine this high is the query photo itself (a cohort photo sent as a query).
SELF_MATCH_COSINE = 0.9999
#: Up to this many faces, cohort cosines are computed without BLAS's thread pool (see face_stats).
FEW_FACES = 16


@dataclass(frozen=True)
class FaceStats:
    """What the normaliser needs of each face: (N,) arrays, or broadcastable ones."""

    cohort_mean: np.ndarray
    cohort_std: np.ndarray
    estimated_age: np.ndarray
    quality: np.ndarray
    old_print: np.ndarray

    def __getitem__(self, index) -> "FaceStats":
        return FaceStats(self.cohort_mean[index], self.cohort_std[index], self.estimated_age[index],
                         self.quality[index], self.old_print[index])

    def column(self) -> "FaceStats":
        """(N, 1) views, so that a pair function of rows x columns broadcasts to (N, M)."""
        return self[:, None]

    @classmethod
    def neutral(cls, n: int) -> "FaceStats":
        """Statistics under which AS-norm leaves a cosine as it is (mean 0, spread 1; age and
        quality and old-print figure unknown): what a calibration without a normaliser reports."""
        zeros = np.zeros(n, np.float32)
        return cls(zeros, zeros + 1, zeros + np.nan, zeros + np.nan, zeros + np.nan)


def asnorm(cosine, a: FaceStats, b: FaceStats) -> np.ndarray:
    """Adaptive symmetric normalisation of pairs (a, b) with cosine ``cosine`` (broadcasting)."""
    return 0.5 * ((cosine - a.cohort_mean) / a.cohort_std + (cosine - b.cohort_mean) / b.cohort_std)


@dataclass(frozen=True)
class ScoreNormaliser:
    """Cohort, age and quality models and their shifts, of one pipeline mode (see the module docstring).

    cohort : (M, D) unit-norm embeddings of the mode's pipeline.
    age_weights, age_bias : ``log1p(age) ~ embedding @ age_weights + age_bias``.
    shift_ages, shift_values : knots of the shift subtracted from AS-norm, by the younger
        face's estimated age (clamped at ``age_clamp``).
    quality_weights, quality_bias : ``quality ~ embedding @ quality_weights + quality_bias``,
        clipped to [0, 1].
    shift_qualities, shift_quality_values : knots of the shift subtracted by the pair's higher
        quality (0 from the last knot up).
    old_print_weights, old_print_bias : ``logit P(old print) = embedding @ old_print_weights +
        old_print_bias``; None: the calibration was fitted without old photos, every face 0.
    shift_old_prints, shift_old_print_values : knots of the shift subtracted by the pair's lower
        old-print figure (0 below the first knot).
    """

    cohort: np.ndarray
    top_k: int
    age_weights: np.ndarray
    age_bias: float
    age_clamp: float
    shift_ages: np.ndarray
    shift_values: np.ndarray
    quality_weights: np.ndarray
    quality_bias: float
    shift_qualities: np.ndarray
    shift_quality_values: np.ndarray
    old_print_weights: np.ndarray | None = None
    old_print_bias: float = 0.0
    shift_old_prints: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    shift_old_print_values: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def face_stats(self, embeddings: np.ndarray, *, block: int = 8192) -> FaceStats:
        """Cohort statistics and estimated age of (N, D) embeddings."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        mean = np.empty(len(embeddings), np.float32)
        std = np.empty(len(embeddings), np.float32)
        for start in range(0, len(embeddings), block):
            chunk = embeddings[start:start + block]
            # A compare's few faces by einsum, on the calling thread: OpenBLAS hands even a
            # 2-row product to its thread pool, whose threads then spin for ~0.1 s on the
            # cores the next detection and embedding need (measured: a compare's embedding
            # 8.7 -> 14 ms on 2 cores). Many faces (fitting, eval) keep BLAS's threads.
            if len(chunk) <= FEW_FACES:
                cosines = np.einsum("nd,md->nm", chunk, self.cohort)
            else:
                cosines = chunk @ self.cohort.T
            cosines[cosines > SELF_MATCH_COSINE] = -1.0
            top = np.partition(cosines, -self.top_k, axis=1)[:, -self.top_k:]
            mean[start:start + block], std[start:start + block] = top.mean(axis=1), top.std(axis=1)
        age = np.expm1(embeddings @ self.age_weights + self.age_bias)
        quality = np.clip(embeddings @ self.quality_weights + self.quality_bias, 0.0, 1.0)
        return FaceStats(mean, np.maximum(std, 1e-6), np.clip(age, 0.0, None).astype(np.float32),
                         quality.astype(np.float32), self.old_print(embeddings))

    def old_print(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) probability that each of (N, D) embeddings is a real old print (0 without the model)."""
        if self.old_print_weights is None:
            return np.zeros(len(embeddings), np.float32)
        logit = np.clip(embeddings @ self.old_print_weights + self.old_print_bias, -30.0, 30.0)
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    def normalise(self, cosine, a: FaceStats, b: FaceStats) -> np.ndarray:
        """Normalised similarity of pairs (a, b) with cosine ``cosine`` (broadcasting)."""
        return (asnorm(np.asarray(cosine, np.float32), a, b)
                - self.age_shift(np.minimum(a.estimated_age, b.estimated_age))
                - self.quality_shift(np.maximum(a.quality, b.quality))
                - self.old_print_shift(np.minimum(a.old_print, b.old_print)))

    def age_shift(self, younger_age) -> np.ndarray:
        return np.interp(np.minimum(younger_age, self.age_clamp), self.shift_ages, self.shift_values)

    def quality_shift(self, pair_quality) -> np.ndarray:
        return np.interp(pair_quality, self.shift_qualities, self.shift_quality_values)

    def old_print_shift(self, pair_old_print) -> np.ndarray:
        return np.interp(pair_old_print, self.shift_old_prints, self.shift_old_print_values)

    def to_arrays(self) -> dict[str, np.ndarray]:
        old_print = {} if self.old_print_weights is None else {"old_print_weights": self.old_print_weights.astype(np.float32)}
        return {"cohort": self.cohort.astype(np.float16), "age_weights": self.age_weights.astype(np.float32),
                "quality_weights": self.quality_weights.astype(np.float32), **old_print}

    def to_dict(self) -> dict:
        return {"top_k": self.top_k, "cohort_size": len(self.cohort), "age_bias": float(self.age_bias),
                "age_clamp": float(self.age_clamp),
                "shift": {"age": [round(float(v), 4) for v in self.shift_ages],
                          "value": [round(float(v), 5) for v in self.shift_values]},
                "quality_bias": float(self.quality_bias),
                "quality_shift": {"quality": [round(float(v), 4) for v in self.shift_qualities],
                                  "value": [round(float(v), 5) for v in self.shift_quality_values]},
                "old_print_bias": float(self.old_print_bias),
                "old_print_shift": {"old_print": [round(float(v), 4) for v in self.shift_old_prints],
                                    "value": [round(float(v), 5) for v in self.shift_old_print_values]}}

    @classmethod
    def from_parts(cls, data: dict, arrays) -> "ScoreNormaliser":
        return cls(np.asarray(arrays["cohort"], np.float32), int(data["top_k"]),
                   np.asarray(arrays["age_weights"], np.float32), float(data["age_bias"]),
                   float(data["age_clamp"]), np.array(data["shift"]["age"], float),
                   np.array(data["shift"]["value"], float), np.asarray(arrays["quality_weights"], np.float32),
                   float(data["quality_bias"]), np.array(data["quality_shift"]["quality"], float),
                   np.array(data["quality_shift"]["value"], float),
                   np.asarray(arrays["old_print_weights"], np.float32) if "old_print_weights" in arrays else None,
                   float(data["old_print_bias"]), np.array(data["old_print_shift"]["old_print"], float),
                   np.array(data["old_print_shift"]["value"], float))
