"""Passive liveness of a face: the image requirement checks, then MiniFASNet.

``LivenessChecker.check(image)`` takes an (H, W, 3) uint8 RGB image, finds its faces with its
detector's :meth:`~facecmp.detect.FaceDetector.detect_for_liveness` and returns a
:class:`LivenessResult`. The checks (:data:`facecmp.liveness.checks.CHECKS`: what each
measures, its limit and its code) run in order on the most prominent face; the first that fails
gives the result's code, and when a requirement fails the model is not run.
:meth:`LivenessChecker.check_requirements` runs the requirement checks alone (no model, no
weights). One rule decides liveness: the score reaches the threshold, the settings' unless a
call gives its own.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from facecmp.detect import FaceDetector
from facecmp.display import liveness_html
from facecmp.errors import LIVENESS_CODES, LivenessError
from facecmp.faces import Face
from facecmp.liveness.checks import CHECKS_BY_NAME, FACE_COUNT, GEOMETRY, LIVENESS_SCORE, Check, Subject
from facecmp.liveness.crop import context_crop
from facecmp.liveness.model import load_minifasnet
from facecmp.liveness.pose import estimate_pose
from facecmp.settings import FacecmpSettings
from facecmp.weights.registry import MINIFASNET
from facecmp.weights.store import installed, weights_dir

LIVE_MESSAGE = "The face is live."
FETCH_HINT = ("install them with `facecmp weights fetch minifasnet` (online: from their public URL, "
              "checksum-verified), or offline `facecmp weights fetch minifasnet --from DIR` with DIR a folder "
              "holding the published files (e.g. ../shared/models/minifasnet), or set "
              "FACECMP_LIVENESS_WEIGHTS_DIR to such a folder")


@dataclass(frozen=True)
class LivenessResult:
    """Outcome of one liveness check.

    live: True only when every requirement passed and score >= threshold.
    score: mean MiniFASNet P(live) in [0, 1]; None when a requirement failed before the model ran.
    code: the liveness code of the failure (one of facecmp.errors.LIVENESS_CODES), None when live.
    message: that code's message (with the failing value and limit for a requirement), or that
        the face is live.
    checks: name -> {"value", "limit", "passed"} for every check that was evaluated, in order.
    pose: {"yaw", "pitch", "roll"} in degrees (empty when there is no face).
    timings_ms: "detect" (when the checker found the faces), "requirements", "model" (when it
        ran), "load" (first use), "total".
    threshold: the score a live face reaches in this check.
    """

    live: bool
    score: float | None
    code: str | None
    message: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pose: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None

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
        return liveness_html(self)

    def checked(self) -> list[tuple[Check, dict[str, Any]]]:
        """Each evaluated check's row of :data:`~facecmp.liveness.checks.CHECKS` (rule, unit) and
        its outcome, in order: what the renderings of :mod:`facecmp.display` show."""
        return [(CHECKS_BY_NAME[name], outcome) for name, outcome in self.checks.items()]

    def failed_check(self) -> dict[str, Any] | None:
        """The check that decided the failure (its value and limit), or None when live."""
        return next((c for c in self.checks.values() if not c["passed"]), None)

    def raise_for_failure(self, **details: Any) -> None:
        """Raise :class:`LivenessError` (code, message, value, limit, score and ``details``) unless live."""
        if self.live:
            return
        failed = self.failed_check() or {}
        raise LivenessError(self.code or "UNKNOWN_ERROR", self.message, value=failed.get("value"),
                            limit=failed.get("limit"), score=self.score, **details)


class Requirements(NamedTuple):
    """The requirement checks of one image: ``code`` of the first failure (None when all
    passed), ``checks`` as in :class:`LivenessResult`, ``pose`` (empty without a face)."""

    code: str | None
    checks: dict[str, dict[str, Any]]
    pose: dict[str, float]


class LivenessChecker:
    """Finds the faces, runs the requirement checks and the two-model MiniFASNet ensemble.

    settings : facecmp.settings.FacecmpSettings | None
        ``settings.liveness`` gives the limits, the threshold and the weights folder, which
        defaults to one under ``settings.cache_dir`` (``None``: the environment's settings).
    detector : facecmp.detect.FaceDetector | None
        Whose :meth:`~facecmp.detect.FaceDetector.detect_for_liveness` finds the faces (``None``:
        one of its own with these settings, made on first use). A ``FaceComparer`` passes its own.

    The weights folder is resolved here; the models load on first use. Thread-safe: they are
    loaded once under a lock and only run in inference mode.
    """

    def __init__(self, settings: FacecmpSettings | None = None, *, detector: FaceDetector | None = None,
                 device: str = "cpu"):
        self.settings = settings or FacecmpSettings()
        self.device = device
        self.weights_dir = weights_dir(MINIFASNET[0].name, settings=self.settings)
        self._detector = detector
        self._models: list[tuple[float, int, torch.nn.Module]] | None = None
        self._lock = threading.Lock()

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = FaceDetector(device=self.device, settings=self.settings)
        return self._detector

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces of ``image`` as the checks need them, most prominent first: the detector's
        finest pass, boxes to the pixel (see :meth:`~facecmp.detect.FaceDetector.detect_for_liveness`)."""
        return self.detector.detect_for_liveness(image)

    def check(self, image: np.ndarray, faces: list[Face] | None = None, *,
              threshold: float | None = None) -> LivenessResult:
        """Judge the most prominent face of ``image`` ((H, W, 3) uint8 RGB).

        faces: :meth:`detect`'s faces of ``image``, when the caller has them already (default:
            found here). threshold: the score a live face reaches (default
            ``settings.liveness.threshold``; the service's ``liveness_min_score`` sets its own).

        Raises LivenessError("LICENSE_ERROR") when the weights are not installed and
        WeightsError when they fail their checksum; every other outcome is in the result.
        """
        threshold = self.settings.liveness.threshold if threshold is None else threshold
        detector = self.detector if faces is None else None  # made (on first use) before the clock starts
        start = time.perf_counter()
        timings: dict[str, float] = {}
        if detector is not None:
            faces = detector.detect_for_liveness(image)
            timings["detect"] = _ms_since(start)
        load_ms = self._ensure_loaded()
        if load_ms:
            timings["load"] = load_ms
        requirements_start = time.perf_counter()
        code, checks, pose = self.check_requirements(image, faces)
        timings["requirements"] = _ms_since(requirements_start)
        score = None
        if code is None:
            model_start = time.perf_counter()
            score = self.score(image, faces[0])
            timings["model"] = _ms_since(model_start)
            checks[LIVENESS_SCORE.name] = _outcome(LIVENESS_SCORE, score, threshold)
            code = None if checks[LIVENESS_SCORE.name]["passed"] else LIVENESS_SCORE.codes[0]
        timings["total"] = _ms_since(start)
        if code is None:
            message = LIVE_MESSAGE
        elif code == LIVENESS_SCORE.codes[0]:
            message = LIVENESS_CODES[code]
        else:  # a requirement: say which value missed which limit
            name, failed = next((n, c) for n, c in checks.items() if not c["passed"])
            message = f"{LIVENESS_CODES[code]} ({name} = {failed['value']:g}, limit {failed['limit']:g})"
        return LivenessResult(live=code is None, score=score, code=code, message=message,
                              checks=checks, pose=pose, timings_ms=timings, threshold=threshold)

    def check_requirements(self, image: np.ndarray, faces: list[Face] | None = None) -> Requirements:
        """The image requirement checks of :meth:`check` alone (every row of
        :data:`~facecmp.liveness.checks.CHECKS` but the model's), on the most prominent of ``faces``
        (default: :meth:`detect`'s): no model runs and no weights are needed."""
        limits = self.settings.liveness
        faces = self.detect(image) if faces is None else faces
        checks: dict[str, dict[str, Any]] = {}
        candidates = [f for f in faces if f.probability >= limits.min_face_probability]
        # Faces too small to be the subject themselves (people far behind it) are not a second face.
        counted = candidates[:1] + [f for f in candidates[1:] if f.width >= limits.min_face_width_px]
        checks[FACE_COUNT.name] = _outcome(FACE_COUNT, len(counted), FACE_COUNT.limit_in(limits))
        if not counted:
            return Requirements(FACE_COUNT.codes[0], checks, {})
        code = FACE_COUNT.codes[1] if len(counted) > 1 else None
        height, width = image.shape[:2]
        subject = Subject(counted[0], width, height, estimate_pose(counted[0].landmarks))
        for check in GEOMETRY:
            checks[check.name] = _outcome(check, check.measure(subject), check.limit_in(limits))
            if code is None and not checks[check.name]["passed"]:
                code = check.codes[0]
        return Requirements(code, checks, dict(zip(("yaw", "pitch", "roll"), subject.pose)))

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
            folder = self.weights_dir
            missing = [spec.source.filename for spec in MINIFASNET if not installed(spec.name, folder)]
            if missing:
                raise LivenessError(
                    "LICENSE_ERROR",
                    f"The liveness model weights are not installed ({', '.join(missing)} missing from "
                    f"{folder}); {FETCH_HINT}.",
                    weights_dir=str(folder), missing=missing,
                )
            self._models = [
                (spec.model.scale, spec.model.input_size, load_minifasnet(spec.name, folder, self.device))
                for spec in MINIFASNET
            ]
            return _ms_since(start)


def _outcome(check: Check, value: float, limit: float) -> dict[str, Any]:
    """A check's entry in ``LivenessResult.checks``; whether it passed is decided on the unrounded value."""
    value = float(value)
    return {"value": round(value, 4) if np.isfinite(value) else value, "limit": float(limit),
            "passed": check.passes(value, limit)}


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
