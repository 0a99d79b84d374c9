"""facecmp: 1:1 face compare with MTCNN + InceptionResnetV1 and calibrated scores.

>>> from facecmp import FaceComparer
>>> fc = FaceComparer()                       # doctest: +SKIP
>>> fc.compare("a.jpg", "b.jpg").is_match     # doctest: +SKIP
"""
__version__ = "0.1.0"

from facecmp.errors import (  # noqa: E402
    CalibrationError, FacecmpError, FaceNotDetectedError, ImageDecodeError, LivenessError, WeightsError,
)
from facecmp.pipeline import CompareResult, FaceComparer, FaceReport, FaceRepresentation  # noqa: E402

__all__ = [
    "FaceComparer", "CompareResult", "FaceReport", "FaceRepresentation", "FacecmpError", "ImageDecodeError",
    "FaceNotDetectedError", "LivenessError", "WeightsError", "CalibrationError", "__version__",
]
