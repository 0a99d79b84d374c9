"""The MiniFASNet input crop, as the reference ``CropImage`` (src/generate_patches.py) makes it.

The face box is enlarged about its centre by ``scale`` (reduced so that the enlarged box fits
the image), shifted back inside the image where it runs off, cut out and resized to the model
input with bilinear interpolation (OpenCV ``INTER_LINEAR`` semantics: half-pixel centres, no
antialiasing, OpenCV's fixed-point rounding). OpenCV is not a runtime dependency: the resize is
re-implemented here and compared with ``cv2.resize`` in the tests.
"""
from __future__ import annotations

import numpy as np


def reference_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) floats -> the reference's integer (x, y, width, height).

    The reference detector reports ``[int(left), int(top), int(right-left+1), int(bottom-top+1)]``.
    """
    x1, y1, x2, y2 = box
    return int(x1), int(y1), int(x2 - x1 + 1), int(y2 - y1 + 1)


def enlarged_box(image_width: int, image_height: int, box_xywh: tuple[int, int, int, int],
                 scale: float) -> tuple[int, int, int, int]:
    """Inclusive pixel bounds (left, top, right, bottom) of the box enlarged by ``scale``."""
    x, y, box_w, box_h = box_xywh
    scale = min((image_height - 1) / box_h, (image_width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    centre_x, centre_y = x + box_w / 2, y + box_h / 2
    left, right = centre_x - new_w / 2, centre_x + new_w / 2
    top, bottom = centre_y - new_h / 2, centre_y + new_h / 2
    if left < 0:
        left, right = 0, right - left
    if top < 0:
        top, bottom = 0, bottom - top
    if right > image_width - 1:
        left, right = left - (right - image_width + 1), image_width - 1
    if bottom > image_height - 1:
        top, bottom = top - (bottom - image_height + 1), image_height - 1
    return int(left), int(top), int(right), int(bottom)


def context_crop(image: np.ndarray, box: tuple[float, float, float, float], scale: float,
                 size: int = 80) -> np.ndarray:
    """(H, W, C) uint8 image, face box (x1, y1, x2, y2) -> (size, size, C) uint8 crop."""
    height, width = image.shape[:2]
    left, top, right, bottom = enlarged_box(width, height, reference_box(box), scale)
    return resize_bilinear(image[top:bottom + 1, left:right + 1], size, size)


def resize_bilinear(image: np.ndarray, out_width: int, out_height: int) -> np.ndarray:
    """(H, W, C) uint8 -> (out_height, out_width, C) uint8, as ``cv2.resize(..., INTER_LINEAR)``.

    OpenCV's fixed-point arithmetic is reproduced (11-bit weights, its rounding of the
    vertical pass), so downscaling matches ``cv2.resize`` bit for bit; upscaling may differ
    by 1 on a few pixels.
    """
    rows_first, rows_second, row_w0, row_w1 = _taps(image.shape[0], out_height)
    cols_first, cols_second, col_w0, col_w1 = _taps(image.shape[1], out_width)
    def horizontal(rows: np.ndarray) -> np.ndarray:  # only the source rows that are used
        pixels = image[rows].astype(np.int64)
        return (pixels[:, cols_first] * col_w0[None, :, None] + pixels[:, cols_second] * col_w1[None, :, None]) >> 4

    top, bottom = horizontal(rows_first), horizontal(rows_second)
    out = (((row_w0[:, None, None] * top) >> 16) + ((row_w1[:, None, None] * bottom) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


_WEIGHT_ONE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output pixel: first and second source index and their fixed-point weights."""
    scale = 1.0 / (out_size / in_size)
    position = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    frac = (position - first).astype(np.float32)
    frac[(first < 0) | (first >= in_size - 1)] = 0.0  # edge pixels are repeated, not blended
    first = np.clip(first, 0, in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight1 = np.rint(frac * _WEIGHT_ONE).astype(np.int64)
    weight0 = np.rint((1.0 - frac) * _WEIGHT_ONE).astype(np.int64)
    return first, second, weight0, weight1
