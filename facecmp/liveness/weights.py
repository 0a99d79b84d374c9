"""Where the MiniFASNet weights live, how they are fetched, verified and loaded.

The two published checkpoints are plain PyTorch state dicts (``.pth``), used as they are:
nothing is converted. Each entry of :data:`MINIFASNET_WEIGHTS` names its file, sha256, the
face-box scale of its input crop and its architecture. The weights directory is, in order:
``LivenessSettings.weights_dir``, ``$FACECMP_LIVENESS_WEIGHTS_DIR``, else
``<facecmp cache>/weights/minifasnet/``. Every file's sha256 is checked before it is loaded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from facecmp.errors import WeightsError
from facecmp.liveness.model import MiniFASNet, build_minifasnet
from facecmp.settings import cache_dir
from facecmp.weights.store import download_url, file_sha256

WEIGHTS_DIR_ENV = "FACECMP_LIVENESS_WEIGHTS_DIR"
ORIGIN = "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing"
_URL_BASE = f"{ORIGIN}/raw/master/resources/anti_spoof_models/"
FETCH_HINT = (
    "install them with `facecmp weights fetch minifasnet --from ../shared/models/minifasnet` "
    f"(or `fetch_minifasnet()` when online), or set {WEIGHTS_DIR_ENV} to a directory holding them"
)


@dataclass(frozen=True)
class MiniFASNetWeights:
    """One pretrained MiniFASNet: its crop ``scale`` (times the face box) and input size."""

    file: str
    sha256: str
    arch: str
    scale: float
    input_size: int = 80
    licence: str = "Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing)"
    origin: str = ORIGIN

    @property
    def url(self) -> str:
        return _URL_BASE + self.file


MINIFASNET_WEIGHTS: tuple[MiniFASNetWeights, ...] = (
    MiniFASNetWeights(
        file="2.7_80x80_MiniFASNetV2.pth",
        sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        arch="MiniFASNetV2",
        scale=2.7,
    ),
    MiniFASNetWeights(
        file="4_0_0_80x80_MiniFASNetV1SE.pth",
        sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        arch="MiniFASNetV1SE",
        scale=4.0,
    ),
)


def default_weights_dir() -> Path:
    """``$FACECMP_LIVENESS_WEIGHTS_DIR``, else ``<facecmp cache>/weights/minifasnet``."""
    if os.environ.get(WEIGHTS_DIR_ENV):
        return Path(os.environ[WEIGHTS_DIR_ENV]).expanduser()
    return cache_dir() / "weights" / "minifasnet"


def missing_weights(weights_dir: Path) -> list[str]:
    """Names of the weight files absent from ``weights_dir`` (empty when all are there)."""
    return [spec.file for spec in MINIFASNET_WEIGHTS if not (weights_dir / spec.file).is_file()]


def verify_file(path: Path, spec: MiniFASNetWeights) -> None:
    """Raise :class:`WeightsError` unless ``path`` has the registered sha256 of ``spec``."""
    actual = file_sha256(path)
    if actual != spec.sha256:
        raise WeightsError(
            f"{path} has sha256 {actual}, expected {spec.sha256}: it is corrupt or not the "
            f"published {spec.file}; delete it and {FETCH_HINT}"
        )


def load_minifasnet(path: Path, spec: MiniFASNetWeights, device: str = "cpu") -> MiniFASNet:
    """Verify the checksum of ``path``, then load it strictly into a fresh network in eval mode."""
    verify_file(path, spec)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = build_minifasnet(spec.arch, spec.input_size)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def fetch_minifasnet(source_dir: Path | None = None, *, target_dir: Path | None = None) -> Path:
    """Install the MiniFASNet weights into ``target_dir`` (default :func:`default_weights_dir`).

    ``source_dir``: a local directory holding the published files (e.g.
    ``../shared/models/minifasnet``); without it they are downloaded from the project's public
    GitHub URLs. Every file is checksum-verified before it is moved into place, atomically.
    Returns the directory. Raises :class:`WeightsError` when a file is missing, corrupt or
    cannot be downloaded (offline).
    """
    target = Path(target_dir) if target_dir is not None else default_weights_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facecmp-minifasnet-", dir=target) as tmp:
        staged = []
        for spec in MINIFASNET_WEIGHTS:
            partial = Path(tmp) / spec.file
            if source_dir is not None:
                source = Path(source_dir) / spec.file
                if not source.is_file():
                    raise WeightsError(f"{source} does not exist; expected the published {spec.file} there")
                shutil.copyfile(source, partial)
            else:
                download_url(spec.url, partial, fix="copy the files from a local directory with "
                             "`facecmp weights fetch minifasnet --from DIR` (e.g. ../shared/models/minifasnet)")
            verify_file(partial, spec)
            staged.append((partial, target / spec.file))
        for partial, final in staged:
            partial.replace(final)
    return target
