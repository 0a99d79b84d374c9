"""Property tests of the library: the image decoder fuzzed with hypothesis (nothing but
ImageDecodeError may come out of it), and valid images of any size, aspect ratio, colour mode
and encoding through decoding, detection, embedding and the liveness rules (only documented
outcomes). The service's side: tests/test_serve_fuzz.py."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from facecmp.decode import DecodeLimits, load_image
from facecmp.errors import LIVENESS_CODES, FaceNotDetectedError, ImageDecodeError
from image_strategies import user_images

# -- hypothesis: the decoder never raises anything but ImageDecodeError ------------------------

LIMITS = DecodeLimits(max_bytes=256 * 1024, max_pixels=4_000_000)


def _encoded(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = [_encoded("JPEG", 1), _encoded("PNG", 2)]


def _check(source) -> None:
    try:
        image = load_image(source, LIMITS)
    except ImageDecodeError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@st.composite
def mutated_images(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut])


@given(st.binary(max_size=2048))
@settings(max_examples=150, deadline=None)
def test_decoder_random_bytes(data):
    _check(data)


@given(mutated_images())
@settings(max_examples=150, deadline=None)
def test_decoder_mutated_jpeg_png(data):
    _check(data)


@given(st.one_of(st.text(max_size=512), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                              "0123456789+/=-_ \n", max_size=2048)))
@settings(max_examples=150, deadline=None)
def test_decoder_random_text(text):
    _check(text)


@given(st.sampled_from(SEEDS).map(lambda raw: __import__("base64").b64encode(raw).decode()),
       st.sampled_from(["", "data:image/png;base64,", "data:;base64,", " \n"]))
@settings(max_examples=20, deadline=None)
def test_decoder_valid_base64_images(text, prefix):
    image = load_image(prefix + text, LIMITS)
    assert image.shape == (24, 32, 3)


@given(st.integers(1, 100_000), st.integers(1, 100_000))
@settings(max_examples=40, deadline=None)
def test_decoder_refuses_bombs_before_decoding(width, height):
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError):
        load_image(header, LIMITS)  # no pixel data follows: refused by size or as truncated
    assert time.perf_counter() - start < 1.0


# -- hypothesis: valid images of every shape reach detection --------------------------------------

@pytest.mark.slow
@given(user_images())
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_valid_image_gets_a_face_or_face_not_detected(fast_comparer, data):
    from facecmp.liveness import LivenessChecker
    from facecmp.pipeline import FaceRepresentation

    result = fast_comparer.represent_batch([data])[0]
    assert isinstance(result, (FaceRepresentation, FaceNotDetectedError)), repr(result)
    image = load_image(data)
    faces = fast_comparer.detector.detect_for_liveness(image)  # the liveness path's detection
    code, checks, _ = LivenessChecker().check_requirements(image, faces)
    assert code is None or code in LIVENESS_CODES
    assert (code == "FACE_NOT_FOUND") == (not faces) and checks["face_count"]["value"] <= len(faces)
