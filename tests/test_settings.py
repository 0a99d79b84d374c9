"""One settings object: every FACECMP_* variable is read by facecmp.settings, and the service's
Settings extends it, so each means the same in the library and the service."""
from __future__ import annotations

from pathlib import Path

import pytest

from facecmp.backends import ComputeOptions
from facecmp.modes import get_mode
from facecmp.settings import FacecmpSettings, LivenessSettings, cache_dir
from serve.settings import Settings


def test_mode_in_any_case_works_in_the_library_and_the_service(monkeypatch):
    monkeypatch.setenv("FACECMP_MODE", "FAST")
    assert FacecmpSettings().mode == "fast" and get_mode(None).mode == "fast"
    assert Settings().mode == "fast"
    monkeypatch.setenv("FACECMP_MODE", "Accurate")
    assert Settings().mode == "accurate" == get_mode(None).mode
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
