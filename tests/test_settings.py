"""One settings object: every FACECMP_* variable is read by facecmp.settings, and the service's
Settings extends it, so each means the same in the library and the service."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecmp.backends import ComputeOptions
from facecmp.decode import DecodeLimits
from facecmp.errors import ImageDecodeError, LivenessError, WeightsError
from facecmp.modes import get_mode
from facecmp.settings import FacecmpSettings, LivenessSettings, cache_dir
from serve.settings import Settings


def test_mode_in_any_case_works_in_the_library_and_the_service(monkeypatch):
    monkeypatch.setenv("FACECMP_MODE", "FAST")
    assert FacecmpSettings().mode == "fast" == Settings().mode == get_mode("FAST").mode
    monkeypatch.setenv("FACECMP_MODE", "Accurate")
    assert Settings().mode == "accurate" == get_mode("Accurate").mode
    monkeypatch.setenv("FACECMP_MODE", "fastest")
    with pytest.raises(ValueError, match="mode"):
        Settings()


def test_backend_and_precision_are_service_settings(monkeypatch):
    monkeypatch.setenv("FACECMP_EMBED_BACKEND", "TORCH")
    monkeypatch.setenv("FACECMP_PRECISION", "f32")
    settings = Settings()
    assert (settings.embed_backend, settings.precision) == ("torch", "f32")
    assert ComputeOptions.from_settings(settings, threads=3) == ComputeOptions("torch", "f32", threads=3)
    assert ComputeOptions.from_settings() == ComputeOptions("torch", "f32")  # the library reads the same
    explicit = Settings(embed_backend="openvino", precision="bf16")  # named fields win over the environment
    assert ComputeOptions.from_settings(explicit) == ComputeOptions("openvino", "bf16")


def test_liveness_variables_are_read_once_and_nested_in_both(monkeypatch, tmp_path):
    monkeypatch.setenv("FACECMP_LIVENESS_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACECMP_LIVENESS_THRESHOLD", "0.6")
    for settings in (FacecmpSettings(), Settings()):
        assert settings.liveness == LivenessSettings() == LivenessSettings(weights_dir=tmp_path, threshold=0.6)


def test_cache_dir_and_its_fallbacks(monkeypatch, tmp_path):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.setenv("FACECMP_CACHE_DIR", "")  # empty: unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "facecmp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == Path(tmp_path / "home" / ".cache" / "facecmp")


def test_image_limits_are_settings_of_the_library_and_stricter_in_the_service(monkeypatch):
    assert FacecmpSettings().decode_limits == DecodeLimits()          # the library's own, from decode.py
    service = Settings().decode_limits
    assert service.max_bytes < DecodeLimits().max_bytes and service.max_pixels < DecodeLimits().max_pixels
    monkeypatch.setenv("FACECMP_MAX_IMAGE_BYTES", "1000")             # one variable, both readers
    assert FacecmpSettings().decode_limits.max_bytes == Settings().decode_limits.max_bytes == 1000


def test_threads_per_inference_is_read_under_its_name(monkeypatch):
    monkeypatch.setenv("FACECMP_THREADS_PER_INFERENCE", "3")
    assert Settings().inference_threads == 3
    monkeypatch.delenv("FACECMP_THREADS_PER_INFERENCE")
    assert Settings(max_concurrency=1).inference_threads == (os.cpu_count() or 1)


def _cache_with(tmp_path: Path, *weights: str) -> Path:
    """A cache folder holding only ``weights`` (links to the installed files)."""
    from facecmp.weights.store import weights_path

    cache = tmp_path / "cache"
    (cache / "weights").mkdir(parents=True)
    for name in weights:
        (cache / "weights" / f"{name}.pt").symlink_to(weights_path(name))
    return cache


def test_a_comparer_uses_the_cache_of_the_settings_it_is_given(tmp_path, celebrity_photos):
    """No environment variable is set: the settings object alone moves the weights, the image
    limits and the liveness weights folder."""
    from facecmp import FaceComparer

    empty = _cache_with(tmp_path / "empty")
    with pytest.raises(WeightsError, match=re.escape(str(empty / "weights"))):
        FaceComparer("fast", settings=FacecmpSettings(cache_dir=empty, embed_backend="torch"))
    cache = _cache_with(tmp_path, "msceleb-128")
    settings = FacecmpSettings(cache_dir=cache, embed_backend="torch", max_image_bytes=1000)
    comparer = FaceComparer("fast", settings=settings)
    assert comparer.settings is settings and comparer.compute.backend == "torch"
    photo = celebrity_photos["madonna"][0]
    with pytest.raises(ImageDecodeError, match="larger than 1000 bytes"):
        comparer.compare(photo, photo)
    with pytest.raises(LivenessError) as info:   # no MiniFASNet files in this cache
        comparer.check_liveness(np.asarray(Image.open(photo).convert("RGB")))  # an array: no byte limit
    assert info.value.metadata["weights_dir"] == str(cache / "weights" / "minifasnet")


def test_compiled_models_are_read_from_the_cache_the_settings_name(tmp_path, monkeypatch, capfd, detector):
    """A detector given settings whose cache holds the compiled MTCNN (links to the run's copies,
    which ``detector`` made) converts nothing, while the environment names an empty cache: the
    settings object, not the environment, says where compiled models live. (A first run converts
    and writes them there: test_cli.)"""
    from facecmp.detect import FaceDetector

    installed = cache_dir() / "openvino"
    cache = tmp_path / "settings-cache"
    (cache / "openvino").mkdir(parents=True)
    for entry in installed.iterdir():
        if entry.name.startswith("mtcnn-"):
            (cache / "openvino" / entry.name).symlink_to(entry, target_is_directory=True)
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path / "environment-cache"))
    capfd.readouterr()
    FaceDetector(settings=FacecmpSettings(cache_dir=cache))
    assert "compiling" not in capfd.readouterr().err
    assert sorted(p.name.split("-")[1] for p in (cache / "openvino").iterdir()) == ["onet", "pnet", "rnet"]
    assert not (tmp_path / "environment-cache").exists()
