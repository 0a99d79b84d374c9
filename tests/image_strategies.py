"""Hypothesis strategies for what users send: valid image files of any size, aspect ratio,
colour mode and encoding, blank, noisy or holding a real face (a sample photo scaled and placed
anywhere, cut by the border or not)."""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from hypothesis import strategies as st
from PIL import Image

MODES = ("L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16")
ENCODINGS = {"L": ("JPEG", "PNG"), "LA": ("PNG",), "P": ("PNG",), "RGB": ("JPEG", "PNG", "MPO"),
             "RGBA": ("PNG",), "CMYK": ("JPEG",), "I;16": ("PNG",)}


@lru_cache(maxsize=1)
def _portrait() -> np.ndarray:
    from facecmp.samples import photos_by_person

    return np.asarray(Image.open(photos_by_person("val")["madonna"][0]).convert("RGB"))


def _pixels(draw, width: int, height: int) -> np.ndarray:
    content = draw(st.sampled_from(["flat", "noise", "face"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if content == "flat":
        return np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
    if content == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = np.full((height, width, 3), 100, np.uint8)
    side = draw(st.integers(1, max(1, min(2 * max(width, height), 1200))))
    face = np.asarray(Image.fromarray(_portrait()).resize((side, side), Image.BILINEAR))
    left = draw(st.integers(-side // 2, max(0, width - side // 2)))
    top = draw(st.integers(-side // 2, max(0, height - side // 2)))
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    if x0 < x1 and y0 < y1:
        image[y0:y1, x0:x1] = face[y0 - top:y1 - top, x0 - left:x1 - left]
    return image


@st.composite
def user_images(draw, max_pixels: int = 600_000) -> bytes:
    """Encoded image bytes: width and height from 1 px (small sizes drawn often) to 3000 px,
    at most ``max_pixels``; one of :data:`MODES`; JPEG, PNG or MPO as the mode allows."""
    side = st.one_of(st.integers(1, 48), st.integers(1, 3000))
    width = draw(side)
    height = min(draw(side), max(1, max_pixels // width))
    mode = draw(st.sampled_from(MODES))
    encoding = draw(st.sampled_from(ENCODINGS[mode]))
    rgb = _pixels(draw, width, height)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257)
    else:
        image = Image.fromarray(rgb).convert(mode)
    buffer = io.BytesIO()
    if encoding == "MPO":
        image.save(buffer, format="MPO", save_all=True, append_images=[image.transpose(Image.Transpose.ROTATE_180)])
    else:
        image.save(buffer, format=encoding)
    return buffer.getvalue()
