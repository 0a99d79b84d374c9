"""Detect and embed every LFW View 2 image once, through facecmp's own pipeline stages.

Outputs (under ``--out``, default ``<facecmp cache>/training/lfw``):
- ``detections.npz``: per image its path, identity, fold (1-10, from pairs.txt), face count
  and the chosen face (box, probability, landmarks) — the face the service would pick.
- ``emb-<weights>-<crop>.npz``: (N, D) embeddings (plain and mirrored) for one weight set
  and crop, computed by the reference backend (PyTorch float32, what the calibrations are
  fitted with); ``emb-<weights>-<crop>-<backend>-<precision>.npz`` with ``--backend`` /
  ``--precision``, to measure another backend on the same faces.

The fits and measurements in ``training/`` read these files; nothing here is tuned.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facecmp.align import CropConfig, crop_face
from facecmp.backends import ComputeOptions
from eval.datasets import load_lfw
from facecmp.decode import load_image
from facecmp.detect import FaceDetector
from facecmp.embed import Embedder, centre_embeddings, fuse_embeddings
from facecmp.faces import Face
from facecmp.modes import PipelineConfig
from facecmp.settings import FacecmpSettings, cache_dir
from training.lfw_protocol import fold_range


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


def detect_all(lfw_dir: Path, out: Path, batch: int = 16) -> Path:
    target = out / "detections.npz"
    if target.exists():
        return target
    paths, identities, folds = lfw_images(lfw_dir)
    detector = FaceDetector()
    counts = np.zeros(len(paths), int)
    boxes = np.full((len(paths), 4), np.nan)
    probs = np.zeros(len(paths))
    marks = np.full((len(paths), 5, 2), np.nan)
    for start in tqdm(range(0, len(paths), batch), desc="detect LFW"):
        chunk = paths[start:start + batch]
        images = [load_image(lfw_dir / "images" / p) for p in chunk]
        for offset, faces in enumerate(detector.detect_batch(images)):
            i = start + offset
            counts[i] = len(faces)
            if faces:
                boxes[i], probs[i], marks[i] = faces[0].box, faces[0].probability, faces[0].landmarks
    out.mkdir(parents=True, exist_ok=True)
    np.savez(target, paths=np.array(paths), identities=np.array(identities), folds=folds,
             counts=counts, boxes=boxes, probs=probs, landmarks=marks)
    return target


def embedding_file(out: Path, weights: str, crop: CropConfig, compute: ComputeOptions = ComputeOptions.reference()) -> Path:
    suffix = "" if compute == ComputeOptions.reference() else f"-{compute.backend}-{compute.precision}"
    return out / f"emb-{weights}-{crop.method}{crop.margin:g}{suffix}.npz"


def embed_all(lfw_dir: Path, out: Path, weights: str, crop: CropConfig, folds: set[int], batch: int = 32,
              compute: ComputeOptions = ComputeOptions.reference()) -> Path:
    """Embeddings of the chosen faces of the images in ``folds``, unflipped and mirrored.

    Both views are stored (each unit-norm) so that flip-TTA (their normalised sum) and the
    plain pipeline are measured from one pass. Re-running fills only what is missing.
    """
    target = embedding_file(out, weights, crop, compute)
    det = np.load(out / "detections.npz")
    embedder = Embedder(weights, compute=compute)
    shape = (len(det["paths"]), embedder.embedding_size)
    stored = np.load(target) if target.exists() else None
    plain = stored["plain"] if stored is not None else np.full(shape, np.nan, np.float32)
    mirrored = stored["mirrored"] if stored is not None else np.full(shape, np.nan, np.float32)
    todo = np.flatnonzero((det["counts"] > 0) & np.isin(det["folds"], list(folds)) & np.isnan(plain[:, 0]))
    for start in tqdm(range(0, len(todo), batch), desc=f"embed {target.stem}"):
        idx = todo[start:start + batch]
        crops = np.stack([
            crop_face(load_image(lfw_dir / "images" / str(det["paths"][i])),
                      Face(tuple(det["boxes"][i]), float(det["probs"][i]), det["landmarks"][i]), crop)
            for i in idx
        ])
        both = embedder.embed(np.concatenate([crops, crops[:, :, ::-1]]))
        plain[idx], mirrored[idx] = both[:len(idx)], both[len(idx):]
    np.savez(target, plain=plain, mirrored=mirrored)
    return target


def config_parts(out: Path, config: PipelineConfig, compute: ComputeOptions = ComputeOptions.reference()
                 ) -> list[np.ndarray]:
    """Per embedder of ``config``, (N, D_k) unit embeddings of every LFW image, before centring
    and fusion (NaN rows: not embedded). Flip-TTA is the normalised sum of the two unit views,
    as in :meth:`facecmp.embed.Embedder.embed`."""
    parts = []
    for embedder in config.embedders:
        stored = np.load(embedding_file(out, embedder.weights, embedder.crop, compute))
        view = stored["plain"] + stored["mirrored"] if config.flip else stored["plain"]
        parts.append(view / np.linalg.norm(view, axis=1, keepdims=True))
    return parts


def fit_centres(parts: list[np.ndarray], config: PipelineConfig, fit: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """The mean embedding over the images selected by ``fit`` of each centred embedder (else None)."""
    return tuple(np.nanmean(part[fit], axis=0).astype(np.float32) if embedder.centred else None
                 for part, embedder in zip(parts, config.embedders))


def fuse_parts(parts: list[np.ndarray], config: PipelineConfig,
               centres: tuple[np.ndarray | None, ...] | None = None) -> np.ndarray:
    """(N, D) embeddings from :func:`config_parts` as ``FaceComparer`` computes them
    for ``config``: parts centred (with ``centres``; ``None``: uncentred) and fused by
    :func:`facecmp.embed.fuse_embeddings`."""
    return fuse_embeddings(centre_embeddings(parts, centres or (None,) * len(parts)), config.fusion_shares())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=FacecmpSettings().shared_dir / "data" / "lfw")
    parser.add_argument("--out", type=Path, default=cache_dir() / "training" / "lfw")
    parser.add_argument("--weights", nargs="*", default=[])
    parser.add_argument("--crop", default="box", choices=["box", "similarity"])
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--folds", default="1-10", help="pairs.txt folds to embed, e.g. 1-5")
    parser.add_argument("--backend", default="torch", choices=["torch", "openvino"])
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    args = parser.parse_args()
    compute = ComputeOptions(args.backend, args.precision)
    folds = fold_range(args.folds)
    print(detect_all(args.lfw, args.out))
    for weights in args.weights:
        print(embed_all(args.lfw, args.out, weights, CropConfig(args.crop, args.margin), folds, compute=compute))


if __name__ == "__main__":
    main()

