"""The vectorised MTCNN cascade (facecmp.mtcnn) against facenet-pytorch's ``MTCNN.detect``
on real photos, its area resampling against torch's, and an answer for every image size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facecmp.backends import ComputeOptions
from facecmp.decode import load_image
from facecmp.mtcnn import AreaSampler, MtcnnCascade, MtcnnNetworks, pyramid_scales

# The stated tolerance: same faces (count), boxes within half a pixel (IoU >= 0.99 for these
# sizes), landmarks within half a pixel, probabilities within 1e-3. Measured: 1e-4 px.
BOX_PX, LANDMARK_PX, PROBABILITY = 0.5, 0.5, 1e-3


@pytest.fixture(scope="module")
def cascade():
    """The default: networks compiled with OpenVINO (float32)."""
    return MtcnnCascade(MtcnnNetworks(compute=ComputeOptions("openvino", "f32")))


@pytest.fixture(scope="module")
def reference():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, select_largest=False, post_process=False)


def _lfw_photos(lfw_dir, count: int) -> list[np.ndarray]:
    paths = sorted((lfw_dir / "images").glob("*/*_0001.jpg"))[::97][:count]
    return [load_image(path) for path in paths]


def _assert_same_detections(cascade, reference, image: np.ndarray, min_face_size: int, factor: float = 0.709) -> int:
    reference.min_face_size, reference.factor = min_face_size, factor
    with torch.inference_mode():
        boxes, probs, points = reference.detect(image[None], landmarks=True)
    expected = 0 if boxes[0] is None else len(boxes[0])
    found = cascade.detect(image[None], min_face_size, factor)[0]
    assert len(found.boxes) == expected
    if expected:
        assert np.abs(found.boxes - boxes[0]).max() <= BOX_PX
        assert np.abs(found.landmarks - points[0]).max() <= LANDMARK_PX
        assert np.abs(found.probabilities - np.asarray(probs[0], np.float32)).max() <= PROBABILITY
    return expected


def test_same_faces_as_facenet_pytorch_on_the_sample_photos(cascade, reference, celebrity_photos):
    faces = 0
    for path in [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:2]]:
        image = load_image(path)
        faces += _assert_same_detections(cascade, reference, image, 20)
        small = np.asarray(Image.fromarray(image).resize((320, round(320 * image.shape[0] / image.shape[1]))))
        faces += _assert_same_detections(cascade, reference, small, 40)
    assert faces >= 20  # the comparison compared faces


def test_a_coarser_pyramid_gives_facenet_pytorchs_faces_for_that_pyramid(cascade, reference, celebrity_photos):
    """Fewer pyramid levels (DetectPass.pyramid_factor) are still facenet-pytorch's cascade."""
    faces = 0
    for person in sorted(celebrity_photos)[:3]:
        image = load_image(celebrity_photos[person][0])
        small = np.asarray(Image.fromarray(image).resize((320, round(320 * image.shape[0] / image.shape[1]))))
        for factor in (0.6, 0.5):
            faces += _assert_same_detections(cascade, reference, small, 40, factor)
    assert faces >= 6
    assert len(pyramid_scales(240, 320, 40, 0.5)) < len(pyramid_scales(240, 320, 40))


def test_the_pytorch_networks_give_the_same_faces(reference, celebrity_photos):
    cascade = MtcnnCascade(MtcnnNetworks(compute=ComputeOptions("torch")))
    for person in sorted(celebrity_photos)[:2]:
        assert _assert_same_detections(cascade, reference, load_image(celebrity_photos[person][0]), 20) >= 1


@pytest.mark.needs_shared
@pytest.mark.slow  # the quick tier compares on the sample photos (above)
def test_same_faces_as_facenet_pytorch_on_lfw(cascade, reference, lfw_dir):
    """LFW's 250 px photos are detected at full size from 20 px (no coarse pass): as before."""
    photos = _lfw_photos(lfw_dir, 30)
    assert sum(_assert_same_detections(cascade, reference, photo, 20) for photo in photos) >= 30


def test_area_resampling_equals_torch_area_interpolation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    sampler = AreaSampler(image)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    for size in [(12, 12), (19, 27), (37, 53), (50, 70)]:
        expected = torch.nn.functional.interpolate(pixels, size=size, mode="area")[0]
        assert torch.equal(torch.from_numpy(sampler.resize(size)), expected)
    regions = [(1, 0, 5, 3), (3, 4, 30, 40), (0, 0, 37, 53), (36, 52, 37, 53), (10, 2, 12, 50)]
    for side in (24, 48):
        crops = torch.from_numpy(sampler.crop(*(np.array(column) for column in zip(*regions)), side))
        for crop, (top, left, bottom, right) in zip(crops, regions):
            expected = torch.nn.functional.interpolate(pixels[:, :, top:bottom, left:right],
                                                       size=(side, side), mode="area")[0]
            assert torch.equal(crop, expected)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (11, 40), (12, 12), (23, 17), (1, 4000), (4000, 1), (7, 2000)])
def test_images_too_small_for_any_face_have_none(cascade, shape):
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert len(cascade.detect(image[None], 20)[0].boxes) == 0


def test_pyramid_is_empty_below_the_smallest_face():
    assert pyramid_scales(19, 400, 20) == [] and len(pyramid_scales(20, 400, 20)) == 1
    assert pyramid_scales(250, 250, 20)[0] == 0.6 and len(pyramid_scales(250, 250, 20)) == 8


def test_every_size_and_aspect_ratio_gets_an_answer(celebrity_photos, detector):
    """From 1x1 to 40 MP at any aspect ratio; a face in a 3000x300 banner is still found."""
    photo = load_image(celebrity_photos["ben_afflek"][0])
    face = detector.detect(photo)[0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    margin = (y2 - y1) // 3
    head = photo[max(0, y1 - margin):y2 + margin, max(0, x1 - margin):x2 + margin]
    head = np.asarray(Image.fromarray(head).resize((round(head.shape[1] * 260 / head.shape[0]), 260)))
    banner = np.full((300, 3000, 3), 200, np.uint8)
    banner[20:280, 1500:1500 + head.shape[1]] = head
    [found] = detector.detect(banner)
    assert 1500 <= found.box[0] and found.box[2] <= 1500 + head.shape[1] and 20 <= found.box[1]
    strip = np.full((3000, 300, 3), 200, np.uint8)  # and in a 300 px wide, 3000 px tall strip
    strip[2000:2260, 20:20 + head.shape[1]] = head
    [found] = detector.detect(strip)
    assert 2000 <= found.box[1] and found.box[3] <= 2260 and 20 <= found.box[0]
    for shape in [(1, 1), (5000, 8000), (1000, 40000), (40000, 1000), (3, 13000)]:
        assert detector.detect(np.full((*shape, 3), 127, np.uint8)) == []
    assert detector.detect_for_liveness(np.full((1, 1, 3), 127, np.uint8)) == []
