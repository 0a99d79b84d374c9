"""Every ``FACECMP_*`` environment variable of the library, read in one place by pydantic-settings.

:class:`FacecmpSettings` is the library's; the service's ``serve.settings.Settings`` extends it
with its own fields, so a variable means the same in both (``FACECMP_MODE=FAST`` included:
names are case-insensitive, and so is the mode's value). The liveness check's limits, threshold
and weights folder are the nested :class:`LivenessSettings` (``FACECMP_LIVENESS_*``). Fields
passed by name win over the environment.

One object is threaded: ``FaceComparer(settings=...)`` hands its settings to the detector, the
embedders, the weight store and the liveness check, and the service passes its own
``serve.settings.Settings``. A part built without one reads the environment then
(``FacecmpSettings()`` is cheap); :func:`cache_dir` is that read for scripts (training, eval,
bench, tests). The project's development data (``../shared``) is not the library's:
``eval/devdata.py`` knows where it lives.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facecmp.decode import DecodeLimits
from facecmp.faces import MIN_FACE_PROBABILITY
from facecmp.modes import MODES, mode_name

def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "facecmp"


class LivenessSettings(BaseSettings):
    """Limits of the liveness requirement checks, the liveness threshold and where the weights are.

    Defaults for face size, border padding, interpupillary distance and pitch/yaw are those the
    OpenCV FR Server documents for liveness images; the others are ours (docs/liveness.md).
    Every field is ``FACECMP_LIVENESS_<FIELD>`` in the environment, e.g.
    ``FACECMP_LIVENESS_THRESHOLD=0.8`` or ``FACECMP_LIVENESS_WEIGHTS_DIR=/opt/minifasnet``.

    threshold: a face is live when its score (mean MiniFASNet probability of "live", in
        [0, 1]) is at least this. Default 0.45: the lowest threshold with APCER <= 1% on the
        fit part of liveness-dev (docs/liveness.md).
    min_face_width_px: FACE_TOO_SMALL below this face-box width (OpenCV FR: 150).
    min_interpupillary_px: FACE_TOO_SMALL below this eye-centre distance (OpenCV FR: 50).
    min_border_px: FACE_CLOSE_TO_BORDER when the box is nearer an image edge (OpenCV FR: 15).
    max_face_fraction: FACE_TOO_CLOSE when the box's width or height exceeds this fraction of
        the image's (ours: 0.8; beyond it MiniFASNet's 2.7x context crop is mostly clipped).
    max_yaw_deg, max_pitch_deg: FACE_ANGLE_TOO_LARGE beyond +-these (OpenCV FR: 30).
    max_roll_deg: FACE_ANGLE_TOO_LARGE beyond +-this in-plane tilt (ours: 30).
    min_face_probability: faces at or above this detector probability count for
        TOO_MANY_FACES / FACE_NOT_FOUND (default: the detector's own threshold).
    weights_dir: directory of the MiniFASNet files; None: ``<facecmp cache>/weights/minifasnet``.
    """

    model_config = SettingsConfigDict(env_prefix="FACECMP_LIVENESS_", frozen=True, extra="ignore",
                                      env_ignore_empty=True)

    threshold: float = 0.45
    min_face_width_px: float = 150.0
    min_interpupillary_px: float = 50.0
    min_border_px: float = 15.0
    max_face_fraction: float = 0.8
    max_yaw_deg: float = 30.0
    max_pitch_deg: float = 30.0
    max_roll_deg: float = 30.0
    min_face_probability: float = MIN_FACE_PROBABILITY
    weights_dir: Path | None = None

    @field_validator("weights_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _check_limits(self) -> Self:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if not 0.0 < self.max_face_fraction <= 1.0:
            raise ValueError(f"max_face_fraction must lie in (0, 1], got {self.max_face_fraction}")
        for name in ("min_face_width_px", "min_interpupillary_px", "min_border_px",
                     "max_yaw_deg", "max_pitch_deg", "max_roll_deg", "min_face_probability"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        return self


class FacecmpSettings(BaseSettings):
    """Every field is ``FACECMP_<NAME>`` in the environment (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="FACECMP_", frozen=True, extra="ignore", env_ignore_empty=True)

    mode: Literal[tuple(MODES)] = Field(
        "accurate", description=f"Default pipeline mode ({' or '.join(MODES)}, any case); every call may override it.")
    embed_backend: Literal["openvino", "torch"] = Field(
        "openvino", description="Embedder backend: openvino (compiled, cached as IR in <cache>/openvino) or torch "
                                "(eager, the reference the calibrations were fitted with).")
    precision: Literal["auto", "f32", "bf16"] = Field(
        "auto", description="Embedder precision; auto: bfloat16 where the CPU computes it natively, else float32.")
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Weights, converted models, embeddings, samples; default $XDG_CACHE_HOME/facecmp or "
                    "~/.cache/facecmp.")
    celebrity_dir: Path | None = Field(
        None, description="An existing copy of the 5-celebrity sample photos (default: fetched into the cache).")
    max_image_bytes: int = Field(DecodeLimits.max_bytes, gt=0, description="Largest image file decoded.")
    max_image_pixels: int = Field(DecodeLimits.max_pixels, gt=0,
                                  description="Largest image (width x height), checked before decoding.")
    liveness: LivenessSettings = Field(default_factory=LivenessSettings,
                                       description="FACECMP_LIVENESS_*: the liveness check.")

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_name(cls, value: object) -> object:
        return mode_name(value) if isinstance(value, str) else value

    @field_validator("embed_backend", "precision", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cache_dir", "celebrity_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)


def cache_dir() -> Path:
    """Root of facecmp's cache (``$FACECMP_CACHE_DIR``); created on demand by writers."""
    return FacecmpSettings().cache_dir

