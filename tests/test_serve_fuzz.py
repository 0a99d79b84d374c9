"""Property tests: the OpenAPI schema fuzzed with schemathesis (in-process, bounded), and the
image decoder fuzzed with hypothesis (nothing but ImageDecodeError may come out of it)."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from facecmp.decode import DecodeLimits, load_image
from facecmp.errors import ImageDecodeError

KEY = "fuzz-key-0123"


# -- schemathesis: every operation, bounded examples ------------------------------------------

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)
from schemathesis.checks import not_a_server_error  # noqa: E402


def _fuzz_app():
    from serve.app import create_app
    from serve.settings import Settings

    return create_app(Settings(api_keys=KEY, max_concurrency=1, max_queue=4, mode="fast"))


APP = _fuzz_app()  # cheap: nothing loads until start-up
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # calls go to the app in-process (ASGI); the first one runs its start-up


@pytest.fixture(scope="module", autouse=True)
def loaded_models():
    """Load the models before the first example (start-up then finds them loaded)."""
    from serve.auth import load_key_ring

    APP.state.key_ring = load_key_ring(APP.state.engine.settings)
    APP.state.engine.load()
    APP.state.engine.gate.open()
    if not APP.state.engine.ready:
        pytest.fail(f"the fuzzed app could not load its models: {APP.state.engine.load_error}")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case):
    case.call_and_validate(
        headers={"x-api-key": KEY},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance],
    )


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
