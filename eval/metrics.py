"""Verification metrics: plain functions on score arrays.

Conventions used throughout:

* A *score* is the calibrated similarity in [0, 1] of a pair (``FaceComparer.compare(...).score``,
  :meth:`facecmp.FaceComparer.score_embeddings`); higher means more alike. A comparison is a **match** (accepted) when
  ``score >= cutoff``.
* ``genuine``: scores of same-person comparisons, shape (n_genuine,).
  ``impostor``: scores of different-person comparisons, shape (n_impostor,).
* **FMR** (false match rate): fraction of impostor comparisons accepted at a cutoff.
  **FNMR** (false non-match rate): fraction of genuine comparisons rejected at a cutoff.
  **TAR** (true accept rate) = 1 - FNMR; **FAR** is used as a synonym of FMR.
* ``genuine_weight`` / ``impostor_weight``: optional non-negative counts, same shape as the
  scores, so that a histogram (bin lower edges as scores, counts as weights) stands in for
  millions of impostor scores (see :meth:`eval.scoring.AllPairs.impostor_as_weighted`).
* Intervals, two methods. Identity bootstrap (:func:`bootstrap_fmr_fnmr`,
  :func:`grouped_pair_rates`): rates are resampled by *identity*, not by comparison, because
  comparisons that share a person are not independent. Drawing identity ``i`` ``w_i``
  times weights a genuine comparison of ``i`` by ``w_i`` and an impostor comparison of
  ``i`` and ``j`` by ``w_i * w_j``. Exact binomial (Clopper-Pearson, :func:`exact_rate_interval`):
  from the counts alone, right where the comparisons are independent (pairs that share no
  person, such as a protocol's listed pairs) and too narrow where many share a person.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse
from scipy.special import betainccinv, betaincinv

from facecmp.contract import CROSS_AGE_SCORE_CUTOFF, DEFAULT_SCORE_CUTOFF

#: The reference first (the library's and the service's default cutoff), then the cross-age one.
DEFAULT_CUTOFFS = (DEFAULT_SCORE_CUTOFF, CROSS_AGE_SCORE_CUTOFF)
DEFAULT_FMR_TARGETS = (1e-2, 1e-3, 1e-4)

__all__ = [
    "DEFAULT_CUTOFFS", "DEFAULT_FMR_TARGETS", "all_pair_blocks", "fmr_fnmr", "match_counts", "roc_curve", "det_curve",
    "equal_error_rate", "fnmr_at_fmr", "tar_at_far", "cutoff_at_fmr", "min_impostors_for_fmr",
    "kfold_accuracy", "identity_counts", "bootstrap_rates", "bootstrap_fmr_fnmr", "grouped_pair_rates",
    "exact_rate_interval",
    "GroupRates", "KFoldAccuracy", "OperatingPoint", "RateIntervals",
]


class PairBlock(NamedTuple):
    """Rows ``start:stop`` of the embedding matrix against rows ``start:`` (earlier rows hold no new pair).

    cosine : (stop - start, n - start), the embeddings' dtype, raw (not clipped).
    genuine, impostor : boolean masks of the same shape: pairs i < j of one identity / of two.
    """

    start: int
    stop: int
    cosine: np.ndarray
    genuine: np.ndarray
    impostor: np.ndarray


def all_pair_blocks(embeddings, codes, *, block_size=1024, identity_blocks=False):
    """Walk every pair i < j of ``embeddings`` in blocks of rows, one matrix product each.

    Parameters
    ----------
    embeddings : ndarray of shape (n, D)
    codes : ndarray of shape (n,), identity codes
    block_size : int, keyword-only, default 1024
        Rows per block.
    identity_blocks : bool, keyword-only, default False
        With ``codes`` sorted: blocks of at least ``block_size`` rows that end at identity
        boundaries, so that one identity's rows never straddle two blocks.

    Yields
    ------
    PairBlock
        Together the blocks' masks cover each pair exactly once; memory stays at one block's
        worth of the n * (n - 1) / 2 cosines (29.6 million for LFW). Each block's product is
        taken against all rows and then cut, as the calibrations were fitted: the cosines are
        the same to the bit whatever the block sizes.

    Examples
    --------
    >>> e = np.eye(3, dtype=np.float32)
    >>> [(int(b.genuine.sum()), int(b.impostor.sum())) for b in all_pair_blocks(e, np.array([0, 0, 1]))]
    [(1, 2)]
    """
    codes = np.asarray(codes)
    n = len(codes)
    if identity_blocks:
        bounds, start = [], 0
        for end in np.r_[np.flatnonzero(codes[1:] != codes[:-1]) + 1, n]:
            if end - start >= block_size:
                bounds.append((start, int(end)))
                start = int(end)
        if start < n:
            bounds.append((start, n))
    else:
        bounds = [(start, min(start + block_size, n)) for start in range(0, n, block_size)]
    for start, stop in bounds:
        upper = np.arange(start, n)[None, :] > np.arange(start, stop)[:, None]
        same = codes[start:stop, None] == codes[None, start:]
        cosine = (embeddings[start:stop] @ embeddings.T)[:, start:]
        yield PairBlock(start, stop, cosine, upper & same, upper & ~same)


def _as_scores(scores, weight=None) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if weight is None:
        weight = np.ones_like(scores)
    else:
        weight = np.asarray(weight, dtype=np.float64).ravel()
        if weight.shape != scores.shape:
            raise ValueError(f"weight shape {weight.shape} != scores shape {scores.shape}")
    return scores, weight


def _weight_at_or_above(scores: np.ndarray, weight: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """Total weight of scores >= each cutoff, by sorting once (cheap for thousands of cutoffs)."""
    order = np.argsort(scores, kind="stable")
    cumulative = np.r_[0.0, np.cumsum(weight[order])]
    below = np.searchsorted(scores[order], cutoffs, side="left")
    return cumulative[-1] - cumulative[below]


def match_counts(genuine, impostor, *, cutoffs=DEFAULT_CUTOFFS, genuine_weight=None, impostor_weight=None):
    """Counts behind FMR and FNMR at each cutoff.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    cutoffs : sequence of float, keyword-only
        A comparison is a match when ``score >= cutoff``.
    genuine_weight, impostor_weight : array-like, optional
        Counts per score (same shape as the scores); default 1 each.

    Returns
    -------
    false_matches : ndarray of shape (n_cutoffs,)
        Impostor comparisons accepted (weighted).
    n_impostor : float
    false_non_matches : ndarray of shape (n_cutoffs,)
        Genuine comparisons rejected (weighted).
    n_genuine : float
    """
    genuine, genuine_weight = _as_scores(genuine, genuine_weight)
    impostor, impostor_weight = _as_scores(impostor, impostor_weight)
    cutoffs = np.asarray(cutoffs, dtype=np.float64).ravel()
    false_matches = _weight_at_or_above(impostor, impostor_weight, cutoffs)
    false_non_matches = genuine_weight.sum() - _weight_at_or_above(genuine, genuine_weight, cutoffs)
    return false_matches, float(impostor_weight.sum()), false_non_matches, float(genuine_weight.sum())


def fmr_fnmr(genuine, impostor, *, cutoffs=DEFAULT_CUTOFFS, genuine_weight=None, impostor_weight=None):
    """FMR and FNMR at each cutoff.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
        Scores of same-person comparisons.
    impostor : array-like of shape (n_impostor,)
        Scores of different-person comparisons.
    cutoffs : sequence of float, keyword-only, default DEFAULT_CUTOFFS (0.7, 0.67)
        A comparison is a match when ``score >= cutoff``.
    genuine_weight, impostor_weight : array-like, optional
        Counts per score; default 1 each.

    Returns
    -------
    fmr : ndarray of shape (n_cutoffs,)
        Fraction of impostor comparisons accepted (NaN if there are none).
    fnmr : ndarray of shape (n_cutoffs,)
        Fraction of genuine comparisons rejected (NaN if there are none).

    Examples
    --------
    >>> fmr, fnmr = fmr_fnmr([0.9, 0.8, 0.6, 0.2], [0.1, 0.3, 0.75, 0.05], cutoffs=[0.7])
    >>> float(fmr[0]), float(fnmr[0])
    (0.25, 0.5)
    """
    fm, n_imp, fnm, n_gen = match_counts(genuine, impostor, cutoffs=cutoffs, genuine_weight=genuine_weight,
                                         impostor_weight=impostor_weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        return fm / n_imp, fnm / n_gen


def roc_curve(genuine, impostor, *, genuine_weight=None, impostor_weight=None):
    """ROC curve of a verification system (scikit-learn's ``roc_curve``, biometric names).

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    genuine_weight, impostor_weight : array-like, optional
        Counts per score; default 1 each.

    Returns
    -------
    fmr : ndarray of shape (n_thresholds,)
        Increasing false match rates.
    tar : ndarray of shape (n_thresholds,)
        True accept rate (1 - FNMR) at the same thresholds.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing cutoffs; ``fmr[k]`` and ``tar[k]`` hold for ``score >= thresholds[k]``.
        The first is ``inf`` (nothing accepted).

    Examples
    --------
    >>> fmr, tar, thresholds = roc_curve([0.9, 0.8], [0.1, 0.3])
    >>> float(tar[fmr == 0].max())
    1.0
    """
    # scikit-learn takes seconds to import: only where a curve is drawn (so `python -m eval` can
    # refuse a missing file at once).
    from sklearn.metrics import roc_curve as _sk_roc_curve

    genuine, genuine_weight = _as_scores(genuine, genuine_weight)
    impostor, impostor_weight = _as_scores(impostor, impostor_weight)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("roc_curve needs at least one genuine and one impostor score")
    labels = np.concatenate([np.ones(genuine.size, dtype=np.int8), np.zeros(impostor.size, dtype=np.int8)])
    fmr, tar, thresholds = _sk_roc_curve(labels, np.concatenate([genuine, impostor]),
                                         sample_weight=np.concatenate([genuine_weight, impostor_weight]),
                                         drop_intermediate=False)
    return fmr, tar, thresholds


def det_curve(genuine, impostor, *, genuine_weight=None, impostor_weight=None):
    """DET curve: FNMR against FMR over all cutoffs.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    genuine_weight, impostor_weight : array-like, optional

    Returns
    -------
    fmr : ndarray of shape (n_thresholds,)
        Increasing.
    fnmr : ndarray of shape (n_thresholds,)
        Decreasing.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing cutoffs (first ``inf``).

    Examples
    --------
    >>> fmr, fnmr, _ = det_curve([0.9, 0.8], [0.1, 0.85])
    >>> [(float(a), float(b)) for a, b in zip(fmr, fnmr)]
    [(0.0, 1.0), (0.0, 0.5), (0.5, 0.5), (0.5, 0.0), (1.0, 0.0)]
    """
    fmr, tar, thresholds = roc_curve(genuine, impostor, genuine_weight=genuine_weight,
                                     impostor_weight=impostor_weight)
    return fmr, 1.0 - tar, thresholds


def equal_error_rate(genuine, impostor, *, genuine_weight=None, impostor_weight=None):
    """Equal error rate: where FMR and FNMR cross, linearly interpolated on the DET curve.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    genuine_weight, impostor_weight : array-like, optional

    Returns
    -------
    eer : float
        In [0, 1]; 0 when genuine and impostor scores are separable.
    threshold : float
        The cutoff at the DET point nearest the crossing.

    Examples
    --------
    >>> equal_error_rate([0.9, 0.8], [0.1, 0.2])[0]
    0.0
    """
    fmr, fnmr, thresholds = det_curve(genuine, impostor, genuine_weight=genuine_weight,
                                      impostor_weight=impostor_weight)
    difference = fnmr - fmr                     # decreasing from +1 to -1 along the curve
    k = int(np.argmax(difference <= 0))         # first point where FMR >= FNMR
    if k == 0 or difference[k] == 0:
        return float(fmr[k]), float(thresholds[k])
    # Interpolate between point k-1 (FNMR > FMR) and point k (FNMR <= FMR).
    t = difference[k - 1] / (difference[k - 1] - difference[k])
    eer = fmr[k - 1] + t * (fmr[k] - fmr[k - 1])
    nearest = k if t >= 0.5 else k - 1
    return float(eer), float(thresholds[nearest])


class OperatingPoint(NamedTuple):
    """Result of :func:`fnmr_at_fmr` / :func:`tar_at_far`; ``value`` None when unresolved."""

    value: float | None
    threshold: float | None
    reason: str | None


def min_impostors_for_fmr(fmr: float) -> int:
    """Impostor comparisons needed before an FMR of ``fmr`` is resolved: ``ceil(3 / fmr)``.

    The rule of three: with zero false matches among ``n`` impostors, the 95% upper bound
    on the FMR is about ``3 / n``; fewer impostors than ``3 / fmr`` cannot show FMR <= fmr.
    """
    return math.ceil(3.0 / fmr - 1e-9)


def fnmr_at_fmr(genuine, impostor, *, fmr=1e-3, genuine_weight=None, impostor_weight=None):
    """FNMR at the lowest cutoff whose FMR does not exceed ``fmr``.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    fmr : float, keyword-only, default 1e-3
        Target false match rate.
    genuine_weight, impostor_weight : array-like, optional

    Returns
    -------
    fnmr : float or None
        None when fewer than :func:`min_impostors_for_fmr` impostor comparisons are given.
    threshold : float or None
        The cutoff reaching it.
    reason : str or None
        Why ``fnmr`` is None.

    Examples
    --------
    >>> fnmr, threshold, _ = fnmr_at_fmr([0.9, 0.8, 0.4], [0.1] * 296 + [0.5] * 4, fmr=1e-2)
    >>> round(fnmr, 4), threshold
    (0.3333, 0.8)
    >>> fnmr_at_fmr([0.9], [0.1] * 100, fmr=1e-3).reason
    'needs >= 3000 impostor comparisons to resolve FMR 0.001 (rule of three), have 100'
    """
    _, impostor_weight_ = _as_scores(impostor, impostor_weight)
    n_impostor = float(impostor_weight_.sum())
    needed = min_impostors_for_fmr(fmr)
    if n_impostor < needed:
        return OperatingPoint(None, None, f"needs >= {needed} impostor comparisons to resolve FMR {fmr:g} "
                                          f"(rule of three), have {n_impostor:.0f}")
    fmrs, tar, thresholds = roc_curve(genuine, impostor, genuine_weight=genuine_weight,
                                      impostor_weight=impostor_weight)
    k = int(np.flatnonzero(fmrs <= fmr)[-1])
    return OperatingPoint(float(1.0 - tar[k]), float(thresholds[k]), None)


def tar_at_far(genuine, impostor, *, far=1e-3, genuine_weight=None, impostor_weight=None):
    """TAR at FAR ``far``: ``1 - fnmr_at_fmr(..., fmr=far)``; same return tuple (value = TAR).

    Examples
    --------
    >>> round(tar_at_far([0.9, 0.8, 0.4], [0.1] * 296 + [0.5] * 4, far=1e-2).value, 4)
    0.6667
    """
    point = fnmr_at_fmr(genuine, impostor, fmr=far, genuine_weight=genuine_weight, impostor_weight=impostor_weight)
    return point if point.value is None else point._replace(value=1.0 - point.value)


def cutoff_at_fmr(impostor, *, fmr=1e-3, impostor_weight=None):
    """Lowest cutoff whose measured FMR does not exceed ``fmr``.

    Parameters
    ----------
    impostor : array-like of shape (n_impostor,)
    fmr : float, keyword-only, default 1e-3
    impostor_weight : array-like of shape (n_impostor,), optional

    Returns
    -------
    cutoff : float
        The smallest impostor score ``s`` (or ``nextafter(max impostor)`` when even the
        highest impostor score alone exceeds the target) such that the weighted fraction
        of impostor scores ``>= s`` is ``<= fmr``.
    measured_fmr : float
        The FMR at that cutoff.

    Examples
    --------
    >>> cutoff_at_fmr([0.1, 0.2, 0.3, 0.4], fmr=0.25)
    (0.4, 0.25)
    """
    impostor, weight = _as_scores(impostor, impostor_weight)
    if impostor.size == 0:
        raise ValueError("cutoff_at_fmr needs impostor scores")
    order = np.argsort(-impostor, kind="stable")
    scores, weight = impostor[order], weight[order]
    unique_scores, first = np.unique(-scores, return_index=True)   # descending scores
    accepted = np.cumsum(weight)                                   # accepted if cutoff <= score
    ends = np.append(first[1:], scores.size) - 1
    rates = accepted[ends] / accepted[-1]
    ok = np.flatnonzero(rates <= fmr)
    if ok.size == 0:
        return float(np.nextafter(scores[0], np.inf)), 0.0
    k = ok[-1]
    return float(-unique_scores[k]), float(rates[k])


class KFoldAccuracy(NamedTuple):
    mean: float
    std: float
    fold_accuracies: np.ndarray
    thresholds: np.ndarray


def _best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Cutoff maximising accuracy on (scores, same); midpoint between adjacent unique scores."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    positions = np.searchsorted(np.sort(scores[same]), candidates, side="left")      # genuine below cutoff
    rejected_impostors = np.searchsorted(np.sort(scores[~same]), candidates, side="left")
    correct = (same.sum() - positions) + rejected_impostors
    return float(candidates[int(np.argmax(correct))])


def kfold_accuracy(scores, same, *, folds):
    """Best-threshold verification accuracy, k-fold (the LFW View 2 protocol).

    For each fold, the cutoff that maximises accuracy on the other folds is applied to the
    held-out fold; the result is the mean and standard deviation over folds.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
    same : array-like of bool, shape (n_pairs,)
        True for genuine pairs.
    folds : array-like of shape (n_pairs,), keyword-only
        Fold label of each pair (at least two distinct values).

    Returns
    -------
    mean : float
    std : float
        Population standard deviation over folds (as LFW results are usually reported).
    fold_accuracies : ndarray of shape (n_folds,)
        In sorted fold-label order.
    thresholds : ndarray of shape (n_folds,)
        Cutoff chosen for each fold (from the other folds).

    Examples
    --------
    >>> r = kfold_accuracy([0.9, 0.2, 0.8, 0.3], [True, False, True, False], folds=[1, 1, 2, 2])
    >>> r.mean, r.std
    (1.0, 0.0)
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    labels = np.unique(folds)
    if labels.size < 2:
        raise ValueError("kfold_accuracy needs at least two folds")
    accuracies, thresholds = [], []
    for label in labels:
        test = folds == label
        threshold = _best_threshold(scores[~test], same[~test])
        predicted = scores[test] >= threshold
        accuracies.append(float(np.mean(predicted == same[test])))
        thresholds.append(threshold)
    accuracies = np.asarray(accuracies)
    return KFoldAccuracy(float(accuracies.mean()), float(accuracies.std()), accuracies, np.asarray(thresholds))


def identity_counts(genuine, impostor, *, genuine_ids, impostor_ids, n_identities, cutoffs=DEFAULT_CUTOFFS):
    """Aggregate per-comparison results by identity, the input of :func:`bootstrap_rates`.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    genuine_ids : array-like of int, shape (n_genuine,)
        Identity index (0 .. n_identities-1) of each genuine comparison.
    impostor_ids : array-like of int, shape (n_impostor, 2)
        The two identity indices of each impostor comparison.
    n_identities : int
    cutoffs : sequence of float

    Returns
    -------
    genuine_totals : ndarray of shape (n_identities,)
    false_non_matches : ndarray of shape (n_cutoffs, n_identities)
    impostor_totals : scipy.sparse.csr_array of shape (n_identities, n_identities)
        Upper triangular: comparisons between identities i <= j.
    false_matches : list of n_cutoffs such sparse arrays
    """
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)
    genuine_ids = np.asarray(genuine_ids, dtype=np.int64)
    impostor_ids = np.asarray(impostor_ids, dtype=np.int64).reshape(-1, 2)
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    genuine_totals = np.bincount(genuine_ids, minlength=n_identities).astype(np.float64)
    false_non_matches = np.stack([np.bincount(genuine_ids, weights=(genuine < c).astype(np.float64),
                                              minlength=n_identities) for c in cutoffs])
    rows, cols = impostor_ids.min(axis=1), impostor_ids.max(axis=1)
    shape = (n_identities, n_identities)

    def matrix(values):
        return scipy.sparse.coo_array((values, (rows, cols)), shape=shape).tocsr()

    impostor_totals = matrix(np.ones(impostor.size))
    false_matches = [matrix((impostor >= c).astype(np.float64)) for c in cutoffs]
    return genuine_totals, false_non_matches, impostor_totals, false_matches


class RateIntervals(NamedTuple):
    fmr_low: np.ndarray
    fmr_high: np.ndarray
    fnmr_low: np.ndarray
    fnmr_high: np.ndarray


def _quadratic(matrix, weights_t: np.ndarray) -> np.ndarray:
    """sum_ij W[b,i] M[i,j] W[b,j] for every resample b; M dense or sparse, (I, I)."""
    product = matrix @ weights_t                      # (I, B), also for scipy sparse M
    return np.asarray((weights_t * product).sum(axis=0)).ravel()


def _identity_draws(n_identities: int, n_resamples: int, random_state=0) -> np.ndarray:
    """(n_resamples, n_identities) int: how often each identity is drawn in each resample of
    ``n_identities`` draws with replacement (seeded by ``random_state``): the identity bootstrap's
    weights ``w_i`` (module docstring)."""
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n_identities, np.full(n_identities, 1.0 / max(n_identities, 1)), size=n_resamples)


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Central ``confidence`` percentile interval over axis 1 (the resamples) of ``samples``
    (n, B, ...) -> two (n, ...): NaN resamples are ignored; NaN where all are (or B is 0)."""
    tail = (1.0 - confidence) / 2 * 100
    if samples.shape[1] == 0:
        nan = np.full(samples.shape[:1] + samples.shape[2:], np.nan)
        return nan, nan
    with np.errstate(invalid="ignore"):
        all_nan = np.all(np.isnan(samples), axis=1)
        low, high = np.nanpercentile(np.where(np.expand_dims(all_nan, 1), 0.0, samples), [tail, 100 - tail], axis=1)
    return np.where(all_nan, np.nan, low), np.where(all_nan, np.nan, high)


def bootstrap_rates(genuine_totals, false_non_matches, impostor_totals, false_matches, *,
                    n_resamples=1000, confidence=0.95, random_state=0):
    """Percentile bootstrap intervals of FMR and FNMR, resampling identities.

    Parameters
    ----------
    genuine_totals : array-like of shape (n_identities,)
        Genuine comparisons per identity.
    false_non_matches : array-like of shape (n_cutoffs, n_identities)
        Rejected genuine comparisons per identity and cutoff.
    impostor_totals : array or sparse array of shape (n_identities, n_identities)
        Impostor comparisons per identity pair (each pair counted once, e.g. upper triangle).
    false_matches : sequence of n_cutoffs arrays like ``impostor_totals``
        Accepted impostor comparisons per identity pair and cutoff.
    n_resamples : int, keyword-only, default 1000
    confidence : float, keyword-only, default 0.95
    random_state : int, keyword-only, default 0

    Returns
    -------
    fmr_low, fmr_high, fnmr_low, fnmr_high : ndarray of shape (n_cutoffs,)
        NaN where the rate is undefined (no comparisons).
    """
    genuine_totals = np.asarray(genuine_totals, dtype=np.float64)
    false_non_matches = np.atleast_2d(np.asarray(false_non_matches, dtype=np.float64))
    draws_t = _identity_draws(genuine_totals.size, n_resamples, random_state).T.astype(np.float64)   # (I, B)
    with np.errstate(invalid="ignore", divide="ignore"):
        fnmr = (false_non_matches @ draws_t) / (genuine_totals @ draws_t)   # (C, B)
        impostor_n = _quadratic(impostor_totals, draws_t)
        fmr = np.stack([_quadratic(m, draws_t) / impostor_n for m in false_matches]) if len(false_matches) \
            else np.empty((0, n_resamples))
    fmr_low, fmr_high = _percentile_interval(fmr, confidence)
    fnmr_low, fnmr_high = _percentile_interval(fnmr, confidence)
    return RateIntervals(fmr_low, fmr_high, fnmr_low, fnmr_high)


def bootstrap_fmr_fnmr(genuine, impostor, *, genuine_ids, impostor_ids, cutoffs=DEFAULT_CUTOFFS,
                       n_resamples=1000, confidence=0.95, random_state=0):
    """Identity-bootstrap confidence intervals of FMR and FNMR from lists of comparisons.

    Parameters
    ----------
    genuine : array-like of shape (n_genuine,)
    impostor : array-like of shape (n_impostor,)
    genuine_ids : array-like of int, shape (n_genuine,), keyword-only
        Identity of each genuine comparison (any integers).
    impostor_ids : array-like of int, shape (n_impostor, 2), keyword-only
        The two identities of each impostor comparison (same integer space).
    cutoffs : sequence of float, default DEFAULT_CUTOFFS (0.7, 0.67)
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : int, default 0

    Returns
    -------
    fmr_low, fmr_high, fnmr_low, fnmr_high : ndarray of shape (n_cutoffs,)

    Examples
    --------
    >>> r = bootstrap_fmr_fnmr([0.9, 0.8], [0.1, 0.2], genuine_ids=[0, 1],
    ...                        impostor_ids=[[0, 1], [1, 2]], cutoffs=[0.7])
    >>> float(r.fmr_high[0]), float(r.fnmr_high[0])
    (0.0, 0.0)
    """
    genuine_ids = np.asarray(genuine_ids, dtype=np.int64)
    impostor_ids = np.asarray(impostor_ids, dtype=np.int64).reshape(-1, 2)
    labels, codes = np.unique(np.concatenate([genuine_ids, impostor_ids.ravel()]), return_inverse=True)
    counts = identity_counts(genuine, impostor, genuine_ids=codes[:genuine_ids.size],
                             impostor_ids=codes[genuine_ids.size:].reshape(-1, 2),
                             n_identities=labels.size, cutoffs=cutoffs)
    return bootstrap_rates(*counts, n_resamples=n_resamples, confidence=confidence, random_state=random_state)


def exact_rate_interval(errors, comparisons, *, confidence=0.95):
    """Exact binomial (Clopper-Pearson) interval of a rate: FMR from false matches, FNMR from
    false non-matches.

    Treats the comparisons as independent trials (see the module docstring for when that holds);
    for comparisons that share people, :func:`bootstrap_fmr_fnmr` resamples by identity instead.

    Parameters
    ----------
    errors : array-like of int, shape (n,)
        False matches (or false non-matches).
    comparisons : array-like of int, shape (n,)
        Impostor (or genuine) comparisons they are counted among.
    confidence : float, keyword-only, default 0.95

    Returns
    -------
    low, high : ndarray of shape (n,)
        Central interval: each bound misses the rate with probability ``(1 - confidence) / 2``;
        ``low`` is 0 when there are no errors, ``high`` 1 when all are; NaN without comparisons.

    Examples
    --------
    A thousand different-person pairs with 2 false matches pin the FMR only to 0.24-7.2 in 1,000:

    >>> low, high = exact_rate_interval([2, 0], [1000, 1000])
    >>> [round(float(v), 5) for v in low], [round(float(v), 5) for v in high]
    ([0.00024, 0.0], [0.00721, 0.00368])
    """
    errors = np.atleast_1d(np.asarray(errors, dtype=np.float64))
    comparisons = np.atleast_1d(np.asarray(comparisons, dtype=np.float64))
    tail = (1.0 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        # The beta distribution's tail quantiles (scipy.stats.beta.ppf / .isf, without importing scipy.stats).
        low = np.where(errors == 0, 0.0, betaincinv(errors, comparisons - errors + 1, tail))
        high = np.where(errors == comparisons, 1.0, betainccinv(errors + 1, comparisons - errors, tail))
    empty = comparisons <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


class GroupRates(NamedTuple):
    """Result of :func:`grouped_pair_rates`, per group g and cutoff c.

    n_genuine, n_impostor : (n_groups,) comparisons.
    false_non_matches, false_matches : (n_groups, n_cutoffs).
    intervals : RateIntervals whose arrays are (n_groups, n_cutoffs); NaN where undefined.
    """

    n_genuine: np.ndarray
    n_impostor: np.ndarray
    false_non_matches: np.ndarray
    false_matches: np.ndarray
    intervals: RateIntervals


def grouped_pair_rates(identities, labels, label_pair_group, *, genuine_pairs, genuine, impostor_pairs, impostor,
                       cutoffs=DEFAULT_CUTOFFS, n_resamples=1000, confidence=0.95, random_state=0):
    """FMR and FNMR per group over *every* pair of labelled images, with identity-bootstrap intervals.

    Every pair of images with a label (``labels >= 0``) is a comparison: genuine when the two
    identities are equal, impostor otherwise; its group is ``label_pair_group[label_a, label_b]``.
    Impostor pairs are never listed in full: per group and resample their number is
    ``(S' M S - q' Q) / 2 - sum_i w_i^2 G_i`` with ``S``, ``Q`` the sums of ``w`` and ``w^2``
    over the images of each label, ``M`` the label pairs of the group (``q`` its diagonal) and
    ``G_i`` the genuine pairs of identity ``i`` in it; only impostor pairs that some cutoff
    accepts are needed, as a list. Resampling is by identity (see the module docstring); with
    one image per identity it is by image.

    Parameters
    ----------
    identities : array-like of int, shape (n_images,)
    labels : array-like of int, shape (n_images,)
        Label index 0..L-1 of each image; -1 leaves the image out.
    label_pair_group : array-like of int, shape (L, L)
        Symmetric; group index (0..n_groups-1) of a pair of labels, -1 for no group.
    genuine_pairs : array-like of int, shape (n_genuine, 2), keyword-only
        Every same-identity pair of images (i < j).
    genuine : array-like of shape (n_genuine,)
        Their scores.
    impostor_pairs : array-like of int, shape (n_accepted, 2)
        Every different-identity pair scoring at least ``min(cutoffs)`` (more may be given).
    impostor : array-like of shape (n_accepted,)
        Their scores.
    cutoffs : sequence of float
    n_resamples, confidence, random_state : the bootstrap.

    Returns
    -------
    GroupRates

    Examples
    --------
    Four people labelled a, a, b, b; one accepted impostor pair among the two a's:

    >>> r = grouped_pair_rates([0, 1, 2, 3], [0, 0, 1, 1], [[0, 2], [2, 1]], genuine_pairs=np.zeros((0, 2), int),
    ...                        genuine=[], impostor_pairs=[[0, 1], [2, 3]], impostor=[0.9, 0.2], cutoffs=[0.7],
    ...                        n_resamples=50)
    >>> r.n_impostor.tolist(), r.false_matches[:, 0].tolist()
    ([1.0, 1.0, 4.0], [1.0, 0.0, 0.0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    table = np.asarray(label_pair_group, dtype=np.int64)
    cutoffs = np.asarray(cutoffs, dtype=np.float64).ravel()
    n_groups = int(table.max()) + 1 if table.size else 0
    inside = labels >= 0
    id_labels, id_codes = np.unique(np.asarray(identities)[inside], return_inverse=True)
    n_identities = id_labels.size
    identity = np.full(labels.size, -1, dtype=np.int64)
    identity[inside] = id_codes
    images_per_label = np.zeros((n_identities, table.shape[0]))
    np.add.at(images_per_label, (identity[inside], labels[inside]), 1.0)

    def groups_of(pairs: np.ndarray) -> np.ndarray:
        la, lb = labels[pairs[:, 0]], labels[pairs[:, 1]]
        return np.where((la >= 0) & (lb >= 0), table[np.maximum(la, 0), np.maximum(lb, 0)], -1)

    genuine_pairs = np.asarray(genuine_pairs, dtype=np.int64).reshape(-1, 2)
    genuine = np.asarray(genuine, dtype=np.float64)
    group = groups_of(genuine_pairs)
    kept = group >= 0
    genuine_per_identity = np.zeros((n_groups, n_identities))
    np.add.at(genuine_per_identity, (group[kept], identity[genuine_pairs[kept, 0]]), 1.0)
    misses_per_identity = np.zeros((cutoffs.size, n_groups, n_identities))
    for c, cutoff in enumerate(cutoffs):
        missed = kept & (genuine < cutoff)
        np.add.at(misses_per_identity[c], (group[missed], identity[genuine_pairs[missed, 0]]), 1.0)

    draws = _identity_draws(n_identities, n_resamples, random_state)
    weights = np.vstack([np.ones(n_identities), draws]).astype(np.float64)     # row 0: the estimate itself
    squares = weights ** 2
    label_sums, label_squares = weights @ images_per_label, squares @ images_per_label
    n_impostor = np.empty((weights.shape[0], n_groups))
    for g in range(n_groups):
        members = (table == g).astype(np.float64)
        n_impostor[:, g] = 0.5 * (((label_sums @ members) * label_sums).sum(axis=1)
                                  - label_squares @ np.diag(members)) - squares @ genuine_per_identity[g]
    n_genuine = weights @ genuine_per_identity.T                                 # (B+1, G)
    misses = np.stack([weights @ m.T for m in misses_per_identity])             # (C, B+1, G)

    impostor_pairs = np.asarray(impostor_pairs, dtype=np.int64).reshape(-1, 2)
    impostor = np.asarray(impostor, dtype=np.float64)
    impostor_group = groups_of(impostor_pairs)
    rows, cols = identity[impostor_pairs[:, 0]], identity[impostor_pairs[:, 1]]
    false_matches = np.zeros((cutoffs.size, weights.shape[0], n_groups))
    weights_t = weights.T
    for c, cutoff in enumerate(cutoffs):
        for g in range(n_groups):
            chosen = (impostor_group == g) & (impostor >= cutoff)
            if chosen.any():
                matrix = scipy.sparse.coo_array((np.ones(int(chosen.sum())), (rows[chosen], cols[chosen])),
                                                shape=(n_identities, n_identities)).tocsr()
                false_matches[c, :, g] = _quadratic(matrix, weights_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        fmr, fnmr = false_matches[:, 1:] / n_impostor[None, 1:], misses[:, 1:] / n_genuine[None, 1:]   # (C, B, G)
    fmr_low, fmr_high = (bound.T for bound in _percentile_interval(fmr, confidence))      # (G, C)
    fnmr_low, fnmr_high = (bound.T for bound in _percentile_interval(fnmr, confidence))
    return GroupRates(n_genuine[0], np.rint(n_impostor[0]), misses[:, 0].T, false_matches[:, 0].T,
                      RateIntervals(fmr_low, fmr_high, fnmr_low, fnmr_high))
