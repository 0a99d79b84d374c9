"""The detected-face record shared by detection, alignment, liveness and the API."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Probability below which an MTCNN candidate is not counted as a face (detection and liveness).
MIN_FACE_PROBABILITY = 0.90


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the original (full-resolution) image.

    box: (x1, y1, x2, y2) floats; may extend past the image border (MTCNN does that).
    probability: MTCNN's face probability in [0, 1].
    landmarks: (5, 2) float array, (x, y) of left eye, right eye, nose, left and right
        mouth corner, as MTCNN orders them ("left" = image left).
    """

    box: tuple[float, float, float, float]
    probability: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "probability": round(float(self.probability), 6),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
        }
