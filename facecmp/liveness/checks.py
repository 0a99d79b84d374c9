"""The liveness checks, in the order they run: one row each, the one place a check is described.

A row says what the check measures, how its value must compare with its limit, where the limit
comes from (a :class:`~facecmp.settings.LivenessSettings` field, or a fixed number) and the
liveness code it fails with; the message a failure carries is that code's
(:data:`facecmp.errors.LIVENESS_CODES`). :mod:`facecmp.liveness.checker` evaluates the rows,
:mod:`facecmp.display` renders their outcomes with the rows' rules and units, and the table of
docs/liveness.md is :func:`markdown_table` (tests/test_liveness.py holds the two equal).

Adding a check of the subject face: one row of :data:`GEOMETRY` (its ``measure`` computes the
value from :class:`Subject`), and a ``LivenessSettings`` field when its limit is a setting.

The first row, ``face_count``, and the last, ``liveness_score`` (the model), are evaluated by
the checker itself: counting needs every face, scoring the model.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from facecmp.errors import LIVENESS_CODES
from facecmp.faces import Face
from facecmp.settings import LivenessSettings

_RULES: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "|x| <=": lambda value, limit: abs(value) <= limit,
}


class Subject(NamedTuple):
    """The most prominent face, the size of its image and its pose ((yaw, pitch, roll) degrees,
    :func:`facecmp.liveness.pose.estimate_pose`): what the geometry checks measure."""

    face: Face
    image_width: int
    image_height: int
    pose: tuple[float, float, float]


@dataclass(frozen=True)
class Check:
    """One liveness check.

    name: its outcome's key in ``LivenessResult.checks``.
    measures: what its value is, in words.
    rule: how the value must compare with the limit: ``<=``, ``>=``, ``==`` or ``|x| <=``.
    limit: the ``LivenessSettings`` field holding the limit, or a fixed limit.
    codes: the liveness code it fails with (``face_count``: FACE_NOT_FOUND with no face,
        TOO_MANY_FACES with several).
    unit: of value and limit (``px``, ``deg``; empty for a ratio, a count or a score).
    origin: whose default the limit is (``OpenCV FR``: the OpenCV FR Server's documented
        requirement for liveness images; ``ours``: docs/liveness.md says why).
    measure: the value for a :class:`Subject`; None for the two rows the checker evaluates.
    """

    name: str
    measures: str
    rule: str
    limit: str | float
    codes: tuple[str, ...]
    unit: str = ""
    origin: str = ""
    measure: Callable[[Subject], float] | None = None

    def limit_in(self, settings: LivenessSettings) -> float:
        return float(getattr(settings, self.limit) if isinstance(self.limit, str) else self.limit)

    def passes(self, value: float, limit: float) -> bool:
        return bool(_RULES[self.rule](value, limit))


def _overrun(s: Subject) -> float:
    x1, y1, x2, y2 = s.face.box
    return max(0.0, -x1, -y1, x2 - s.image_width, y2 - s.image_height)


def _border(s: Subject) -> float:
    x1, y1, x2, y2 = s.face.box
    return min(x1, y1, s.image_width - x2, s.image_height - y2)


FACE_COUNT = Check(
    "face_count", "the subject, plus the other faces with probability >= `min_face_probability` that are at "
                  "least `min_face_width_px` wide (people far behind the subject do not count)",
    "==", 1.0, ("FACE_NOT_FOUND", "TOO_MANY_FACES"))
GEOMETRY = (
    Check("face_fraction", "max(box w / image w, box h / image h)", "<=", "max_face_fraction", ("FACE_TOO_CLOSE",),
          origin="ours", measure=lambda s: max(s.face.width / s.image_width, s.face.height / s.image_height)),
    Check("face_inside_image", "px by which the box runs off the image", "<=", 0.0, ("FACE_CROPPED",), "px",
          measure=_overrun),
    Check("border_distance", "px from the box to the nearest image edge", ">=", "min_border_px",
          ("FACE_CLOSE_TO_BORDER",), "px", "OpenCV FR", _border),
    Check("face_width", "box width", ">=", "min_face_width_px", ("FACE_TOO_SMALL",), "px", "OpenCV FR",
          lambda s: s.face.width),
    Check("interpupillary_distance", "eye-centre distance", ">=", "min_interpupillary_px", ("FACE_TOO_SMALL",),
          "px", "OpenCV FR", lambda s: float(np.hypot(*(s.face.landmarks[1] - s.face.landmarks[0])))),
    Check("yaw", "head turn (estimate_pose)", "|x| <=", "max_yaw_deg", ("FACE_ANGLE_TOO_LARGE",), "deg",
          "OpenCV FR", lambda s: s.pose[0]),
    Check("pitch", "head nod (estimate_pose)", "|x| <=", "max_pitch_deg", ("FACE_ANGLE_TOO_LARGE",), "deg",
          "OpenCV FR", lambda s: s.pose[1]),
    Check("roll", "in-plane tilt (estimate_pose)", "|x| <=", "max_roll_deg", ("FACE_ANGLE_TOO_LARGE",), "deg",
          "ours", lambda s: s.pose[2]),
)
LIVENESS_SCORE = Check("liveness_score", "mean P(live) of the two MiniFASNets (a call may set its own threshold)",
                       ">=", "threshold", ("FACE_NOT_LIVE",), origin="ours")
CHECKS = (FACE_COUNT, *GEOMETRY, LIVENESS_SCORE)
CHECKS_BY_NAME = {check.name: check for check in CHECKS}

#: Liveness codes no check reports: MTCNN's five points say nothing about eyelids or occluders,
#: and no model here measures them. (LICENSE_ERROR and UNKNOWN_ERROR are not about the image.)
NOT_REPORTED_CODES = tuple(code for code in LIVENESS_CODES
                           if code not in {c for check in CHECKS for c in check.codes}
                           and code not in ("LICENSE_ERROR", "UNKNOWN_ERROR"))


def markdown_table(settings: LivenessSettings | None = None) -> str:
    """docs/liveness.md's table of the checks, with the limits of ``settings`` (default: the defaults)."""
    settings = settings or LivenessSettings.model_construct()
    lines = ["| check | value | limit | code |", "|---|---|---|---|"]
    for check in CHECKS:
        unit = f" {check.unit}" if check.unit else ""
        where = ", ".join(part for part in (f"`{check.limit}`" if isinstance(check.limit, str) else "", check.origin)
                          if part)
        rule = check.rule.replace("|", "\\|")  # a bare | would end the cell
        limit = f"{rule} {check.limit_in(settings):g}{unit}" + (f" ({where})" if where else "")
        codes = " / ".join(f"`{code}`" for code in check.codes)
        lines.append(f"| `{check.name}` | {check.measures} | {limit} | {codes} |")
    return "\n".join(lines)
