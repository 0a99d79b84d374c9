"""Liveness settings: the image requirements, the decision threshold and the weights location.

Defaults for face size, border padding, interpupillary distance and pitch/yaw are those the
OpenCV FR Server documents for liveness images; the others are ours (see docs/liveness.md).
Every field can be set from the environment as ``FACECMP_LIVENESS_<FIELD>`` (upper case), e.g.
``FACECMP_LIVENESS_THRESHOLD=0.8`` or ``FACECMP_LIVENESS_WEIGHTS_DIR=/opt/minifasnet``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from facecmp.detect import MIN_FACE_PROBABILITY

ENV_PREFIX = "FACECMP_LIVENESS_"


@dataclass(frozen=True)
class LivenessSettings:
    """Limits of the requirement checks, the liveness threshold and where the weights are.

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
    weights_dir: directory of the MiniFASNet files; None: $FACECMP_LIVENESS_WEIGHTS_DIR, else
        ``<facecmp cache>/weights/minifasnet``.
    """

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

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if not 0.0 < self.max_face_fraction <= 1.0:
            raise ValueError(f"max_face_fraction must lie in (0, 1], got {self.max_face_fraction}")
        for name in ("min_face_width_px", "min_interpupillary_px", "min_border_px",
                     "max_yaw_deg", "max_pitch_deg", "max_roll_deg", "min_face_probability"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.weights_dir is not None and not isinstance(self.weights_dir, Path):
            object.__setattr__(self, "weights_dir", Path(self.weights_dir))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "LivenessSettings":
        """Defaults overridden by the ``FACECMP_LIVENESS_*`` variables that are set."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            if field.name == "weights_dir":
                values[field.name] = Path(raw).expanduser()
                continue
            try:
                values[field.name] = float(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{field.name.upper()}={raw!r} is not a number") from None
        return cls(**values)
