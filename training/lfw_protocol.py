"""LFW View 2 on cached training embeddings: pairs.txt pairs and all-vs-all pair cosines.

Arrays only; the embeddings come from ``training/lfw_features.py``, the protocol from
:func:`facecmp.datasets.load_lfw`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from facecmp.datasets import load_lfw


def fold_range(text: str) -> set[int]:
    """pairs.txt folds from a command-line range: ``"1-5"`` -> {1, ..., 5}, ``"7"`` -> {7}."""
    low, _, high = text.partition("-")
    return set(range(int(low), int(high or low) + 1))


def view2_pairs(lfw_dir: Path, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pairs.txt as indices into ``paths`` (P, 2), same-person labels (P,) and folds (P,) 1-10."""
    dataset = load_lfw(lfw_dir)
    position = {str(p): i for i, p in enumerate(paths)}
    relative = [str(Path(p).relative_to(Path(lfw_dir) / "images")) for p in dataset.images]
    index = np.array([position[r] for r in relative])
    pairs = dataset.pairs
    return np.stack([index[pairs.a], index[pairs.b]], 1), pairs.same, pairs.fold.astype(int)


def all_pair_cosines(embeddings: np.ndarray, identities: np.ndarray, block: int = 2048
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of all genuine and all impostor pairs (i < j) among rows without NaN.

    Returns (genuine, impostor) 1-D float32 arrays, computed in blocks of a matrix product:
    the calibration fit needs the raw impostor tail, not only counts at cutoffs.
    """
    ok = ~np.isnan(embeddings).any(axis=1)
    emb, ids = embeddings[ok], identities[ok]
    _, codes = np.unique(ids, return_inverse=True)
    genuine, impostor = [], []
    for start in range(0, len(emb), block):
        sims = emb[start:start + block] @ emb.T
        rows = np.arange(start, min(start + block, len(emb)))
        upper = np.arange(len(emb))[None, :] > rows[:, None]
        same = codes[rows][:, None] == codes[None, :]
        genuine.append(sims[upper & same])
        impostor.append(sims[upper & ~same])
    return np.concatenate(genuine).astype(np.float32), np.concatenate(impostor).astype(np.float32)
