"""Scores from cached embeddings: listed pairs, and every pair of images (all-vs-all).

:class:`PairScorer` is the one place eval turns embeddings into scores: every listed pair and
every block of the all-vs-all walk is scored by it, through the comparer's own score.

All-vs-all never materialises the n*(n-1)/2 impostor scores (29.6 million for LFW's 7,701
images): it walks blocks of rows of the cosine matrix (:func:`eval.metrics.all_pair_blocks`,
one matrix product each, as the calibration fit does) and keeps

* every genuine (same-identity) score, with its identity — there are few;
* a histogram of impostor scores in ``n_bins`` equal bins over [0, 1] (curves, EER, TAR@FAR);
* exact impostor counts at each named cutoff, per identity pair (the identity bootstrap);
* whatever an ``on_block`` visitor keeps (the pairs a breakdown by group needs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.metrics import DEFAULT_CUTOFFS, all_pair_blocks


class PairScorer:
    """Calibrated scores of pairs of embedded images, as :class:`facecmp.FaceComparer` scores them.

    comparer : facecmp.FaceComparer (its calibration maps a pair's cosine and the two faces'
        statistics to the calibrated score).
    embeddings : (n_images, D) float32, unit-norm rows (zero rows for images without a face).
    mode : pipeline mode of the embeddings.
    """

    def __init__(self, comparer, embeddings: np.ndarray, *, mode: str | None = None):
        self.calibration = comparer.calibration(mode)
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.stats = self.calibration.face_stats(self.embeddings)  # each face's cohort statistics, once

    def scores(self, cosine: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores of images ``a`` against ``b`` (index arrays broadcast to ``cosine``'s shape).

        Every score eval reports comes from here; the indices let a score that also depends on
        each face (not only on the cosine) be computed in this one place.
        """
        return np.asarray(self.calibration.score_pairs(cosine, self.stats[a], self.stats[b]), dtype=np.float64)

    def pairs(self, a: np.ndarray, b: np.ndarray, *, chunk: int = 1 << 16) -> np.ndarray:
        """Scores of pairs (a[k], b[k]): (n_pairs,) from two (n_pairs,) index arrays, in chunks."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        out = np.empty(a.size, dtype=np.float64)
        for start in range(0, a.size, chunk):
            ia, ib = a[start:start + chunk], b[start:start + chunk]
            out[start:start + chunk] = self.scores(np.einsum("ij,ij->i", self.embeddings[ia], self.embeddings[ib]),
                                                   ia, ib)
        return out

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Scores of every image in ``rows`` against every image in ``cols``: (len(rows), len(cols))."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        return self.scores(self.embeddings[rows] @ self.embeddings[cols].T, rows[:, None], cols[None, :])


@dataclass
class AllPairs:
    """Result of :func:`all_vs_all` over n images of I identities (identity codes 0..I-1).

    Identity codes index ``np.unique(identities)``.

    genuine : (n_genuine,) scores of same-identity pairs; genuine_ids : (n_genuine,) identity code.
    impostor_hist : (n_bins,) counts of impostor scores; bin k holds [k, k+1) / n_bins
        (the last bin also holds 1.0); ``bin_edges`` (n_bins + 1,).
    cutoffs : (n_cutoffs,); false_matches : (n_cutoffs,) exact impostor counts with score >= cutoff.
    n_impostor : int.
    impostor_totals : (I, I) float32, impostor pairs per identity pair (upper triangle).
    false_match_matrices : (n_cutoffs, I, I) float32, accepted impostor pairs per identity pair.
    """

    genuine: np.ndarray
    genuine_ids: np.ndarray
    impostor_hist: np.ndarray
    bin_edges: np.ndarray
    cutoffs: np.ndarray
    false_matches: np.ndarray
    n_impostor: int
    impostor_totals: np.ndarray
    false_match_matrices: np.ndarray

    def impostor_as_weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, weights) standing in for the impostor scores: occupied bins' lower edges and counts.

        Rates computed from them are exact at bin edges and conservative (FMR never lower)
        in between.
        """
        occupied = np.flatnonzero(self.impostor_hist)
        return self.bin_edges[occupied], self.impostor_hist[occupied].astype(np.float64)


def _segment_starts(sorted_codes: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])


def _sum_segments(mask: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray) -> np.ndarray:
    """Sum a (rows, cols) 0/1 matrix over consecutive row and column segments (identities)."""
    by_col = np.add.reduceat(mask.astype(np.float32), col_starts, axis=1)
    return np.add.reduceat(by_col, row_starts, axis=0)


def all_vs_all(scorer: PairScorer, images: np.ndarray, identities: np.ndarray, *, cutoffs=DEFAULT_CUTOFFS,
               n_bins: int = 100_000, block_size: int = 1024, on_block=None) -> AllPairs:
    """Score every pair of ``images``; see the module docstring.

    Parameters
    ----------
    scorer : PairScorer over the dataset's embeddings.
    images : (n,) int, the images to pair (indices into the scorer's embeddings; those with a face).
    identities : (n,) int identity codes (any integers) of those images.
    cutoffs : sequence of float, keyword-only.
    n_bins : int, resolution of the impostor histogram over [0, 1].
    block_size : rows of the score matrix per matrix product.
    on_block : optional ``f(rows, cols, scores, genuine, impostor)`` called on every block: image
        indices (r,) and (c,), scores (r, c), and the (r, c) masks of its genuine and impostor pairs.
    """
    labels, codes = np.unique(np.asarray(identities), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    images = np.asarray(images, dtype=np.int64)[order]
    codes = codes[order]
    n_ids = labels.size
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    starts = _segment_starts(codes)
    hist = np.zeros(n_bins, dtype=np.int64)
    totals = np.zeros((n_ids, n_ids), dtype=np.float32)
    fm_matrices = np.zeros((cutoffs.size, n_ids, n_ids), dtype=np.float32)
    false_matches = np.zeros(cutoffs.size, dtype=np.int64)
    genuine, genuine_ids = [], []
    for r0, r1, cos, genuine_mask, impostor in all_pair_blocks(scorer.embeddings[images], codes,
                                                               block_size=block_size, identity_blocks=True):
        scores = scorer.scores(cos, images[r0:r1, None], images[None, r0:])
        genuine.append(scores[genuine_mask])
        genuine_ids.append(np.broadcast_to(codes[r0:r1, None], genuine_mask.shape)[genuine_mask])
        if on_block is not None:
            on_block(images[r0:r1], images[r0:], scores, genuine_mask, impostor)
        bins = np.minimum((scores[impostor] * n_bins).astype(np.int64), n_bins - 1)
        hist += np.bincount(bins, minlength=n_bins)
        # Per identity pair: sum over column segments, then over row segments.
        col_starts = starts[starts >= r0] - r0
        row_starts = starts[(starts >= r0) & (starts < r1)] - r0
        row_ids, col_ids = codes[r0 + row_starts], codes[r0 + col_starts]
        cell = np.ix_(row_ids, col_ids)
        totals[cell] += _sum_segments(impostor, row_starts, col_starts)
        for k, cutoff in enumerate(cutoffs):
            accepted = impostor & (scores >= cutoff)
            false_matches[k] += int(accepted.sum())
            fm_matrices[k][cell] += _sum_segments(accepted, row_starts, col_starts)
    edges = np.arange(n_bins + 1) / n_bins
    return AllPairs(np.concatenate(genuine) if genuine else np.zeros(0), np.concatenate(genuine_ids).astype(np.int64)
                    if genuine_ids else np.zeros(0, np.int64), hist, edges, cutoffs, false_matches,
                    int(hist.sum()), totals, fm_matrices)
