"""Converting a module to OpenVINO says what it is doing and silences only the tracer warnings
that do not apply; the one it silences for prewhiten is checked to be harmless (the IR equals
eager PyTorch where the traced constant matters, in another batch size than the traced one)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from facecmp.backends import OpenVinoModel
from facecmp.weights.pixel_scaling import prewhiten


class Prewhiten(torch.nn.Module):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return prewhiten(pixels)


class BranchesOnData(torch.nn.Module):
    """A module whose trace is wrong for other inputs: its warning must still be shown."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels * 2 if pixels.sum() > 0 else pixels


def convert(module: torch.nn.Module, name: str, cache_root) -> tuple[OpenVinoModel, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = OpenVinoModel(lambda: module, cache_key=name, input_shape=(-1, 3, 8, 8), precision="f32", threads=1,
                              cache_root=cache_root)
    return model, caught


def test_prewhiten_converts_quietly_and_its_traced_floor_is_right_for_every_batch(tmp_path, capsys):
    model, caught = convert(Prewhiten(), "prewhiten-test", tmp_path)
    assert [str(w.message) for w in caught if "jit" in str(w.message) or issubclass(w.category, torch.jit.TracerWarning)] == []
    stderr = capsys.readouterr().err.splitlines()
    assert stderr[0].startswith("facecmp: compiling prewhiten-test for OpenVINO (first run only: cached in ")
    assert stderr[1].startswith("facecmp: compiling prewhiten-test for OpenVINO: done in ")
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (3, 3, 8, 8)).astype(np.float32)  # traced with a batch of 1
    batch[1] = 100.0
    batch[1, 0, 0, 0] = 100.05    # deviation 0.0036, under the floor 1 / sqrt(192) = 0.072
    eager = prewhiten(torch.from_numpy(batch)).numpy()
    assert np.abs(eager[1]).max() == pytest.approx(0.05 * (1 - 1 / 192) * np.sqrt(192), rel=1e-3)  # floored
    np.testing.assert_allclose(model(batch)[0], eager, rtol=1e-5, atol=1e-5)


def test_other_tracer_warnings_are_still_shown(tmp_path):
    _, caught = convert(BranchesOnData(), "branches-test", tmp_path)
    assert any(issubclass(w.category, torch.jit.TracerWarning) and "Python boolean" in str(w.message) for w in caught)
