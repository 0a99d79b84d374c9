"""Embed every image under a folder through ``FaceComparer.represent_batch`` — the pipeline itself.

Every fitted part of a mode (calibration knots, score normalisation cohort, age model) is
computed from these files, so what is fitted is exactly what the service computes: decode,
detect, crop, embed, centre and fuse all happen inside :class:`facecmp.FaceComparer`.

Output (``--out``, default ``<facecmp cache>/training/<folder name>-<mode>.npz``):
- ``paths``: (N,) image paths relative to the folder, sorted;
- ``embeddings``: (N, D) float32 unit-norm pipeline embeddings; NaN rows where the image
  failed (no face found, not decodable);
- ``face_width``, ``probability``, ``face_count``: (N,) of the face the pipeline chose;
- ``root``: the folder, absolute (label files name images relative to their own folder).

Re-running with the same mode and pipeline id reuses the file (``pipeline_id`` is stored).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facecmp.errors import FacecmpError
from facecmp.pipeline import FaceComparer
from facecmp.settings import cache_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def image_paths(root: Path) -> list[str]:
    """Every JPEG/PNG below ``root``, relative to it, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def embed_folder(root: Path, out: Path, comparer: FaceComparer, *, mode: str, batch: int = 32) -> Path:
    """Embed the images of ``root`` in ``mode``; returns the npz path (reused when up to date)."""
    pipeline = comparer.pipeline_id(mode)
    if out.exists() and str(np.load(out)["pipeline_id"]) == pipeline:
        return out
    paths = image_paths(root)
    embeddings = None
    width, probability, count = (np.zeros(len(paths)) for _ in range(3))
    for start in tqdm(range(0, len(paths), batch), desc=f"embed {root.name} ({mode})", unit_scale=batch):
        chunk = paths[start:start + batch]
        for offset, result in enumerate(comparer.represent_batch([root / p for p in chunk], mode=mode)):
            i = start + offset
            if isinstance(result, FacecmpError):
                continue
            if embeddings is None:
                embeddings = np.full((len(paths), len(result.embedding)), np.nan, np.float32)
            embeddings[i] = result.embedding
            width[i], probability[i], count[i] = result.face.width, result.face.probability, result.face_count
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array(paths), embeddings=embeddings, face_width=width, probability=probability,
             face_count=count, pipeline_id=pipeline, root=str(root.resolve()))
    return out


def default_output(root: Path, mode: str) -> Path:
    """``<cache>/training/<name>-<mode>.npz``, named after the dataset (not its ``images/`` folder)."""
    name = root.resolve().parent.name if root.name == "images" else root.name
    return cache_dir() / "training" / f"{name}-{mode}.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of images (searched recursively)")
    parser.add_argument("--mode", nargs="+", default=["fast", "accurate"])
    parser.add_argument("--out", type=Path, help="output file (one mode only)")
    args = parser.parse_args()
    comparer = FaceComparer(args.mode[0])
    for mode in args.mode:
        print(embed_folder(args.folder, args.out or default_output(args.folder, mode), comparer, mode=mode))


if __name__ == "__main__":
    main()
