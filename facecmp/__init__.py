"""facecmp: 1:1 face compare with MTCNN + InceptionResnetV1 and calibrated scores.

>>> from facecmp import FaceComparer
>>> fc = FaceComparer()                       # doctest: +SKIP
>>> fc.compare("a.jpg", "b.jpg").is_match     # doctest: +SKIP
"""
__version__ = "0.1.0"

from facecmp.errors import (  # noqa: E402
    CalibrationError, FacecmpError, FaceNotDetectedError, ImageDecodeError, LivenessError, WeightsError,
)

_PIPELINE = ("FaceComparer", "CompareResult", "FaceReport", "FaceRepresentation")

__all__ = [
    "FaceComparer", "CompareResult", "FaceReport", "FaceRepresentation", "FacecmpError", "ImageDecodeError",
    "FaceNotDetectedError", "LivenessError", "WeightsError", "CalibrationError", "__version__",
]


def __getattr__(name: str):
    # facecmp.pipeline imports torch and the detectors (seconds): loaded when first used, so that
    # importing a light module (facecmp.modes, facecmp.contract) stays quick and a command can
    # check its input before it.
    if name in _PIPELINE:
        from facecmp import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'facecmp' has no attribute {name!r}")
