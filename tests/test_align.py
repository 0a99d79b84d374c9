"""Crop and 5-point alignment geometry, on a real detected face."""
from __future__ import annotations

import numpy as np
import pytest

from facecmp.align import TEMPLATE_160, CropConfig, crop_face, similarity_transform
from facecmp.decode import load_image
from facecmp.detect import FaceDetector


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = TEMPLATE_160 @ (scale * rotation).T + shift
    matrix = similarity_transform(TEMPLATE_160, target)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)


@pytest.fixture(scope="module")
def face_and_image(celebrity_photos, detector):
    image = load_image(celebrity_photos["jerry_seinfeld"][0])
    return detector.detect(image)[0], image


def test_aligned_crop_puts_the_landmarks_on_the_template(face_and_image, detector):
    face, image = face_and_image
    crop = crop_face(image, face, CropConfig("similarity", 0.0))
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    redetected = detector.detect(crop)
    assert redetected and np.abs(redetected[0].landmarks - TEMPLATE_160).mean() < 4


def test_margins_show_more_context(face_and_image):
    face, image = face_and_image
    one_pass = FaceDetector(passes=[(640, 10)])
    for method in ("box", "similarity"):
        tight = one_pass.detect(crop_face(image, face, CropConfig(method, 0.0 if method == "similarity" else 0.1)))
        loose = one_pass.detect(crop_face(image, face, CropConfig(method, 0.5)))
        assert loose[0].width < 0.85 * tight[0].width


def test_aligned_crop_reads_only_the_face_region_yet_equals_a_whole_photo_warp():
    """The crop hands PIL only the region its output reads from: the pixels must be those of
    warping the whole photo, for faces anywhere, at any angle and size, partly or wholly outside."""
    from PIL import Image

    from facecmp.faces import Face

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for _ in range(300):
        angle, scale, centre = rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 4.0), rng.uniform(-200, 900, 2)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        landmarks = (TEMPLATE_160 - 80.0) @ rotation.T * scale + centre
        for margin in (0.0, 0.3):
            template = 80.0 + (TEMPLATE_160 - 80.0) / (1.0 + margin)
            inverse = np.linalg.inv(np.vstack([similarity_transform(landmarks, template), [0, 0, 1]]))
            whole = Image.fromarray(photo).transform((160, 160), Image.AFFINE, data=tuple(inverse[:2].ravel()),
                                                     resample=Image.BILINEAR)
            face = Face(box=(0.0, 0.0, 1.0, 1.0), probability=1.0, landmarks=landmarks)  # the box is not read
            assert np.array_equal(crop_face(photo, face, CropConfig("similarity", margin)), np.asarray(whole))
