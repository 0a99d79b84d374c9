"""Walks over the pairs of a face set: every pair (in blocks), sampled pairs, and their cosines."""
from __future__ import annotations

import numpy as np

from eval.metrics import all_pair_blocks
from facecmp.normalisation import FaceStats
from training.fit_data import folder_identities


def pair_blocks(emb: np.ndarray, stats: FaceStats, similarity, identities: np.ndarray | None = None):
    """``similarity(cos, stats_rows, stats_cols)`` of every pair i < j, a block of rows at a time
    (:func:`eval.metrics.all_pair_blocks`): yields ``rows`` (r,), ``cols`` (c,) and (r, c) ``values``,
    ``genuine`` and ``impostor`` masks (``identities`` None: every pair is an impostor pair)."""
    codes = np.arange(len(emb)) if identities is None else np.unique(identities, return_inverse=True)[1]
    for block in all_pair_blocks(emb, codes, block_size=2048):
        rows, cols = np.arange(block.start, block.stop), np.arange(block.start, len(emb))
        yield rows, cols, similarity(block.cosine, stats[rows].column(), stats[cols]), block.genuine, block.impostor


def all_pairs(emb: np.ndarray, stats: FaceStats, similarity, identities: np.ndarray | None = None,
              select=None) -> tuple[np.ndarray, np.ndarray]:
    """The values of all genuine and all impostor pairs of :func:`pair_blocks`; ``select(rows)`` ->
    (r, N) bool restricts the pairs."""
    genuine, impostor = [], []
    for rows, cols, values, is_genuine, is_impostor in pair_blocks(emb, stats, similarity, identities):
        keep = np.ones_like(is_impostor) if select is None else select(rows)[:, cols[0]:]
        genuine.append(values[is_genuine & keep])
        impostor.append(values[is_impostor & keep])
    return np.concatenate(genuine), np.concatenate(impostor)


def sample_pairs(n: int, count: int, rng, identities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    a, b = rng.integers(0, n, 2 * count), rng.integers(0, n, 2 * count)
    keep = a != b
    if identities is not None:
        keep &= identities[a] != identities[b]
    return a[keep][:count], b[keep][:count]


def identity_pairs(identity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j of a small set: rows ``a``, ``b`` and whether they are one person."""
    a, b = np.triu_indices(len(identity), 1)
    return a, b, identity[a] == identity[b]


def sampled_impostor_cosines(emb: np.ndarray, identity: np.ndarray, rows: np.ndarray, count: int,
                             rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random pairs of different people among ``rows`` (:func:`sample_pairs`): their rows
    ``a``, ``b`` (indices into ``emb``) and cosines."""
    a, b = sample_pairs(len(rows), count, rng, identity[rows])
    a, b = rows[a], rows[b]
    return a, b, pair_cosines(emb, a, b)


def pair_cosines(emb: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 262_144) -> np.ndarray:
    """Cosines of the pairs (a[i], b[i]) of unit-norm rows, a chunk of pairs at a time: gathering
    3 M pairs of 768-d rows at once took 18 GB (the accurate fit was killed for memory)."""
    out = np.empty(len(a), np.float32)
    for start in range(0, len(a), chunk):
        rows_a, rows_b = a[start:start + chunk], b[start:start + chunk]
        out[start:start + chunk] = np.einsum("ij,ij->i", emb[rows_a], emb[rows_b])
    return out


def pairs_across_folders(data: dict, stats: FaceStats, similarity) -> np.ndarray:
    """``similarity`` of every pair of embedded images in different folders: 2 M pairs of
    CACD-VS dev instead of its protocol's 1,000 (a folder is one person there; its SOURCE.txt
    warns that two folders may rarely be one person)."""
    rows = np.flatnonzero(data["ok"])
    return all_pairs(np.nan_to_num(data["embeddings"])[rows], stats[rows], similarity,
                     folder_identities(data["paths"])[rows])[1]
