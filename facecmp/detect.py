"""Face detection with MTCNN: facenet-pytorch's networks and weights (shipped in its wheel,
verified against the registry's ``mtcnn-*`` digests when they load).

``FaceDetector.detect(image)`` takes an (H, W, 3) uint8 RGB array and returns a list of
:class:`~facecmp.faces.Face` (possibly empty, never ``None``), most prominent first, in the
coordinates of the image given.

Images are downscaled for detection and the boxes mapped back, so crops come from the
full-resolution original. MTCNN's cost grows with the pixel count of its image pyramid,
whose largest level is set by the smallest face searched for; the faces of a 1:1 compare
(selfies, ID and phone photos) are large, and MTCNN's last stage reads every face at 48 px
anyway. So detection runs in passes (:data:`DETECT_PASSES`), coarse first: a photo is
searched with its longest side at 320 px for faces of 40 px and up (1/8 of the long side),
and only a photo where that finds no face is searched again at 640 px for faces from 20 px
(1/32). A pass that would not downscale the image is skipped unless it is the last, so
photos of 320 px or less (LFW's 250 px) get exactly one search, at full size, from 20 px.
Banners and strips (over 4:1), whose short side that downscaling would shrink below a quarter
of the pass's side, are scaled by :func:`pass_scale` instead; an image that cannot hold a face
of the pass's smallest size is not searched in that pass (it has none to find there).
The cascade is :mod:`facecmp.mtcnn`'s vectorised one (every stage batched over all
candidates, its networks compiled with OpenVINO on a CPU as the embedder is), whose boxes,
landmarks and probabilities equal facenet-pytorch's ``MTCNN.detect`` to network rounding;
``cascade="facenet-pytorch"`` runs facenet-pytorch's own, the reference (in channels-last
memory format unless ``channels_last=False``: boxes equal to 1e-4 px).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from facecmp.backends import ComputeOptions
from facecmp.faces import MIN_FACE_PROBABILITY, Face
from facecmp.mtcnn import PYRAMID_FACTOR, MtcnnCascade, MtcnnNetworks, load_networks
from facecmp.settings import FacecmpSettings


class DetectPass(NamedTuple):
    """One MTCNN search: the image downscaled to a longest side of at most ``side`` px,
    faces from ``min_face_size`` px at that size, in a pyramid whose levels step by
    ``pyramid_factor`` (MTCNN's 0.709; a smaller factor means fewer levels: docs/performance.md
    measures 0.6 and 0.5)."""

    side: int
    min_face_size: int
    pyramid_factor: float = PYRAMID_FACTOR


# Tried in order until a face is found (docs/performance.md measures each choice).
DETECT_PASSES = (DetectPass(320, 40), DetectPass(640, 20))
CASCADES = ("vectorised", "facenet-pytorch")


class FaceDetector:
    """MTCNN wrapper. ``passes``: :class:`DetectPass` es (or ``(side, min_face_size[,
    pyramid_factor])`` tuples), tried in order of size until one finds a face. ``cascade``: "vectorised"
    (:mod:`facecmp.mtcnn`, its networks run as ``compute`` says, compiled copies cached under
    ``settings.cache_dir``; default settings: the environment's) or "facenet-pytorch"."""

    def __init__(self, *, passes=DETECT_PASSES, device: str = "cpu",
                 min_probability: float = MIN_FACE_PROBABILITY, channels_last: bool = True,
                 cascade: str = "vectorised", compute: ComputeOptions | None = None,
                 settings: FacecmpSettings | None = None):
        if cascade not in CASCADES:
            raise ValueError(f"unknown MTCNN cascade {cascade!r}; known: {', '.join(CASCADES)}")
        self.passes = tuple(sorted(DetectPass(*p) for p in passes))
        self.min_probability = min_probability
        self.cascade, self.channels_last = cascade, channels_last
        self._vectorised = MtcnnCascade(MtcnnNetworks(device, compute, settings)) if cascade == "vectorised" else None
        self._mtcnn = {} if self._vectorised else _facenet_mtcnns(self.passes, device, channels_last)

    def options(self) -> dict:
        """The arguments this detector was made with, but ``device``, ``compute`` and ``settings``:
        a worker process makes the same detector from them."""
        return {"passes": self.passes, "min_probability": self.min_probability, "cascade": self.cascade,
                "channels_last": self.channels_last}

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces with probability >= ``min_probability``, most prominent first: the faces
        recognition uses (and the calibrations were fitted on)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Per image, the list of faces, as :meth:`detect`. Images of one shape run through MTCNN together."""
        return self._detect_batch(images, self.passes, precise=False)

    def detect_for_liveness(self, image: np.ndarray) -> list[Face]:
        """The faces as the liveness check (:mod:`facecmp.liveness`) needs them: the last (finest)
        pass only, downscaled with the full bilinear filter. Boxes found at a coarse size can sit
        tens of pixels off in a large photo, which recognition (aligned on landmarks) does not
        notice but the pixel rules of the liveness check (border distance, face cropped) and
        MiniFASNet's crop do. Recognition never uses these faces: its score must not depend on
        whether liveness was checked."""
        return self._detect_batch([image], self.passes[-1:], precise=True)[0]

    def _detect_batch(self, images: list[np.ndarray], passes: tuple[DetectPass, ...], *, precise: bool
                      ) -> list[list[Face]]:
        results: list[list[Face]] = [[] for _ in images]
        pending = list(range(len(images)))
        for number, detect_pass in enumerate(passes, start=1):
            last = number == len(passes)
            searched = [i for i in pending if last or max(images[i].shape[:2]) > detect_pass.side]
            self._detect_at(images, searched, detect_pass, results, precise)
            pending = [i for i in pending if not results[i]]
        return results

    def _detect_at(self, images: list[np.ndarray], indices: list[int], detect_pass: DetectPass,
                   results: list[list[Face]], precise: bool) -> None:
        scales = {i: pass_scale(images[i].shape[0], images[i].shape[1], detect_pass) for i in indices}
        prepared = {i: _resized(images[i], scale, precise) for i, scale in scales.items() if scale is not None}
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (small, _) in prepared.items():
            by_shape.setdefault(small.shape, []).append(index)
        for group in by_shape.values():
            batch = np.stack([prepared[i][0] for i in group])
            if self._vectorised is not None:
                found = self._vectorised.detect(batch, detect_pass.min_face_size, detect_pass.pyramid_factor)
            else:
                with torch.inference_mode():
                    mtcnn = self._mtcnn[detect_pass.min_face_size, detect_pass.pyramid_factor]
                    found = zip(*mtcnn.detect(batch, landmarks=True))
            for i, (b, p, pts) in zip(group, found):
                results[i] = self._faces(b, p, pts, prepared[i][1], images[i].shape)

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


def pass_scale(height: int, width: int, detect_pass: DetectPass) -> float | None:
    """The factor by which a ``width`` x ``height`` image is resized for ``detect_pass``, or
    None when it cannot hold a face of the pass's smallest size.

    Normally the long side is brought down to ``side``. In a banner or a strip (over 4:1) that
    would shrink the short side, and every face, below a quarter of ``side``, and below
    ``min_face_size`` MTCNN's pyramid is empty (facenet-pytorch then fails: ``torch.cat`` of
    nothing). Such an image keeps a short side of ``side / 4`` (at least ``min_face_size``)
    instead, never above full size and within the pixels of a square photo at this pass
    (``side``²). Where even that leaves the short side below ``min_face_size`` (thumbnails,
    strips a few pixels wide, strips over ~1000:1), the image cannot hold a face this pass
    finds: None.
    """
    short, long = sorted((height, width))
    scale = min(1.0, detect_pass.side / long)
    short_floor = max(detect_pass.min_face_size, detect_pass.side / 4)
    if short * scale < short_floor:
        scale = min(1.0, short_floor / short, detect_pass.side / np.sqrt(height * width))
    return scale if round(short * scale) >= detect_pass.min_face_size else None


def _resized(image: np.ndarray, scale: float, precise: bool) -> tuple[np.ndarray, float]:
    if scale == 1.0:
        return image, 1.0
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # For recognition, reducing_gap=1: PIL first box-averages by the whole factor
    # (``Image.reduce``), then resamples the rest bilinearly: 640x480 -> 320x240 in 0.2 ms
    # instead of 1.2 (measured; the accuracy guard shows decisions and FMR unchanged). Precise
    # detection (liveness) keeps the full bilinear filter: MiniFASNet's score moves with its
    # crop (a sample's 0.877 became 0.843 for boxes under 1 px apart).
    gap = None if precise else 1.0
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR, reducing_gap=gap)), scale


def _facenet_mtcnns(passes: tuple[DetectPass, ...], device: str, channels_last: bool
                    ) -> dict[tuple[int, float], MTCNN]:
    """facenet-pytorch: one MTCNN per (smallest face size, pyramid factor) (each has its own
    pyramid), sharing one set of networks with the registry's verified weights (the ones its
    constructor reads from its own files unchecked are replaced)."""
    networks = load_networks()
    for net in networks.values():
        net.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    mtcnns: dict[tuple[int, float], MTCNN] = {}
    for min_face_size, factor in sorted({(p.min_face_size, p.pyramid_factor) for p in passes}):
        mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, factor=factor, device=device,
                      select_largest=False, post_process=False)
        mtcnn.pnet, mtcnn.rnet, mtcnn.onet = networks["pnet"], networks["rnet"], networks["onet"]
        mtcnns[min_face_size, factor] = mtcnn
    return mtcnns


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
