"""Measure the 5-point alignment template: mean MTCNN landmarks inside 160 px box crops.

Prints ``TEMPLATE_160`` for :mod:`facecmp.align` from ``detections.npz`` (see
``training/lfw_features.py``): the landmark positions that a box crop with ``--margin`` gives
on average (made left-right symmetric), so a similarity-aligned face is framed like the box crops the weights know,
minus the roll and scale jitter of single faces.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facecmp.settings import cache_dir


def template(detections: Path, margin: float, size: int = 160) -> np.ndarray:
    det = np.load(detections)
    ok = det["counts"] > 0
    boxes, marks = det["boxes"][ok], det["landmarks"][ok]
    width = (boxes[:, 2] - boxes[:, 0]) * (1 + margin)
    height = (boxes[:, 3] - boxes[:, 1]) * (1 + margin)
    left = boxes[:, 0] - (boxes[:, 2] - boxes[:, 0]) * margin / 2
    top = boxes[:, 1] - (boxes[:, 3] - boxes[:, 1]) * margin / 2
    x = (marks[:, :, 0] - left[:, None]) / width[:, None] * size
    y = (marks[:, :, 1] - top[:, None]) / height[:, None] * size
    points = np.stack([x.mean(0), y.mean(0)], axis=1)
    # Faces are left-right symmetric (and flip-TTA mirrors them): average each point with the
    # mirror image of its partner so the template has no sideways bias of the detector's boxes.
    mirrored = points[[1, 0, 2, 4, 3]] * [-1, 1] + [size, 0]
    return (points + mirrored) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detections", type=Path, default=cache_dir() / "training" / "lfw" / "detections.npz")
    parser.add_argument("--margin", type=float, default=0.2)
    args = parser.parse_args()
    points = template(args.detections, args.margin)
    print(f"# {np.load(args.detections)['counts'].astype(bool).sum()} LFW faces, box margin {args.margin}")
    print("TEMPLATE_160 = np.array(\n    [" + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in points) + "], dtype=np.float64\n)")


if __name__ == "__main__":
    main()
