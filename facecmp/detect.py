"""Face detection with facenet-pytorch's MTCNN (weights shipped in its wheel).

``FaceDetector.detect(image)`` takes an (H, W, 3) uint8 RGB array and returns a list of
:class:`~facecmp.faces.Face` (possibly empty, never ``None``), most prominent first, in the
coordinates of the image given. Large images are downscaled for detection (MTCNN's cost
grows with the pixel count while faces in phone photos are far larger than its 20 px
minimum) and the boxes mapped back, so crops come from the full-resolution original.
"""
from __future__ import annotations

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from facecmp.faces import Face

# Probability below which an MTCNN candidate is not counted as a face.
MIN_FACE_PROBABILITY = 0.90


class FaceDetector:
    """MTCNN wrapper. ``max_side``: longest side used for detection (pixels)."""

    def __init__(self, *, max_side: int = 640, min_face_size: int = 20, device: str = "cpu",
                 min_probability: float = MIN_FACE_PROBABILITY):
        self.max_side = max_side
        self.min_probability = min_probability
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device,
                            select_largest=False, post_process=False)

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces with probability >= ``min_probability``, most prominent first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Per image, the list of faces. Images of one shape run through MTCNN together."""
        results: list[list[Face]] = [[] for _ in images]
        prepared = [self._downscale(img) for img in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (small, _) in enumerate(prepared):
            by_shape.setdefault(small.shape, []).append(index)
        for indices in by_shape.values():
            batch = np.stack([prepared[i][0] for i in indices])
            with torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for i, b, p, pts in zip(indices, boxes, probs, points):
                results[i] = self._faces(b, p, pts, prepared[i][1], images[i].shape)
        return results

    def _downscale(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale == 1.0:
            return image, 1.0
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale

    def _faces(self, boxes, probs, points, scale: float, shape: tuple[int, ...]) -> list[Face]:
        if boxes is None:
            return []
        faces = [
            Face(box=tuple(float(v) / scale for v in box), probability=float(prob),
                 landmarks=np.asarray(pts, dtype=np.float64) / scale)
            for box, prob, pts in zip(boxes, probs, points)
            if prob is not None and prob >= self.min_probability
        ]
        return sorted(faces, key=lambda face: prominence(face, shape[1], shape[0]), reverse=True)


def prominence(face: Face, width: int, height: int) -> float:
    """How likely ``face`` is the subject of a ``width`` x ``height`` photo.

    Visible area (the box clipped to the image: MTCNN boxes of faces cut by the border
    extend far outside it) times confidence, times a mild centrality factor falling from 1
    at the centre to 0.5 at a corner. Without the clipping, half-visible faces at the
    edge of LFW's funneled photos outrank the centred subject.
    """
    x1, y1, x2, y2 = face.box
    visible = max(0.0, min(x2, width) - max(x1, 0.0)) * max(0.0, min(y2, height) - max(y1, 0.0))
    offset = np.hypot((x1 + x2) / 2 - width / 2, (y1 + y2) / 2 - height / 2) / np.hypot(width / 2, height / 2)
    return visible * face.probability * (1.0 - 0.5 * min(float(offset), 1.0))
