"""Typed errors of the facecmp pipeline: the one convention (docs/architecture.md, "Errors").

Everything a user's input, files or installation can cause is a :class:`FacecmpError`: a code
(the API code of the OpenCV FR Server's Face Compare contract, for those the service answers
with), a human message, and optional `metadata`. The library never speaks HTTP: ``serve/`` maps
these codes to status codes in one place. A class that replaced a built-in exception is that
built-in too (``UnknownModeError`` is a ``ValueError``). A batch (``represent_batch``) answers a
failing item with its error in place; a mistake in the calling code (a wrong type, an option
that cannot apply) is Python's own TypeError or ValueError.
"""
from __future__ import annotations

from typing import Any


class FacecmpError(Exception):
    """Base class: ``code`` is a stable code (the API's error code where the service answers with
    it), ``metadata`` optional details."""

    code = "UNKNOWN_ERROR"
    default_message = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, metadata: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.metadata = dict(metadata) if metadata else None
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.metadata:
            body["metadata"] = self.metadata
        return body


class ImageDecodeError(FacecmpError):
    """The input could not be decoded as a JPEG/PNG image within the limits."""

    code = "ERR_BASE64_IMAGE_CANNOT_BE_DECODED"
    default_message = "The posted Base64 image(s) could not be decoded as JPEG/PNG bytes."


class FaceNotDetectedError(FacecmpError):
    """No face was found in an image."""

    code = "ERR_FACE_NOT_DETECTED"
    default_message = "A face could not be detected in the image(s)."


#: The liveness codes of the API (``metadata.code`` of ``ERR_LIVENESS_ERROR``) and what each tells
#: the user. :data:`facecmp.liveness.checks.CHECKS` says which check reports which.
LIVENESS_CODES: dict[str, str] = {
    "EYES_CLOSED": "The eyes are closed.",
    "FACE_CLOSE_TO_BORDER": "The face is too close to the image border.",
    "FACE_CROPPED": "The face is cut off by the image border.",
    "FACE_NOT_LIVE": "The face does not appear to be live (photo, print or screen suspected).",
    "FACE_TOO_CLOSE": "The face fills too much of the image; move the camera further away.",
    "FACE_ANGLE_TOO_LARGE": "The head is turned or tilted too far; face the camera.",
    "FACE_IS_OCCLUDED": "The face is partly covered.",
    "FACE_NOT_FOUND": "No face was found in the image.",
    "FACE_TOO_SMALL": "The face is too small; move the camera closer or use a higher resolution.",
    "LICENSE_ERROR": "The liveness model is not available.",
    "TOO_MANY_FACES": "More than one face is in the image; exactly one is required.",
    "UNKNOWN_ERROR": "The liveness check failed.",
}


class LivenessError(FacecmpError):
    """A liveness check failed; ``liveness_code`` is one of :data:`LIVENESS_CODES`, whose message
    is the default.

    ``details`` (measured value, limit, ...) are merged into ``metadata``.
    """

    code = "ERR_LIVENESS_ERROR"
    default_message = LIVENESS_CODES["UNKNOWN_ERROR"]

    def __init__(self, liveness_code: str, message: str | None = None, **details: Any):
        if liveness_code not in LIVENESS_CODES:
            raise ValueError(f"unknown liveness code {liveness_code!r}")
        self.liveness_code = liveness_code
        super().__init__(message or LIVENESS_CODES[liveness_code], metadata={"code": liveness_code, **details})


class WeightsError(FacecmpError):
    """Pretrained weights are missing, corrupt or cannot be fetched; the message names the fix."""

    code = "ERR_WEIGHTS_UNAVAILABLE"
    default_message = "Model weights are not available."


class CalibrationError(FacecmpError):
    """A calibration file is missing or does not match the pipeline it is used with."""

    code = "ERR_CALIBRATION"
    default_message = "No calibration matches this pipeline."


class UnknownModeError(FacecmpError, ValueError):
    """A pipeline mode :data:`facecmp.modes.MODES` does not hold (a ``ValueError`` too, as it once was)."""

    code = "ERR_UNKNOWN_MODE"
    default_message = "Unknown pipeline mode."


class UnknownWeightsError(FacecmpError, KeyError):
    """A weight set :data:`facecmp.weights.registry.REGISTRY` does not hold (a ``KeyError`` too, as it once was)."""

    code = "ERR_UNKNOWN_WEIGHTS"
    default_message = "Unknown weight set."

    def __str__(self) -> str:  # KeyError's own would quote the message
        return self.message
