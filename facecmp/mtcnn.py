"""MTCNN's three-stage cascade with facenet-pytorch's networks and weights, vectorised.

The weights are the registry's ``mtcnn-pnet``, ``mtcnn-rnet`` and ``mtcnn-onet``: the files of
facenet-pytorch's wheel, checked against their digests each time they load (:func:`load_networks`).

facenet-pytorch's ``detect_face`` runs P-Net on each pyramid level, then cuts every
candidate out of the image and resizes it to 24 px (R-Net) or 48 px (O-Net) one at a time:
a Python loop of ``interpolate(mode="area")`` calls, the largest cost of a detection. Here
every resampling, of the pyramid levels and of all candidates of all levels and images at
once, is read from one summed-area table per image: torch's "area" interpolation is adaptive
average pooling (integer bins), and a bin's mean is four look-ups in that table, so the
network inputs are those of facenet-pytorch, bit for bit. NMS runs batched over levels and
images (as ``torchvision.ops.batched_nms``; see :func:`_nms_by_group`), and an image's faces do
not depend on the images batched with it. The thresholds, box regression, squaring and
clipping follow ``facenet_pytorch.models.utils.detect_face`` step for step, so boxes,
landmarks and probabilities equal its ``MTCNN.detect`` to network rounding (tests compare
them on real photos).

Unlike facenet-pytorch, every image gets an answer: an image with no pyramid level (smaller
than the smallest face searched for), or whose candidates all fall outside it, has no faces.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from torchvision.ops import nms

from facecmp.backends import ComputeOptions, OpenVinoModel
from facecmp.settings import FacecmpSettings
from facecmp.weights.registry import get_spec
from facecmp.weights.store import load_state_dict

# facenet-pytorch's MTCNN defaults.
PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
PNET_CELL, PNET_STRIDE = 12, 2
#: R-Net's and O-Net's compiled batches are padded to a multiple of BATCH_BUCKET, the buckets up
#: to PREPARED_BATCHES prepared at load, and larger batches run in chunks of that size (see
#: _compiled_runner): over 120 compares of
#: LFW photos at 640x480 and 1280x960, R-Net saw at most 110 candidates (p50 64), O-Net 36 (p50 17).
BATCH_BUCKET = 8
PREPARED_BATCHES = {"rnet": 128, "onet": 48}


class Detections(NamedTuple):
    """The faces MTCNN found in one image: boxes (N, 4) x1, y1, x2, y2; probabilities (N,);
    landmarks (N, 5, 2); highest probability first, as ``MTCNN.detect`` orders them."""

    boxes: np.ndarray
    probabilities: np.ndarray
    landmarks: np.ndarray


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = PYRAMID_FACTOR) -> list[float]:
    """The scales of facenet-pytorch's pyramid (the same float arithmetic): the first maps a
    ``min_face_size`` face to P-Net's 12 px window, each next is ``factor`` times the last, down
    to where the short side would fall under 12 px. Empty when the image is smaller than that."""
    scale = 12.0 / min_face_size
    short_side = min(height, width) * scale
    scales = []
    while short_side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        short_side *= factor
    return scales


class AreaSampler:
    """Area resampling ("area" interpolation: adaptive average pooling) of integer regions of one
    (H, W, 3) uint8 image, any number of regions in one call.

    A region's output pixel (i, j) is the mean of the input rows floor(i h / o) ..
    ceil((i + 1) h / o) - 1 and the same columns, as torch's adaptive pooling bins them; the sums
    come from an integer summed-area table, so they are exact and the means equal torch's.
    In NumPy, which runs on the calling thread: torch's OpenMP team, woken for these
    tensors between OpenVINO's inferences, waits for cores OpenVINO's threads hold (measured:
    the pyramid's resampling of two 320 px photos 1.6 ms alone, 15 ms between inferences).
    One table per image, not one for a batch: a 250 px photo's table (0.75 MB) stays in the
    core's cache while its levels and crops are read (32 LFW photos: resize 4.0 -> 1.6 ms and
    crops 5.2 -> 2.5 ms a photo, measured).
    """

    def __init__(self, image: np.ndarray):
        height, width, _ = image.shape
        dtype = np.int32 if 255 * height * width < 2**31 else np.int64
        table = np.zeros((3, height + 1, width + 1), dtype)
        np.cumsum(image.transpose(2, 0, 1), axis=1, dtype=dtype, out=table[:, 1:, 1:])
        np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
        self._table = table                              # (3, H + 1, W + 1)
        self._flat = table.reshape(3, -1)
        self.height, self.width = height, width
        self._row = width + 1

    def resize(self, size: tuple[int, int]) -> np.ndarray:
        """The whole image resampled to ``size`` (h, w): (3, h, w) float32."""
        (row_start, row_end), (col_start, col_end) = (
            (first[0], last[0]) for first, last in (_bins(np.zeros(1, np.int64), np.array([self.height]), size[0]),
                                                    _bins(np.zeros(1, np.int64), np.array([self.width]), size[1])))
        # Each row bin's sums along the columns first (whole table rows), then the column bins of
        # those: two column look-ups instead of four (a 250 px photo's pyramid 1.07 -> 0.95 ms).
        rows = self._table[:, row_end] - self._table[:, row_start]
        sums = rows[..., col_end] - rows[..., col_start]
        # Divided by the bin's height, then its width, as torch does: the same float32 rounding.
        return (sums.astype(np.float32) / (row_end - row_start)[:, None].astype(np.float32)
                / (col_end - col_start)[None, :].astype(np.float32))

    def crop(self, top: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray,
             side: int) -> np.ndarray:
        """(N,) int64 region bounds (rows top..bottom - 1, columns left..right - 1, none empty)
        -> (N, 3, side, side) float32: each region resampled to side x side."""
        row_start, row_end = _bins(top, bottom, side)
        col_start, col_end = _bins(left, right, side)
        heights = (row_end - row_start).astype(np.float32)[:, :, None]
        widths = (col_end - col_start).astype(np.float32)[:, None, :]
        # Flat indices of the four corners, int32, worked out once for the three channels; then
        # per channel four gathers into reused buffers (48 px crops of 40 boxes 6.2 -> 1.7 ms
        # against one (3, 4, N, side, side) look-up; 64 crops of a 250 px photo 1.9 -> 1.5 ms).
        index = np.int32 if self._flat.shape[1] < 2**31 else np.int64
        row_start = (row_start * self._row).astype(index)[:, :, None]
        row_end = (row_end * self._row).astype(index)[:, :, None]
        col_start, col_end = col_start.astype(index)[:, None, :], col_end.astype(index)[:, None, :]
        corners = (row_end + col_end, row_start + col_end, row_end + col_start, row_start + col_start)
        crops = np.empty((len(top), 3, side, side), np.float32)
        sums, corner = np.empty(corners[0].shape, self._flat.dtype), np.empty(corners[0].shape, self._flat.dtype)
        for channel, table in enumerate(self._flat):
            np.take(table, corners[0], out=sums)
            np.subtract(sums, np.take(table, corners[1], out=corner), out=sums)
            np.subtract(sums, np.take(table, corners[2], out=corner), out=sums)
            np.add(sums, np.take(table, corners[3], out=corner), out=sums)
            # Exact in float32 (a bin's sum is far below 2**24), divided as torch divides.
            np.divide(sums, heights, out=crops[:, channel], dtype=np.float32)
            crops[:, channel] /= widths
        return crops


def _bins(start: np.ndarray, end: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling's bins of each [start, end) into ``count``: (N, count) first and one-past-last."""
    length = (end - start)[:, None]
    index = np.arange(count, dtype=np.int64)[None, :]
    first = start[:, None] + index * length // count
    last = start[:, None] + ((index + 1) * length + count - 1) // count
    return first, last


class _FromPixels(torch.nn.Module):
    """An MTCNN network taking (N, 3, H, W) float pixel values in [0, 255], normalised as
    facenet-pytorch does: a compiled copy then runs the normalisation too."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor):
        return self.net((pixels - 127.5) * 0.0078125)


class MtcnnNetworks:
    """P-Net, R-Net and O-Net with facenet-pytorch's weights, run in PyTorch (channels-last) or
    OpenVINO (float32, compiled as the embedder is: :class:`~facecmp.backends.OpenVinoModel`).
    Each takes (N, 3, H, W) float32 pixels (a NumPy array) and returns a tuple of float32 tensors.
    ``settings`` (default: the environment's) give the backend when ``compute`` is None and the
    cache of the compiled copies."""

    def __init__(self, device: str = "cpu", compute: ComputeOptions | None = None,
                 settings: FacecmpSettings | None = None):
        settings = settings or FacecmpSettings()
        self.device = torch.device(device)
        compute = ComputeOptions.for_device(self.device, compute, settings)
        self.backend = compute.backend
        # Input shapes, -1 where they vary: P-Net sees whole pyramid levels, traced on a 48 px one.
        shapes = {"pnet": ((-1, 3, -1, -1), (1, 3, 48, 48)), "rnet": ((-1, 3, 24, 24), None),
                  "onet": ((-1, 3, 48, 48), None)}
        self._runners = {}
        for name, net in load_networks().items():
            shape, example = shapes[name]
            module = _FromPixels(net)
            if compute.backend == "openvino":
                digest = get_spec(f"mtcnn-{name}").source.sha256[:16]   # the verified file's (IR cache key)
                compiled = OpenVinoModel(lambda module=module: module, input_shape=shape, example_shape=example,
                                         cache_key=f"mtcnn-{name}-{digest}", precision="f32",
                                         threads=compute.threads or torch.get_num_threads(),
                                         streams=compute.streams, cache_root=settings.cache_dir)
                # P-Net's inputs vary in height and width, not in a batch worth padding.
                bucketed = name in PREPARED_BATCHES
                self._runners[name] = (_compiled_runner(compiled, BATCH_BUCKET, PREPARED_BATCHES[name]) if bucketed
                                       else _compiled_runner(compiled, 1))
                if bucketed:
                    _prepare_buckets(self._runners[name], shape[1:], PREPARED_BATCHES[name])
            else:
                module = module.to(self.device, memory_format=torch.channels_last)
                self._runners[name] = _torch_runner(module, self.device)

    def pnet(self, pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
        return self._runners["pnet"](pixels)

    def rnet(self, pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
        return self._runners["rnet"](pixels)

    def onet(self, pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
        return self._runners["onet"](pixels)


def load_networks() -> dict[str, torch.nn.Module]:
    """P-Net, R-Net and O-Net (facenet-pytorch's modules) in eval mode, with the registry's
    ``mtcnn-*`` weights, verified by the store on each load."""
    networks = {"pnet": PNet(pretrained=False), "rnet": RNet(pretrained=False), "onet": ONet(pretrained=False)}
    for name, net in networks.items():
        net.load_state_dict(load_state_dict(f"mtcnn-{name}"), strict=True)
    return {name: net.eval() for name, net in networks.items()}


def _compiled_runner(compiled: OpenVinoModel, batch_bucket: int, largest: int | None = None):
    """Batches are padded to a multiple of ``batch_bucket`` (zeros; each crop is computed
    alone, so the others' outputs do not change) and run in chunks of at most ``largest``:
    OpenVINO prepares each input shape the first time it sees it (2-8 ms for R-Net and O-Net,
    measured), and candidate counts vary (a batch of 32 LFW photos gives R-Net ~1,700), so only
    the prepared shapes are ever run."""
    def run(pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
        chunks = [pixels] if largest is None else [pixels[i:i + largest] for i in range(0, len(pixels), largest)]
        outputs = [_run_padded(compiled, chunk, batch_bucket) for chunk in chunks]
        return tuple(torch.from_numpy(np.concatenate(parts)) for parts in zip(*outputs))
    return run


def _run_padded(compiled: OpenVinoModel, pixels: np.ndarray, batch_bucket: int) -> tuple[np.ndarray, ...]:
    count = len(pixels)
    padding = -count % batch_bucket
    if padding:
        pixels = np.concatenate([pixels, np.zeros((padding, *pixels.shape[1:]), pixels.dtype)])
    return tuple(out[:count] for out in compiled(pixels))


def _prepare_buckets(run, crop_shape: tuple[int, ...], largest: int) -> None:
    """Run each batch bucket up to ``largest`` once, at load: the first requests then meet no
    unprepared shape. (A larger bucket keeps its working memory: O-Net at 128 held ~190 MiB.)"""
    for count in range(BATCH_BUCKET, largest + 1, BATCH_BUCKET):
        run(np.zeros((count, *crop_shape), np.float32))


def _torch_runner(module: torch.nn.Module, device: torch.device):
    def run(pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            batch = torch.from_numpy(pixels).to(device, memory_format=torch.channels_last)
            return tuple(out.float().cpu() for out in module(batch))
    return run


class MtcnnCascade:
    """``detect(images, min_face_size)``: facenet-pytorch's ``MTCNN.detect`` on a batch of
    same-sized images, with every stage batched over all candidates of all images."""

    def __init__(self, networks: MtcnnNetworks, thresholds: tuple[float, float, float] = THRESHOLDS):
        self.networks, self.thresholds = networks, thresholds

    def detect(self, images: np.ndarray, min_face_size: float, factor: float = PYRAMID_FACTOR) -> list[Detections]:
        """(B, H, W, 3) uint8 RGB -> per image its :class:`Detections` (possibly none); the
        pyramid's levels step by ``factor``."""
        batch, height, width, _ = images.shape
        scales = pyramid_scales(height, width, min_face_size, factor)
        if not scales:
            return [_no_faces() for _ in range(batch)]
        samplers = [AreaSampler(image) for image in images]
        boxes, image = self._propose(samplers, height, width, scales)
        boxes, image = self._refine(samplers, boxes, image, height, width)
        boxes, image, landmarks = self._output(samplers, boxes, image, height, width)
        return [_detections(boxes[image == b], landmarks[image == b]) for b in range(batch)]

    # Stage 1: P-Net on each pyramid level; candidates per level and image, NMS within each
    # level (0.5), then across levels (0.7), regressed and squared.
    def _propose(self, samplers: list[AreaSampler], height: int, width: int, scales: list[float]):
        found, groups = [], []
        for level, scale in enumerate(scales):
            size = (int(height * scale + 1), int(width * scale + 1))
            reg, probs = self.networks.pnet(np.stack([sampler.resize(size) for sampler in samplers]))
            mask = probs[:, 1] >= self.thresholds[0]
            where = mask.nonzero()
            cells = where[:, [2, 1]].to(torch.float32)   # (x, y) of each window in P-Net's output map
            top_left = ((PNET_STRIDE * cells + 1) / scale).floor()
            bottom_right = ((PNET_STRIDE * cells + PNET_CELL) / scale).floor()
            found.append(torch.cat([top_left, bottom_right, probs[:, 1][mask][:, None],
                                    reg.permute(0, 2, 3, 1)[mask]], dim=1))
            groups.append(where[:, 0] * len(scales) + level)
        candidates, group = torch.cat(found), torch.cat(groups)
        keep = _nms_by_group(candidates[:, :4], candidates[:, 4], group, 0.5)
        candidates, group = candidates[keep], group[keep]
        image = torch.div(group, len(scales), rounding_mode="floor")
        keep = _nms_by_group(candidates[:, :4], candidates[:, 4], image, 0.7)
        candidates, image = candidates[keep], image[keep]
        size = candidates[:, 2:4] - candidates[:, 0:2]
        boxes = torch.cat([candidates[:, 0:2] + candidates[:, 5:7] * size,
                           candidates[:, 2:4] + candidates[:, 7:9] * size, candidates[:, 4:5]], dim=1)
        return _square(boxes), image

    # Stage 2: R-Net on all candidates at 24 px.
    def _refine(self, samplers: list[AreaSampler], boxes, image, height: int, width: int):
        boxes, image, pixels = self._crops(samplers, boxes, image, height, width, 24)
        if len(boxes) == 0:
            return boxes, image
        reg, probs = self.networks.rnet(pixels)
        passed = probs[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[passed, :4], probs[passed, 1:2]], dim=1)
        image, reg = image[passed], reg[passed]
        keep = _nms_by_group(boxes[:, :4], boxes[:, 4], image, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), image[keep]

    # Stage 3: O-Net on all candidates at 48 px: probability, landmarks, last regression, and
    # NMS by overlap over the smaller box ("Min", 0.7), per image.
    def _output(self, samplers: list[AreaSampler], boxes, image, height: int, width: int):
        boxes, image, pixels = self._crops(samplers, boxes, image, height, width, 48)
        if len(boxes) == 0:
            return boxes, image, torch.zeros((0, 5, 2))
        reg, points, probs = self.networks.onet(pixels)
        passed = probs[:, 1] > self.thresholds[2]
        boxes = torch.cat([boxes[passed, :4], probs[passed, 1:2]], dim=1)
        image, reg, points = image[passed], reg[passed], points[passed]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        landmarks = torch.stack([size[:, None, 0] * points[:, :5] + boxes[:, None, 0] - 1,
                                 size[:, None, 1] * points[:, 5:] + boxes[:, None, 1] - 1], dim=2)
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes.numpy(), image.numpy(), 0.7)
        return boxes[keep], image[keep], landmarks[keep]

    @staticmethod
    def _crops(samplers: list[AreaSampler], boxes, image, height: int, width: int, side: int):
        """The boxes' pixels, clipped to the image (facenet-pytorch's ``pad``: truncated to
        integers, 1-based) and stretched to side x side; boxes wholly outside are dropped."""
        bounds = boxes[:, :4].trunc().to(torch.int64)
        left, top = bounds[:, 0].clamp(min=1) - 1, bounds[:, 1].clamp(min=1) - 1
        right, bottom = bounds[:, 2].clamp(max=width), bounds[:, 3].clamp(max=height)
        inside = (right > left) & (bottom > top)
        boxes, image = boxes[inside], image[inside]
        if len(boxes) == 0:
            return boxes, image, None
        top, left, bottom, right = (bound[inside].numpy() for bound in (top, left, bottom, right))
        owner = image.numpy()
        pixels = np.empty((len(boxes), 3, side, side), np.float32)
        for b, sampler in enumerate(samplers):
            members = np.flatnonzero(owner == b)
            if members.size:
                pixels[members] = sampler.crop(top[members], left[members], bottom[members], right[members], side)
        return boxes, image, pixels


def _nms_by_group(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """``torchvision.ops.batched_nms``: NMS within each group, the kept indices by falling score.

    torchvision shifts each group clear of the others by a multiple of the largest coordinate and
    runs one NMS below 1,000 boxes, one NMS a group above. The shift is exact only for whole,
    non-negative coordinates (P-Net's windows) within float32's 2**24: the fractional boxes after
    R-Net would round otherwise in a later group, and an image's faces could depend on the images
    batched with it. Here the shift is used only where it is exact (one call instead of one a
    level and image: ~1 ms a photo in a batch of 32), else each group runs alone."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.int64)
    shift = boxes.max() + 1
    whole = bool(torch.all(boxes == boxes.floor())) and float(boxes.min()) >= 0
    if whole and float(groups.max() + 1) * float(shift) < 2**24:
        return nms(boxes + groups.to(boxes.dtype)[:, None] * shift, scores, threshold)
    keep = torch.zeros(len(boxes), dtype=torch.bool)
    for group in torch.unique(groups):
        members = torch.where(groups == group)[0]
        keep[members[nms(boxes[members], scores[members], threshold)]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].sort(descending=True)[1]]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's ``rerec``: each box made square on its longer side, same centre."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    # Element-wise, not ``size.max(dim=1)``: torch runs that reduction on its OpenMP team even for
    # a few rows, which then waits for the cores OpenVINO's threads spin on (5 ms a call, measured).
    side = torch.maximum(size[:, 0:1], size[:, 1:2])
    top_left = boxes[:, 0:2] + size * 0.5 - side * 0.5
    return torch.cat([top_left, top_left + side, boxes[:, 4:]], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's ``bbreg``: box corners moved by ``reg`` times the (1-based) box size."""
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    return torch.cat([boxes[:, :4] + reg * size, boxes[:, 4:]], dim=1)


def _nms_min(boxes: np.ndarray, image: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's ``nms_numpy`` "Min" per image: highest score first, dropping every box
    whose intersection exceeds ``threshold`` of the smaller box's area."""
    kept = []
    for b in np.unique(image):
        members = np.flatnonzero(image == b)
        x1, y1, x2, y2, score = (boxes[members, k].astype(np.float64) for k in range(5))
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = np.argsort(score)
        while order.size:
            best, order = order[-1], order[:-1]
            kept.append(members[best])
            inter = (np.maximum(0.0, np.minimum(x2[best], x2[order]) - np.maximum(x1[best], x1[order]) + 1)
                     * np.maximum(0.0, np.minimum(y2[best], y2[order]) - np.maximum(y1[best], y1[order]) + 1))
            order = order[inter / np.minimum(area[best], area[order]) <= threshold]
    return np.array(kept, dtype=np.int64)


def _detections(boxes: torch.Tensor, landmarks: torch.Tensor) -> Detections:
    order = torch.argsort(boxes[:, 4], descending=True)
    boxes, landmarks = boxes[order].numpy(), landmarks[order].numpy()
    return Detections(boxes[:, :4].astype(np.float32), boxes[:, 4].astype(np.float32), landmarks.astype(np.float32))


def _no_faces() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
