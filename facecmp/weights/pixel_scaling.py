"""Pixel scaling of the pretrained embedders' inputs: how each maps RGB face crops in [0, 255] to
the values it was trained on (registry ``EmbedderModel.pixel_scaling``). Not to be confused with
the *score* normalisation of :mod:`facecmp.normalisation`."""
from __future__ import annotations

import math

import torch


def prewhiten(batch: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation of Sandberg's FaceNet (``facenet.prewhiten``).

    Each image is shifted by its mean and divided by its standard deviation (population,
    ``ddof=0``), both over all its pixels and channels. The deviation is floored at
    ``1 / sqrt(C * H * W)`` so that a flat image is not divided by ~0.

    Parameters
    ----------
    batch : torch.Tensor
        (N, C, H, W) float images, any value range.

    Returns
    -------
    torch.Tensor
        (N, C, H, W), each image with mean 0 and standard deviation 1 (unless floored).
    """
    if batch.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) batch, got shape {tuple(batch.shape)}")
    flat = batch.flatten(1)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, correction=0).clamp_min(1.0 / math.sqrt(flat.shape[1]))
    return (batch - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


def fixed_image_standardization(batch: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's fixed scaling ``(x - 127.5) / 128``, for pixel values in [0, 255].

    Parameters
    ----------
    batch : torch.Tensor
        (N, C, H, W) float images in [0, 255].

    Returns
    -------
    torch.Tensor
        (N, C, H, W), values in about [-1, 1].
    """
    return (batch - 127.5) / 128.0
