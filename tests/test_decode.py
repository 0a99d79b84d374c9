"""Decoding untrusted images: formats, colour modes, EXIF, limits; every failure typed."""
from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facecmp.decode import DecodeLimits, decode_base64, load_image
from facecmp.errors import ImageDecodeError


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo(celebrity_photos) -> Image.Image:
    return Image.open(celebrity_photos["madonna"][0]).convert("RGB")


def test_jpeg_png_path_bytes_base64_and_data_url_agree(photo, tmp_path):
    png = _encode(photo, "PNG")
    path = tmp_path / "face.png"
    path.write_bytes(png)
    b64 = base64.b64encode(png).decode()
    expected = np.asarray(photo)
    for source in (png, str(path), path, b64, "data:image/png;base64," + b64, photo, expected):
        decoded = load_image(source)
        assert decoded.dtype == np.uint8 and decoded.shape == expected.shape
        assert np.array_equal(decoded, expected)
    jpeg = load_image(_encode(photo, "JPEG", quality=95))
    assert jpeg.shape == expected.shape and np.abs(jpeg.astype(int) - expected).mean() < 4


@pytest.mark.parametrize("orientation, turns", [(6, -1), (8, 1), (3, 2)])  # np.rot90: +1 = 90 degrees CCW
def test_exif_orientation_is_applied(photo, orientation, turns):
    # 6: "rotate 90 CW to view", 8: "rotate 90 CCW", 3: "rotate 180". The photo is cropped so
    # that its width and height differ and every orientation tells itself from the others.
    photo = photo.crop((0, 0, photo.width, photo.height * 3 // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = load_image(_encode(photo, "JPEG", quality=95, exif=exif.tobytes())).astype(int)
    expected = np.rot90(np.asarray(photo), turns).astype(int)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).mean() < 4
    wrong = np.rot90(np.asarray(photo), turns + 2).astype(int)  # the opposite turn
    assert np.abs(decoded - wrong).mean() > 20


def test_mpo_jpeg_decodes_as_its_first_picture(photo):
    """Phone cameras write JPEGs with a multi-picture (MPF) header; Pillow opens them as MPO."""
    second = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("L").convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format="MPO", save_all=True, append_images=[second], quality=95)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    for source in (data, base64.b64encode(data).decode()):
        decoded = load_image(source).astype(int)
        assert decoded.shape == (photo.height, photo.width, 3)
        assert np.abs(decoded - np.asarray(photo)).mean() < 4
        assert np.abs(decoded - np.asarray(second)).mean() > 20


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "LA"])
def test_colour_modes_become_rgb(photo, mode):
    if mode == "I;16":
        gray = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(gray)
        assert image.mode == "I;16"
    else:
        image = photo.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = load_image(_encode(image, fmt))
    assert decoded.shape == (photo.height, photo.width, 3) and decoded.dtype == np.uint8
    if mode == "I;16":  # 16-bit values are scaled down, not clipped to white
        assert np.abs(decoded[..., 0].astype(int) - np.asarray(photo.convert("L"))).max() <= 1


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(_encode(rgba, "PNG"))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("payload", [
    b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 64, b"GIF89a" + b"\x00" * 64,
])
def test_garbage_bytes_raise_the_decode_error(payload):
    with pytest.raises(ImageDecodeError) as info:
        load_image(payload)
    assert info.value.code == "ERR_BASE64_IMAGE_CANNOT_BE_DECODED"


def test_other_formats_are_refused(photo):
    with pytest.raises(ImageDecodeError):
        load_image(_encode(photo, "GIF"))
    with pytest.raises(ImageDecodeError):
        load_image(_encode(photo, "BMP"))


@pytest.mark.parametrize("text", ["!!!notbase64!!!", "abc", "   ", "data:image/png;base64,"])
def test_invalid_base64_raises(text):
    with pytest.raises(ImageDecodeError):
        load_image(text)


def test_truncated_image_raises(photo):
    data = _encode(photo, "PNG")
    with pytest.raises(ImageDecodeError):
        load_image(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but holds almost no data: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        load_image(_png_header_only(100_000, 100_000))


def test_byte_and_pixel_limits_are_settings(photo):
    data = _encode(photo, "PNG")
    with pytest.raises(ImageDecodeError, match="larger than"):
        load_image(data, DecodeLimits(max_bytes=len(data) - 1))
    with pytest.raises(ImageDecodeError, match="larger than"):
        decode_base64(base64.b64encode(data).decode(), DecodeLimits(max_bytes=len(data) // 2))
    with pytest.raises(ImageDecodeError, match="exceeds"):
        load_image(data, DecodeLimits(max_pixels=photo.width * photo.height - 1))


def test_bad_arrays_raise():
    with pytest.raises(ImageDecodeError):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageDecodeError):
        load_image(np.zeros((4, 4, 7), np.uint8))
    assert load_image(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
