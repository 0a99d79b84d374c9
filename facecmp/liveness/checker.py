"""Passive liveness of the probe face: image requirement checks, then MiniFASNet.

``LivenessChecker.check(image, faces)`` takes an (H, W, 3) uint8 RGB image and the faces that
:meth:`facecmp.detect.FaceDetector.detect` found in it (most prominent first) and returns a
:class:`LivenessResult`. Requirement checks run first, on the most prominent face, in this
order; the first one that fails gives the result's code and the model is not run:

==========================  ===========================================  =====================
check                       value                                        code when it fails
==========================  ===========================================  =====================
face_count                  the subject, and the other faces with        FACE_NOT_FOUND (0),
                            probability >= min_face_prob. and at least   TOO_MANY_FACES (> 1)
                            min_face_width_px wide
face_fraction               max(box w / image w, box h / image h)        FACE_TOO_CLOSE
face_inside_image           pixels by which the box runs off the image   FACE_CROPPED
border_distance             px from the box to the nearest image edge    FACE_CLOSE_TO_BORDER
face_width                  box width, px                                FACE_TOO_SMALL
interpupillary_distance     eye-centre distance, px                      FACE_TOO_SMALL
yaw / pitch / roll          degrees, :func:`estimate_pose`               FACE_ANGLE_TOO_LARGE
liveness_score              mean P(live) of the two MiniFASNets          FACE_NOT_LIVE
==========================  ===========================================  =====================

A face narrower than ``min_face_width_px`` could not pass these checks as the subject, so it
does not count as a second face: people far behind the subject of a webcam frame (faces of
50-90 px behind one of 550 px in a 1920x1080 frame) do not fail it with TOO_MANY_FACES.
:meth:`LivenessChecker.check_requirements` runs the checks alone (no model, no weights).

EYES_CLOSED and FACE_IS_OCCLUDED are never reported: MTCNN's five points say nothing about
eyelids or occluders, and no model here measures them.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from facecmp.errors import LivenessError
from facecmp.faces import Face
from facecmp.liveness.crop import context_crop
from facecmp.liveness.pose import estimate_pose
from facecmp.settings import LivenessSettings
from facecmp.liveness.model import load_minifasnet
from facecmp.weights.registry import MINIFASNET
from facecmp.weights.store import installed, weights_dir

NOT_REPORTED_CODES = ("EYES_CLOSED", "FACE_IS_OCCLUDED")
FETCH_HINT = ("install them with `facecmp weights fetch minifasnet` (online: from their public URL, "
              "checksum-verified), or offline `facecmp weights fetch minifasnet --from DIR` with DIR a folder "
              "holding the published files (e.g. ../shared/models/minifasnet), or set "
              "FACECMP_LIVENESS_WEIGHTS_DIR to such a folder")

_MESSAGES = {
    "FACE_NOT_FOUND": "No face was found in the image.",
    "TOO_MANY_FACES": "More than one face is in the image; exactly one is required.",
    "FACE_TOO_CLOSE": "The face fills too much of the image; move the camera further away.",
    "FACE_CROPPED": "The face is cut off by the image border.",
    "FACE_CLOSE_TO_BORDER": "The face is too close to the image border.",
    "FACE_TOO_SMALL": "The face is too small; move the camera closer or use a higher resolution.",
    "FACE_ANGLE_TOO_LARGE": "The head is turned or tilted too far; face the camera.",
    "FACE_NOT_LIVE": "The face does not appear to be live (photo, print or screen suspected).",
}


@dataclass(frozen=True)
class LivenessResult:
    """Outcome of one liveness check.

    live: True only when every requirement passed and score >= threshold.
    score: mean MiniFASNet P(live) in [0, 1]; None when a requirement failed before the model ran.
    code: the liveness code of the failure (one of facecmp.errors.LIVENESS_CODES), None when live.
    checks: name -> {"value", "limit", "passed"} for every check that was evaluated.
    pose: {"yaw", "pitch", "roll"} in degrees (empty when there is no face).
    timings_ms: "requirements", "model" (when it ran), "load" (first use), "total".
    """

    live: bool
    score: float | None
    code: str | None
    message: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pose: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "score": None if self.score is None else round(self.score, 6),
            "code": self.code,
            "message": self.message,
            "checks": {name: dict(check) for name, check in self.checks.items()},
            "pose": {k: round(v, 2) for k, v in self.pose.items()},
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }

    def _repr_html_(self) -> str:
        from facecmp.display import liveness_html

        return liveness_html(self)

    def failed_check(self) -> dict[str, Any] | None:
        """The check that decided the failure (its value and limit), or None when live."""
        return next((c for c in self.checks.values() if not c["passed"]), None)

    def raise_for_failure(self) -> None:
        """Raise :class:`LivenessError` (code, message, value, limit, score) unless live."""
        if self.live:
            return
        failed = self.failed_check() or {}
        raise LivenessError(self.code or "UNKNOWN_ERROR", self.message, value=failed.get("value"),
                            limit=failed.get("limit"), score=self.score)


class Requirements(NamedTuple):
    """The requirement checks of one image: ``code`` of the first failure (None when all
    passed), ``checks`` as in :class:`LivenessResult`, ``pose`` (empty without a face)."""

    code: str | None
    checks: dict[str, dict[str, Any]]
    pose: dict[str, float]


class LivenessChecker:
    """Requirement checks and the two-model MiniFASNet ensemble; models load on first use.

    Thread-safe: the models are loaded once under a lock and only run in inference mode.
    """

    def __init__(self, settings: LivenessSettings | None = None, *, device: str = "cpu"):
        self.settings = settings or LivenessSettings()  # the environment's (FACECMP_LIVENESS_*)
        self.device = device
        self._models: list[tuple[float, int, torch.nn.Module]] | None = None
        self._lock = threading.Lock()

    @property
    def weights_dir(self):
        return weights_dir(MINIFASNET[0].name, self.settings.weights_dir)

    def check(self, image: np.ndarray, faces: list[Face]) -> LivenessResult:
        """Judge the most prominent of ``faces`` in ``image`` ((H, W, 3) uint8 RGB).

        Raises LivenessError("LICENSE_ERROR") when the weights are not installed and
        WeightsError when they fail their checksum; every other outcome is in the result.
        """
        start = time.perf_counter()
        timings: dict[str, float] = {}
        load_ms = self._ensure_loaded()
        if load_ms:
            timings["load"] = load_ms
        code, checks, pose = self.check_requirements(image, faces)
        timings["requirements"] = _ms_since(start) - load_ms
        score = None
        if code is None:
            model_start = time.perf_counter()
            score = self.score(image, faces[0])
            timings["model"] = _ms_since(model_start)
            passed = score >= self.settings.threshold
            checks["liveness_score"] = _check(score, self.settings.threshold, passed)
            code = None if passed else "FACE_NOT_LIVE"
        timings["total"] = _ms_since(start)
        message = "The face is live." if code is None else _MESSAGES[code]
        if code is not None and code != "FACE_NOT_LIVE":
            message = f"{message} ({_describe(checks)})"
        return LivenessResult(live=code is None, score=score, code=code, message=message,
                              checks=checks, pose=pose, timings_ms=timings)

    def score(self, image: np.ndarray, face: Face) -> float:
        """Mean MiniFASNet P(live) in [0, 1] for ``face`` of ``image``, without any requirement check."""
        self._ensure_loaded()
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        probabilities = []
        with torch.inference_mode():
            for scale, size, model in self._models:
                crop = context_crop(bgr, face.box, scale, size)
                batch = torch.from_numpy(crop).permute(2, 0, 1)[None].float().to(self.device)
                probabilities.append(torch.softmax(model(batch), dim=1)[0, 1].item())
        return float(sum(probabilities) / len(probabilities))

    def _ensure_loaded(self) -> float:
        """Load the models once; returns the milliseconds spent (0 when already loaded)."""
        if self._models is not None:
            return 0.0
        with self._lock:
            if self._models is not None:
                return 0.0
            start = time.perf_counter()
            weights_dir = self.weights_dir
            missing = [spec.source.filename for spec in MINIFASNET if not installed(spec.name, weights_dir)]
            if missing:
                raise LivenessError(
                    "LICENSE_ERROR",
                    f"The liveness model weights are not installed ({', '.join(missing)} missing from "
                    f"{weights_dir}); {FETCH_HINT}.",
                    weights_dir=str(weights_dir), missing=missing,
                )
            self._models = [
                (spec.model.scale, spec.model.input_size, load_minifasnet(spec.name, weights_dir, self.device))
                for spec in MINIFASNET
            ]
            return _ms_since(start)

    def check_requirements(self, image: np.ndarray, faces: list[Face]) -> Requirements:
        """The image requirement checks of :meth:`check` alone, on the most prominent of
        ``faces``: no model runs and no weights are needed."""
        s = self.settings
        checks: dict[str, dict[str, Any]] = {}
        pose: dict[str, float] = {}
        height, width = image.shape[:2]
        candidates = [f for f in faces if f.probability >= s.min_face_probability]
        # Faces too small to be the subject themselves (people far behind it) are not a second face.
        counted = candidates[:1] + [f for f in candidates[1:] if f.width >= s.min_face_width_px]
        checks["face_count"] = _check(len(counted), 1, len(counted) == 1)
        if not counted:
            return Requirements("FACE_NOT_FOUND", checks, pose)
        face = counted[0]
        x1, y1, x2, y2 = face.box
        fraction = max(face.width / width, face.height / height)
        overrun = max(0.0, -x1, -y1, x2 - width, y2 - height)
        border = min(x1, y1, width - x2, height - y2)
        eyes = float(np.hypot(*(face.landmarks[1] - face.landmarks[0])))
        yaw, pitch, roll = estimate_pose(face.landmarks)
        pose.update(yaw=yaw, pitch=pitch, roll=roll)
        ordered = [
            ("face_fraction", "FACE_TOO_CLOSE", fraction, s.max_face_fraction, fraction <= s.max_face_fraction),
            ("face_inside_image", "FACE_CROPPED", overrun, 0.0, overrun <= 0.0),
            ("border_distance", "FACE_CLOSE_TO_BORDER", border, s.min_border_px, border >= s.min_border_px),
            ("face_width", "FACE_TOO_SMALL", face.width, s.min_face_width_px, face.width >= s.min_face_width_px),
            ("interpupillary_distance", "FACE_TOO_SMALL", eyes, s.min_interpupillary_px,
             eyes >= s.min_interpupillary_px),
            ("yaw", "FACE_ANGLE_TOO_LARGE", yaw, s.max_yaw_deg, abs(yaw) <= s.max_yaw_deg),
            ("pitch", "FACE_ANGLE_TOO_LARGE", pitch, s.max_pitch_deg, abs(pitch) <= s.max_pitch_deg),
            ("roll", "FACE_ANGLE_TOO_LARGE", roll, s.max_roll_deg, abs(roll) <= s.max_roll_deg),
        ]
        code = "TOO_MANY_FACES" if len(counted) > 1 else None
        for name, check_code, value, limit, passed in ordered:
            checks[name] = _check(value, limit, passed)
            if code is None and not passed:
                code = check_code
        return Requirements(code, checks, pose)


def _check(value: float, limit: float, passed: bool) -> dict[str, Any]:
    value = float(value)
    return {"value": round(value, 4) if math.isfinite(value) else value, "limit": float(limit),
            "passed": bool(passed)}


def _describe(checks: dict[str, dict[str, Any]]) -> str:
    name, check = next((n, c) for n, c in checks.items() if not c["passed"])
    return f"{name} = {check['value']:g}, limit {check['limit']:g}"


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
