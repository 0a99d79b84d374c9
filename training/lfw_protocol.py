"""LFW View 2 on cached embeddings: pairs.txt folds and all-vs-all different-person pairs.

Arrays only; the embeddings come from ``training/lfw_features.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def view2_pairs(lfw_dir: Path, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pairs.txt as image-index pairs (P, 2), same-person labels (P,) and folds (P,) 1-10."""
    index = {str(p): i for i, p in enumerate(paths)}
    lines = [l for l in (lfw_dir / "pairs.txt").read_text().split("\n")[1:] if l.strip()]
    per_fold = 2 * int((lfw_dir / "pairs.txt").read_text().split()[1])
    pairs, same, folds = [], [], []
    for n, line in enumerate(lines):
        p = line.split("\t")
        a, b = ((p[0], int(p[1])), (p[0], int(p[2]))) if len(p) == 3 else ((p[0], int(p[1])), (p[2], int(p[3])))
        pairs.append([index[f"{a[0]}/{a[0]}_{a[1]:04d}.jpg"], index[f"{b[0]}/{b[0]}_{b[1]:04d}.jpg"]])
        same.append(len(p) == 3)
        folds.append(n // per_fold + 1)
    return np.array(pairs), np.array(same), np.array(folds)


def all_pair_cosines(embeddings: np.ndarray, identities: np.ndarray, block: int = 2048
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of all genuine and all impostor pairs (i < j) among rows without NaN.

    Returns (genuine, impostor) 1-D float32 arrays; computed in blocks of a matrix product.
    """
    ok = ~np.isnan(embeddings[:, 0])
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


def ten_fold_accuracy(cosines: np.ndarray, same: np.ndarray, folds: np.ndarray) -> float:
    """Standard LFW accuracy: per fold, the threshold best on the other 9 folds."""
    accuracies = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        candidates = np.unique(cosines[train])
        correct = [np.mean((cosines[train] >= t) == same[train]) for t in candidates]
        threshold = candidates[int(np.argmax(correct))]
        accuracies.append(np.mean((cosines[test] >= threshold) == same[test]))
    return float(np.mean(accuracies))


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest cosine cutoff whose false-match rate over ``impostor`` is <= ``fmr``."""
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(fmr * len(ordered)))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else float(ordered[-1])
