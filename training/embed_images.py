"""Embed every image under a folder through the pipeline itself, by eval's embedding path.

Every fitted part of a mode (calibration knots, score normalisation cohort, age model) is
computed from these files, so what is fitted is exactly what the service computes: decode,
detect, crop, embed, centre and fuse all happen inside :meth:`facecmp.FaceComparer.represent_batch`,
called by :func:`eval.embeddings.embed_images` (the evaluation's own path), through its cache
(keyed by pipeline id and image sha256: an image eval or an earlier run embedded is not embedded
again, and an interrupted run resumes).

Output (``--out``, default :func:`embeddings_file` of the folder's dataset, see :func:`dataset_name`):
- ``paths``: (N,) image paths relative to the folder, sorted;
- ``embeddings``: (N, D) float32 unit-norm pipeline embeddings; NaN rows where the image
  failed (no face found, not decodable);
- ``face_width``, ``probability``, ``face_count``: (N,) of the face the pipeline chose (0 where
  it failed; width and probability as the cache records the face: to 0.01 px and 1e-6);
- ``root``: the folder, absolute (label files name images relative to their own folder).

Re-running with the same mode and pipeline id reuses the file (``pipeline_id`` is stored).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eval.datasets import IMAGE_SUFFIXES
from eval.embeddings import EmbeddingCache, embed_images
from facecmp.pipeline import FaceComparer
from facecmp.settings import cache_dir


def image_paths(root: Path) -> list[str]:
    """Every JPEG/PNG below ``root``, relative to it, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def embed_folder(root: Path, out: Path, comparer: FaceComparer, *, mode: str, batch: int = 32,
                 cache: EmbeddingCache | None = None) -> Path:
    """Embed the images of ``root`` in ``mode``; returns the npz path (reused when up to date).
    ``cache``: eval's embedding cache (default the shared one, :func:`eval.embeddings.default_cache_path`)."""
    pipeline = comparer.pipeline_id(mode)
    if out.exists() and str(np.load(out)["pipeline_id"]) == pipeline:
        return out
    paths = image_paths(root)
    result = embed_images([root / p for p in paths], comparer, mode=mode, pipeline_id=pipeline, cache=cache,
                          batch_size=batch)
    embeddings = np.where(result.ok[:, None], result.embeddings, np.nan).astype(np.float32)
    faces = [record.face if ok else None for record, ok in zip(result.records, result.ok)]
    width = np.array([face["box"][2] - face["box"][0] if face else 0.0 for face in faces])
    probability = np.array([face["probability"] if face else 0.0 for face in faces])
    count = np.array([record.face_count if ok else 0 for record, ok in zip(result.records, result.ok)], float)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array(paths), embeddings=embeddings, face_width=width, probability=probability,
             face_count=count, pipeline_id=pipeline, root=str(root.resolve()))
    return out


def dataset_name(root: Path) -> str:
    """The dataset a folder of images is: its name, or its parent's for an ``images/`` folder;
    ``<dataset>-degraded`` for ``training/degrade.py``'s copies of one (under ``<cache>/degraded``)."""
    root = root.resolve()
    copies = (cache_dir() / "degraded").resolve()
    if copies in root.parents:
        return f"{root.relative_to(copies).parts[0]}-degraded"
    return root.parent.name if root.name == "images" else root.name


def embeddings_file(dataset: str, mode: str) -> Path:
    """``<cache>/training/<dataset>-<mode>.npz``: where a dataset's embeddings are written and read."""
    return cache_dir() / "training" / f"{dataset}-{mode}.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of images (searched recursively)")
    parser.add_argument("--mode", nargs="+", default=["fast", "accurate"])
    parser.add_argument("--out", type=Path, help="output file (one mode only)")
    args = parser.parse_args()
    comparer = FaceComparer(args.mode[0])
    for mode in args.mode:
        print(embed_folder(args.folder, args.out or embeddings_file(dataset_name(args.folder), mode), comparer, mode=mode))


if __name__ == "__main__":
    main()
