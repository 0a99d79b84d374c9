"""Cut the embedder's input out of the full-resolution image.

Two methods, chosen per pipeline by measurement on LFW (see docs/modes.md, "The stages"):

- ``box``: MTCNN's box enlarged by ``margin`` (a fraction of the box size, split evenly
  between the sides, as Sandberg's ``align_dataset_mtcnn`` does in pixels), clipped to the
  image, resized to ``size`` x ``size``.
- ``similarity``: a 5-point similarity transform (rotation, uniform scale, shift; Umeyama's
  least squares) taking the landmarks onto :data:`TEMPLATE_160`, which removes in-plane
  rotation that a box crop keeps; ``margin`` > 0 shrinks the template about the centre by
  ``1 / (1 + margin)``, showing that much more context.

Both take an (H, W, 3) uint8 RGB array and a :class:`Face`, and return (size, size, 3) uint8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from facecmp.faces import Face

# Mean MTCNN landmark positions (left eye, right eye, nose, mouth left, mouth right) in
# 160 px box crops with margin 0.2, over 7,699 LFW faces, made left-right symmetric
# (training/measure_template.py).
TEMPLATE_160 = np.array(
    [[50.0, 64.6], [110.0, 64.6], [80.0, 91.1], [53.5, 114.0], [106.5, 114.0]], dtype=np.float64
)


@dataclass(frozen=True)
class CropConfig:
    method: Literal["box", "similarity"] = "box"
    margin: float = 0.2
    size: int = 160


def crop_face(image: np.ndarray, face: Face, config: CropConfig = CropConfig()) -> np.ndarray:
    """The (size, size, 3) uint8 embedder input for ``face`` in ``image``."""
    if config.method == "box":
        return _box_crop(image, face.box, config.margin, config.size)
    return _similarity_crop(image, face.landmarks, config.margin, config.size)


def _box_crop(image: np.ndarray, box, margin: float, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    pad_x, pad_y = (x2 - x1) * margin / 2, (y2 - y1) * margin / 2
    left, top = max(int(round(x1 - pad_x)), 0), max(int(round(y1 - pad_y)), 0)
    right, bottom = min(int(round(x2 + pad_x)), width), min(int(round(y2 + pad_y)), height)
    if right <= left or bottom <= top:  # box entirely outside: degenerate detection
        left, top, right, bottom = 0, 0, width, height
    crop = Image.fromarray(image[top:bottom, left:right])
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 matrix of the similarity transform mapping ``source`` (N, 2) onto ``target`` (N, 2).

    Umeyama (1991), least squares over rotation, uniform scale and translation.
    """
    src_mean, dst_mean = source.mean(0), target.mean(0)
    src, dst = source - src_mean, target - dst_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / src.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def _similarity_crop(image: np.ndarray, landmarks: np.ndarray, margin: float, size: int) -> np.ndarray:
    template = (80.0 + (TEMPLATE_160 - 80.0) / (1.0 + margin)) * (size / 160.0)
    forward = np.vstack([similarity_transform(np.asarray(landmarks, float), template), [0, 0, 1]])
    inverse = np.linalg.inv(forward)  # PIL maps output pixels back to input pixels
    # Only the part of the photo the output reads from (its corners mapped back, plus 2 px for
    # the bilinear neighbours) goes to PIL, which copies what it is given: the same pixels, in
    # a 640x480 photo 0.98 -> 0.76 ms a crop (measured).
    corners = inverse[:2] @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]], float)
    height, width = image.shape[:2]
    left, top = (max(int(np.floor(v)) - 2, 0) for v in corners.min(axis=1))
    right, bottom = min(int(np.ceil(corners[0].max())) + 2, width), min(int(np.ceil(corners[1].max())) + 2, height)
    if right <= left or bottom <= top:  # the face maps wholly outside the photo: all black, as PIL fills
        return np.zeros((size, size, 3), np.uint8)
    shifted = inverse[:2] - np.array([[0, 0, left], [0, 0, top]], float)
    warped = Image.fromarray(image[top:bottom, left:right]).transform(
        (size, size), Image.AFFINE, data=tuple(shifted.ravel()), resample=Image.BILINEAR
    )
    return np.asarray(warped)
