"""LFW View 2 on training embeddings: its images and their folds, pairs.txt pairs and
all-vs-all pair cosines.

Arrays only; the embeddings come from the pipeline (``training/embed_images.py``, or
``training/select_pipeline.py`` for candidate configurations), the protocol from
:func:`eval.datasets.load_lfw`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eval.datasets import load_lfw
from eval.metrics import all_pair_blocks


def lfw_images(lfw_dir: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Relative image paths, identities and the pairs.txt fold (1-10) of each image's person."""
    dataset = load_lfw(lfw_dir)
    fold_of = {}
    for a, b, fold in zip(dataset.pairs.a, dataset.pairs.b, dataset.pairs.fold):
        for i in (a, b):
            fold_of.setdefault(dataset.identity_names[dataset.identities[i]], int(fold))
    paths = [str(Path(p).relative_to(Path(lfw_dir) / "images")) for p in dataset.images]
    identities = [p.split("/")[0] for p in paths]
    return paths, identities, np.array([fold_of.get(i, 0) for i in identities])


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

    Returns (genuine, impostor) 1-D float32 arrays, computed in blocks of a matrix product
    (:func:`eval.metrics.all_pair_blocks`, the walk the eval suite's all-vs-all uses): the
    calibration fit needs the raw impostor tail, not only counts at cutoffs.
    """
    ok = ~np.isnan(embeddings).any(axis=1)
    _, codes = np.unique(identities[ok], return_inverse=True)
    genuine, impostor = [], []
    for part in all_pair_blocks(embeddings[ok], codes, block_size=block):
        genuine.append(part.cosine[part.genuine])
        impostor.append(part.cosine[part.impostor])
    return np.concatenate(genuine).astype(np.float32), np.concatenate(impostor).astype(np.float32)
