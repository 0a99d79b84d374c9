"""Measure the 5-point alignment template: mean MTCNN landmarks inside 160 px box crops.

Prints ``TEMPLATE_160`` for :mod:`facecmp.align` from the faces the pipeline chose in the LFW
images (eval's cached embedding path, :func:`eval.embeddings.embed_images`; the faces do not
depend on the mode): the landmark positions that a box crop with ``--margin`` gives on average
(made left-right symmetric), so a similarity-aligned face is framed like the box crops the
weights know, minus the roll and scale jitter of single faces.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eval.devdata import LFW, dataset_dir
from eval.embeddings import embed_images
from facecmp.pipeline import FaceComparer
from training.lfw_protocol import lfw_images


def template(boxes: np.ndarray, marks: np.ndarray, margin: float, size: int = 160) -> np.ndarray:
    """(N, 4) face boxes and their (N, 5, 2) landmarks -> the (5, 2) template."""
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


def lfw_faces(lfw: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) boxes and (N, 5, 2) landmarks of the face chosen in each LFW image that has one."""
    paths = lfw_images(lfw)[0]
    result = embed_images([lfw / "images" / p for p in paths], FaceComparer("fast"), mode="fast")
    faces = [record.face for record in result.records if record is not None and record.ok]
    return np.array([face["box"] for face in faces]), np.array([face["landmarks"] for face in faces])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    parser.add_argument("--margin", type=float, default=0.2)
    args = parser.parse_args()
    boxes, marks = lfw_faces(args.lfw)
    points = template(boxes, marks, args.margin)
    print(f"# {len(boxes)} LFW faces, box margin {args.margin}")
    print("TEMPLATE_160 = np.array(\n    [" + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in points) + "], dtype=np.float64\n)")


if __name__ == "__main__":
    main()
