"""Fewer pyramid scales in the coarse detection pass: what they save and what they move.

For each pyramid factor of the coarse pass (320 px, faces from 40 px; MTCNN's own is 0.709),
the fine pass unchanged:

- the detection time of two 640x480 LFW photos (p50 over ``--pairs`` pairs, three passes);
- the accuracy guard's figures (FAST): pairs right at 0.7 on pairs.txt fold 1's first 600
  pairs as 640x480 photos, and the FMR at 0.7 over all their different-person pairs;
- the coarse pass alone on UTKFace faces of all ages and groups, each pasted at a random size
  (140-480 px) and place into a 640x480 photo: how often it finds a face (a miss costs the fine
  pass), and how far its landmarks lie from facenet-pytorch's own MTCNN at 640 px from 20 px.

    python bench/bench_pyramid.py [--factors 0.709 0.6 0.5] [--faces 1500]

Needs ``../shared`` (LFW and utkface-dev). A command, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import SIZES, guard_images, guard_row, jpeg_pairs, lfw_pairs, typical_photo  # noqa: E402
from eval.devdata import LFW, UTKFACE, dataset_dir  # noqa: E402
from facecmp import FaceComparer  # noqa: E402
from facecmp.decode import load_image  # noqa: E402
from facecmp.detect import DETECT_PASSES, DetectPass, FaceDetector  # noqa: E402


def passes(factor: float) -> tuple[DetectPass, ...]:
    coarse, fine = DETECT_PASSES
    return DetectPass(coarse.side, coarse.min_face_size, factor), fine


def pasted_faces(utkface: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` UTKFace photos, each resized to a random side of 140-480 px and pasted at a random
    place into a 640x480 photo filled with its mean colour."""
    rng = np.random.default_rng(seed)
    paths = sorted((utkface / "images").glob("*.jpg"))
    photos = []
    for index in rng.choice(len(paths), count, replace=False):
        side = int(rng.uniform(140, 480))
        face = Image.open(paths[index]).convert("RGB").resize((side, side), Image.LANCZOS)
        canvas = Image.new("RGB", (640, 480), face.resize((1, 1), Image.BOX).getpixel((0, 0)))
        canvas.paste(face, (int(rng.uniform(0, 640 - side)), int(rng.uniform(0, 480 - side))))
        photos.append(np.asarray(canvas))
    return photos


def detect_all(detector: FaceDetector, photos: list[np.ndarray]) -> list:
    return [faces for start in range(0, len(photos), 16) for faces in detector.detect_batch(photos[start:start + 16])]


def guard_figures(comparer: FaceComparer, photos: list[bytes], identities, pairs, same) -> str:
    row = guard_row(comparer, photos, identities, pairs, same)
    low, high = row["fmr_interval"]
    return (f"faces {row['found'].sum()}/{len(photos)}, right at 0.7 {row['correct']}/{len(pairs)}, "
            f"FMR {row['fmr']:.2e} [{low:.2e}, {high:.2e}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.709, 0.6, 0.5])
    parser.add_argument("--pairs", type=int, default=10, help="LFW pairs timed")
    parser.add_argument("--faces", type=int, default=1500, help="UTKFace faces pasted into photos")
    args = parser.parse_args()
    lfw = dataset_dir(LFW)

    timed = [[load_image(a), load_image(b)] for a, b in jpeg_pairs(lfw_pairs(lfw, args.pairs), SIZES["640x480"])]
    paths, identities, pairs, same = guard_images(lfw, 600)
    guard_photos = [base64.b64decode(typical_photo(p, SIZES["640x480"])) for p in paths]
    pasted = pasted_faces(dataset_dir(UTKFACE), args.faces)
    reference = detect_all(FaceDetector(passes=[(640, 20)], cascade="facenet-pytorch", channels_last=False), pasted)

    for factor in args.factors:
        comparer = FaceComparer("fast", detector=FaceDetector(passes=passes(factor)))
        for pair in timed:
            comparer.detector.detect_batch(pair)
        times = []
        for _ in range(3):
            for pair in timed:
                start = time.perf_counter()
                comparer.detector.detect_batch(pair)
                times.append((time.perf_counter() - start) * 1000)
        coarse = detect_all(FaceDetector(passes=passes(factor)[:1]), pasted)
        both = [i for i, (mine, ref) in enumerate(zip(coarse, reference)) if mine and ref]
        distance = np.array([np.linalg.norm(coarse[i][0].landmarks - reference[i][0].landmarks, axis=1).mean()
                             for i in both])
        print(f"factor {factor}: detect two 640x480 photos p50 {statistics.median(times):.1f} ms; guard (fast): "
              f"{guard_figures(comparer, guard_photos, identities, pairs, same)}; pasted UTKFace faces: coarse pass "
              f"found {sum(bool(f) for f in coarse)}/{len(coarse)}, landmarks vs facenet-pytorch at 640 px median "
              f"{np.median(distance):.2f} px, over 10 px for {(distance > 10).sum()}/{len(distance)}", flush=True)


if __name__ == "__main__":
    main()
