"""Degraded copies of a face set: what poor and old photos do to the score, made reproducibly.

Each image of a folder gets **one** degradation, drawn (kind and severity) from a generator
seeded by the image's path and ``--seed``, so a copy is the same on every machine and the kinds
are spread evenly over people (and over any fit / held-out split by path). The copy keeps the
image's relative path under ``--out``; ``degradations.csv`` beside it names each copy's kind and
severity. Severities are drawn from ranges, not fixed recipes: the held-out data this project is
judged on holds real scans and degradations made otherwise.

Kinds (severity ranges are relative to a 250 px photo and scale with the photo's short side):
- ``blur``: Gaussian blur, sigma 1-4 px (out-of-focus, motion-free);
- ``downscale``: the whole photo shrunk to a short side of 40-120 px (and left small);
- ``noise``: additive Gaussian noise, sigma 6-30 grey levels (sensor noise in low light);
- ``scan``: an old print, scanned: faded contrast, sepia or yellowed toning, film grain, a
  little blur, uneven exposure and dust, then JPEG;
- ``jpeg``: JPEG at quality 5-30;
- ``grayscale``: luminance only.

``python -m training.degrade ../shared/data/lfw/images`` writes ``<cache>/degraded/lfw/images/``;
embed the copies like any folder (``python -m training.embed_images <that folder>`` writes
``<cache>/training/lfw-degraded-<mode>.npz``, where ``training/fit_calibration.py`` looks for them).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from facecmp.settings import cache_dir
from training.embed_images import dataset_name, image_paths

KINDS = ("blur", "downscale", "noise", "scan", "jpeg", "grayscale")
REFERENCE_SIDE = 250.0   # severities below are for a photo of this short side (LFW's)


def rng_for(path: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()[:16], 16))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def blur(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    sigma = rng.uniform(1.0, 4.0)
    return image.filter(ImageFilter.GaussianBlur(sigma * scale)), sigma


def downscale(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    side = rng.uniform(40, 120)
    factor = side / min(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None), side


def noise(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    sigma = rng.uniform(6, 30)
    pixels = np.asarray(image, np.float32) + rng.normal(0, sigma, (image.height, image.width, 1 if rng.random() < 0.5 else 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), sigma


def scan(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    """An old print: the severity is the fade (0 = full contrast, 1 = flat)."""
    fade = rng.uniform(0.2, 0.6)
    grey = np.asarray(image.convert("L"), np.float32) / 255.0
    colour = np.asarray(image, np.float32) / 255.0
    keep_colour = rng.uniform(0.0, 0.5)   # faded colour prints keep some of their colour
    base = keep_colour * colour + (1 - keep_colour) * grey[..., None]
    tone = np.array([1.0, rng.uniform(0.80, 0.92), rng.uniform(0.55, 0.78)], np.float32)   # sepia / yellowing
    paper = rng.uniform(0.78, 0.95)
    pixels = (paper * (1 - fade) * base + fade * 0.55 * paper) * tone
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    centre = rng.uniform(0.3, 0.7, 2) * (w, h)
    exposure = 1.0 - rng.uniform(0.05, 0.3) * (np.hypot(xx - centre[0], yy - centre[1]) / np.hypot(w, h))
    pixels = pixels * exposure[..., None]
    grain = rng.normal(0, rng.uniform(0.02, 0.07), (h, w, 1))
    pixels = pixels + grain
    for _ in range(int(rng.integers(0, 25 * (h * w) / REFERENCE_SIDE ** 2 + 1))):   # dust and scratches
        y, x = rng.integers(0, h), rng.integers(0, w)
        pixels[max(0, y - 1):y + 1, max(0, x - 1):x + 1] = rng.uniform(0.0, 1.0)
    out = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5) * scale))
    return _jpeg(out, rng.integers(35, 80)), fade


def jpeg(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    quality = int(rng.integers(5, 31))
    return _jpeg(image, quality), quality


def grayscale(image: Image.Image, rng, scale: float) -> tuple[Image.Image, float]:
    return image.convert("L").convert("RGB"), 1.0


DEGRADE = {"blur": blur, "downscale": downscale, "noise": noise, "scan": scan, "jpeg": jpeg, "grayscale": grayscale}


def degrade_image(image: Image.Image, path: str, seed: int = 0, kinds: tuple[str, ...] = KINDS
                  ) -> tuple[Image.Image, str, float]:
    """The seeded degraded copy of ``image`` (known by its relative ``path``): (copy, kind, severity)."""
    rng = rng_for(path, seed)
    kind = kinds[int(rng.integers(len(kinds)))]
    copy, severity = DEGRADE[kind](image.convert("RGB"), rng, min(image.size) / REFERENCE_SIDE)
    return copy, kind, float(severity)


def degrade_folder(root: Path, out: Path, *, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> Path:
    """Write one degraded copy of every image under ``root`` to ``out`` (same relative paths) and
    ``out/degradations.csv`` (path, kind, severity); returns the CSV's path."""
    rows = []
    for path in tqdm(image_paths(root), desc=f"degrade {root.name}"):
        with Image.open(root / path) as image:
            copy, kind, severity = degrade_image(image, path, seed, kinds)
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        # JPEG kinds keep their own artefacts; the rest are stored losslessly.
        copy.save(target.with_suffix(".png") if kind not in ("jpeg", "scan") else target,
                  **({"quality": 100} if kind in ("jpeg", "scan") else {}))
        rows.append({"path": str(Path(path).with_suffix(".png") if kind not in ("jpeg", "scan") else Path(path)),
                     "source": path, "kind": kind, "severity": round(severity, 3)})
    manifest = out / "degradations.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "source", "kind", "severity"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def default_output(root: Path) -> Path:
    """``<cache>/degraded/<dataset>/<folder>``: the dataset's name, then its image folder's
    (:func:`training.embed_images.dataset_name` names the copies ``<dataset>-degraded``)."""
    return cache_dir() / "degraded" / dataset_name(root) / root.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of images (searched recursively)")
    parser.add_argument("--out", type=Path, help="default: <cache>/degraded/<dataset>/<folder>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    args = parser.parse_args()
    print(degrade_folder(args.folder, args.out or default_output(args.folder), seed=args.seed, kinds=tuple(args.kinds)))


if __name__ == "__main__":
    main()
