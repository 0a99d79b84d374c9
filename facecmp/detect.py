"""Face detection with facenet-pytorch's MTCNN (weights shipped in its wheel).

``FaceDetector.detect(image)`` takes an (H, W, 3) uint8 RGB array and returns a list of
:class:`~facecmp.faces.Face` (possibly empty, never ``None``), most prominent first, in the
coordinates of the image given.

Images are downscaled for detection and the boxes mapped back, so crops come from the
full-resolution original. MTCNN's cost grows with the pixel count, while the faces of a
1:1 compare (selfies, ID and phone photos) are far larger than its 20 px minimum and its
last stage reads every face at 48 px anyway: so detection first runs with the longest side
at ``detect_sizes[0]`` (320 px: MTCNN finds faces from about 12 px there, 4 % of the long
side), and only an image where that finds no face is searched again at the next size
(640 px: faces from 2 %). The MTCNN
networks run in channels-last memory format (oneDNN's native layout: 1.35x faster here,
boxes equal to 1e-4 px).
"""
from __future__ import annotations

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from facecmp.faces import Face

# Probability below which an MTCNN candidate is not counted as a face.
MIN_FACE_PROBABILITY = 0.90


# Longest image sides (pixels) tried for detection, in order, until a face is found.
DETECT_SIZES = (320, 640)


class FaceDetector:
    """MTCNN wrapper. ``detect_sizes``: longest sides used for detection, tried in order."""

    def __init__(self, *, detect_sizes: tuple[int, ...] = DETECT_SIZES, min_face_size: int = 20,
                 device: str = "cpu", min_probability: float = MIN_FACE_PROBABILITY, channels_last: bool = True):
        self.detect_sizes = tuple(sorted(detect_sizes))
        self.min_probability = min_probability
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device,
                            select_largest=False, post_process=False)
        if channels_last:
            for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
                net.to(memory_format=torch.channels_last)

    def detect(self, image: np.ndarray, *, precise: bool = False) -> list[Face]:
        """All faces with probability >= ``min_probability``, most prominent first."""
        return self.detect_batch([image], precise=precise)[0]

    def detect_batch(self, images: list[np.ndarray], *, precise: bool = False) -> list[list[Face]]:
        """Per image, the list of faces. Images of one shape run through MTCNN together.

        ``precise``: detect at the largest size only. Boxes found at a coarse size can sit
        tens of pixels off in a large photo, which recognition (aligned on landmarks) does
        not notice but the pixel rules of the liveness check (border distance, face
        cropped) do: liveness detects precisely.
        """
        results: list[list[Face]] = [[] for _ in images]
        pending = list(range(len(images)))
        previous_side = 0
        for side in self.detect_sizes[-1:] if precise else self.detect_sizes:
            # An image no larger than the last size tried was already searched at full size.
            pending = [i for i in pending if max(images[i].shape[:2]) > previous_side]
            self._detect_at(images, pending, side, results)
            pending = [i for i in pending if not results[i]]
            previous_side = side
        return results

    def _detect_at(self, images: list[np.ndarray], indices: list[int], side: int, results: list[list[Face]]) -> None:
        prepared = {i: self._downscale(images[i], side) for i in indices}
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (small, _) in prepared.items():
            by_shape.setdefault(small.shape, []).append(index)
        for group in by_shape.values():
            batch = np.stack([prepared[i][0] for i in group])
            with torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for i, b, p, pts in zip(group, boxes, probs, points):
                results[i] = self._faces(b, p, pts, prepared[i][1], images[i].shape)

    @staticmethod
    def _downscale(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        scale = min(1.0, side / max(height, width))
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
