"""Passive liveness (presentation-attack detection) for ``check_liveness: true`` compares.

Image requirement checks (face count, size, framing, pose from MTCNN's five landmarks) and
Minivision's MiniFASNet ensemble (two models, 80x80 crops at 2.7x and 4.0x the face box).
See :mod:`facecmp.liveness.checker` for the checks and codes, docs/liveness.md for defaults
and measurements.

>>> from facecmp.detect import FaceDetector
>>> from facecmp.liveness import LivenessChecker
>>> result = LivenessChecker().check(image, FaceDetector().detect_for_liveness(image))  # doctest: +SKIP
>>> result.live, result.code, result.score  # doctest: +SKIP
"""
from __future__ import annotations

from facecmp.liveness.checker import NOT_REPORTED_CODES, LivenessChecker, LivenessResult
from facecmp.liveness.pose import estimate_pose
from facecmp.liveness.report import format_liveness_report
from facecmp.settings import LivenessSettings
from facecmp.liveness.model import load_minifasnet

__all__ = [
    "LivenessChecker", "LivenessResult", "LivenessSettings", "NOT_REPORTED_CODES", "estimate_pose",
    "format_liveness_report", "load_minifasnet",
]
