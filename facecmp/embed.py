"""Face embeddings with InceptionResnetV1 and registry weights.

``Embedder(name)`` takes face crops, an (N, S, S, 3) uint8 RGB array (S = 160), and
returns (N, D) float32 L2-normalised embeddings (D from the registry: 512 or 128).
With ``flip=True`` each crop and its mirror image run in the same forward pass and their
embeddings are summed before normalising (test-time augmentation).

Every forward pass has one shape: :data:`FACES_PER_PASS` faces (with ``flip``, and their mirror
images), the last pass of a call padded with blank crops. In bfloat16 a face's embedding depends
on the shape of the batch it runs in (OpenVINO picks its convolution kernels by shape: on an
AVX512-BF16 CPU batches of 16 or more gave embeddings up to 5e-3 per element from those of
smaller batches, i.e. scores up to 4e-3 apart), never on the other faces in it nor on the
thread count (measured, and checked by tests/test_pipeline.py). With one shape, a face maps to
the same embedding in a compare, a dataset, the service and a Ray actor, whatever else is in the
batch. Two faces, a compare's pair, waste nothing in a compare; a dataset's embedder runs ~10 %
below its rate in passes of 16 (docs/performance.md).

How the forward pass runs (PyTorch eager or OpenVINO, float32 or bfloat16) is a
:class:`~facecmp.backends.ComputeOptions`; by default OpenVINO on a CPU. With the torch
backend, ``channels_last=True`` runs the model in channels-last memory format (oneDNN's
native layout): +15 % images/s at batch 1 on one CPU thread, but results then differ between
batch sizes by up to ~1e-5 per element (see docs/performance.md), so it is off by default.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from facecmp.align import CropConfig
from facecmp.backends import ComputeOptions, OpenVinoModel
from facecmp.settings import FacecmpSettings
from facecmp.weights.inception import build_inception_resnet_v1
from facecmp.weights.pixel_scaling import fixed_image_standardization, prewhiten
from facecmp.weights.registry import get_spec
from facecmp.weights.store import load_state_dict, weights_dir

_PIXEL_SCALINGS = {"fixed": fixed_image_standardization, "prewhiten": prewhiten}
#: Faces in every forward pass of an embedder (see the module docstring).
FACES_PER_PASS = 2


def centre_embeddings(parts: list[np.ndarray], centres: tuple[np.ndarray | None, ...]) -> list[np.ndarray]:
    """Each (N, D_k) unit part minus its centre (where one is given), renormalised."""
    out = []
    for part, centre in zip(parts, centres):
        if centre is not None:
            part = part - centre
            part = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
        out.append(part.astype(np.float32))
    return out


def fuse_embeddings(parts: list[np.ndarray], shares: tuple[float, ...]) -> np.ndarray:
    """Concatenate per-model unit embeddings, each (N, D_k), scaled by sqrt(its share).

    With shares summing to 1 the result has unit norm and the cosine of two fused embeddings
    is the shares' weighted mean of the per-model cosines. Returns (N, sum D_k) float32.
    """
    return np.concatenate([np.sqrt(share) * part for part, share in zip(parts, shares)], axis=1).astype(np.float32)


class Embedder:
    """One pretrained InceptionResnetV1, in eval mode, on ``device``.

    ``compute`` picks the backend (default: ``ComputeOptions.from_settings(settings)``; off the CPU
    always torch). ``settings`` (default: the environment's) say where the weights are installed
    and the compiled copy is cached (``cache_dir``). ``model`` is the torch module with the torch
    backend, else ``None`` (the compiled copy replaces it, so the weights are held once).
    """

    def __init__(self, weights: str, *, device: str = "cpu", channels_last: bool = False,
                 compute: ComputeOptions | None = None, settings: FacecmpSettings | None = None):
        settings = settings or FacecmpSettings()
        self.spec = get_spec(weights)
        self.device = torch.device(device)
        self.weights_dir = weights_dir(weights, settings=settings)
        compute = ComputeOptions.for_device(self.device, compute, settings)
        self.channels_last = channels_last and compute.backend == "torch"
        self._scale_pixels = _PIXEL_SCALINGS[self.spec.model.pixel_scaling]
        self.model: torch.nn.Module | None = None
        self._compiled: OpenVinoModel | None = None
        if compute.backend == "openvino":
            self._compiled = OpenVinoModel(
                lambda: _PixelScaled(self._scale_pixels, self._load_model(weights)),
                input_shape=(-1, 3, CropConfig().size, CropConfig().size),
                cache_key=f"{weights}-{self.spec.state_dict_sha256[:16]}-{self.spec.model.pixel_scaling}",
                precision=compute.precision, threads=compute.threads or torch.get_num_threads(),
                streams=compute.streams, cache_root=settings.cache_dir)
        else:
            self.model = self._load_model(weights).to(self.device)
            if self.channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
        self.backend, self.precision = compute.backend, compute.precision

    def _load_model(self, weights: str) -> torch.nn.Module:
        model = build_inception_resnet_v1(self.spec.model.embedding_size)
        model.load_state_dict(load_state_dict(weights, self.weights_dir), strict=True)
        return model.eval()

    @property
    def embedding_size(self) -> int:
        return self.spec.model.embedding_size

    def embed(self, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, D) float32, unit L2 norm; in passes of :data:`FACES_PER_PASS` faces."""
        count = len(crops)
        if count == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        padding = -count % FACES_PER_PASS
        if padding:
            crops = np.concatenate([crops, np.zeros((padding, *crops.shape[1:]), crops.dtype)])
        outputs = [self._embed_chunk(crops[i:i + FACES_PER_PASS], flip) for i in range(0, len(crops), FACES_PER_PASS)]
        return np.concatenate(outputs)[:count]

    def _embed_chunk(self, crops: np.ndarray, flip: bool) -> np.ndarray:
        if flip:
            crops = np.concatenate([crops, crops[:, :, ::-1]])  # mirror images along the width axis
        if self._compiled is not None:
            features = torch.from_numpy(self._compiled(crops.transpose(0, 3, 1, 2))[0])
        else:
            batch = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float()
            with torch.inference_mode():
                batch = self._scale_pixels(batch)
                if self.channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                features = self.model(batch)
        if flip:
            count = len(crops) // 2
            features = F.normalize(features[:count], dim=1) + F.normalize(features[count:], dim=1)
        return F.normalize(features, dim=1).cpu().numpy().astype(np.float32)


class _PixelScaled(torch.nn.Module):
    """The model with its pixel scaling in front: a compiled copy then runs both, and takes raw
    (N, 3, S, S) pixel values in [0, 255]."""

    def __init__(self, scale_pixels, model: torch.nn.Module):
        super().__init__()
        self.scale_pixels, self.model = scale_pixels, model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(self.scale_pixels(pixels))
