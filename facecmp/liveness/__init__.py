"""Passive liveness (presentation-attack detection) for ``check_liveness: true`` compares.

Image requirement checks (face count, size, framing, pose from MTCNN's five landmarks) and
Minivision's MiniFASNet ensemble (two models, 80x80 crops at 2.7x and 4.0x the face box).
:data:`facecmp.liveness.checks.CHECKS` is the table of checks and codes, docs/liveness.md
gives the defaults and measurements; :mod:`facecmp.display` renders a result.

>>> from facecmp.display import liveness_text
>>> from facecmp.liveness import LivenessChecker
>>> result = LivenessChecker().check(image)  # doctest: +SKIP
>>> result.live, result.code, result.score  # doctest: +SKIP
>>> print(liveness_text(result))  # doctest: +SKIP
"""
from __future__ import annotations

from facecmp.liveness.checker import LivenessChecker, LivenessResult
from facecmp.liveness.checks import CHECKS, NOT_REPORTED_CODES
from facecmp.liveness.model import load_minifasnet
from facecmp.liveness.pose import estimate_pose
from facecmp.settings import LivenessSettings

__all__ = [
    "CHECKS", "LivenessChecker", "LivenessResult", "LivenessSettings", "NOT_REPORTED_CODES", "estimate_pose",
    "load_minifasnet",
]
