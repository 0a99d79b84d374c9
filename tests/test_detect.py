"""Detection on images of every size and shape: a list of faces for each, never an exception,
and a face that is in a banner or a strip is still found."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecmp.detect import DETECT_PASSES, DetectPass, pass_scale


@pytest.fixture(scope="module")
def portrait(celebrity_photos) -> np.ndarray:
    """A 200x200 sample photo with one face, about 52 px wide."""
    return np.asarray(Image.open(celebrity_photos["madonna"][0]).convert("RGB"))


def banner_with_face(portrait: np.ndarray, width: int, height: int, face_side: int, left: int) -> np.ndarray:
    """``portrait`` scaled to ``face_side`` x ``face_side`` on a grey ``width`` x ``height`` image."""
    image = np.full((height, width, 3), 90, np.uint8)
    face = np.asarray(Image.fromarray(portrait).resize((face_side, face_side), Image.BICUBIC))
    top = (height - face_side) // 2
    image[top:top + face_side, left:left + face_side] = face
    return image


# Each shape made facenet-pytorch's MTCNN fail (torch.cat of an empty pyramid) before pass_scale.
SHAPES = [(1, 1), (16, 16), (12, 12), (19, 19), (200, 2400), (3000, 120), (300, 3000), (5, 400), (400, 5),
          (20, 40000), (100, 400000)]


@pytest.mark.parametrize("height, width", SHAPES, ids=[f"{w}x{h}" for h, w in SHAPES])
def test_images_of_any_size_and_aspect_get_a_list(detector, height, width):
    image = np.full((height, width, 3), 128, np.uint8)
    assert detector.detect(image) == []
    assert detector.detect_for_liveness(image) == []
    assert detector.detect_batch([image, image]) == [[], []]


@pytest.mark.parametrize("width, height, face_side, left", [
    (3000, 300, 280, 1500),   # a real face pasted into a 3000x300 banner
    (2400, 200, 190, 100),
    (120, 3000, 116, 2),      # a 120x3000 strip: the face (about 30 px) is 1/100 of the long side
])
def test_face_in_a_banner_or_strip_is_found(detector, portrait, width, height, face_side, left):
    image = banner_with_face(portrait, width, height, face_side, left)
    top = (height - face_side) // 2
    for faces in (detector.detect(image), detector.detect_for_liveness(image)):
        assert len(faces) == 1 and faces[0].probability >= 0.9
        x1, y1, x2, y2 = faces[0].box
        assert left - 10 <= x1 < x2 <= left + face_side + 10 and top - 10 <= y1 < y2 <= top + face_side + 10
        assert faces[0].width > 0.2 * face_side  # the portrait's face is a quarter of it


def test_pass_scale_keeps_photos_as_they_were_and_fits_banners():
    coarse, fine = DetectPass(320, 40), DetectPass(640, 20)  # passes of known sizes, whatever the defaults are
    # Ordinary photos: the long side to the pass's side, as before the guard.
    assert pass_scale(480, 640, coarse) == 0.5 and pass_scale(480, 640, fine) == 1.0
    assert pass_scale(250, 250, fine) == 1.0 and pass_scale(3000, 4000, fine) == pytest.approx(0.16)
    assert pass_scale(1000, 4000, fine) == 0.16  # 4:1 is still a photo
    # A 2400x200 banner keeps a short side of a quarter of the pass's side: 80 px, not 27.
    assert pass_scale(200, 2400, coarse) == pytest.approx(0.4)
    assert pass_scale(3000, 120, fine) == 1.0  # 360,000 pixels: fewer than a 640x640 photo
    # Thumbnails and strips that cannot hold a face of the pass's smallest size are not searched.
    assert pass_scale(16, 16, fine) is None and pass_scale(1, 1, fine) is None
    assert pass_scale(30, 2400, coarse) is None and pass_scale(30, 2400, fine) == 1.0
    # Never more pixels than a square photo at that pass, never upscaled.
    for height, width in ((20, 20000), (64, 50000), (300, 3000), (21, 21)):
        for detect_pass in (coarse, fine, *DETECT_PASSES):
            scale = pass_scale(height, width, detect_pass)
            if scale is not None:
                assert scale <= 1.0 and height * width * scale ** 2 <= detect_pass.side ** 2 * 1.01
                assert round(min(height, width) * scale) >= detect_pass.min_face_size
