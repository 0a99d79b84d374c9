"""MiniFASNet, the passive presentation-attack detector of Minivision's Silent-Face-Anti-Spoofing.

A re-implementation of ``src/model_lib/MiniFASNet.py`` (Apache-2.0) whose module names mirror
the published checkpoints, so their state dicts load with ``strict=True`` once a ``module.``
prefix (left by ``nn.DataParallel``) is stripped.

Input: (N, 3, 80, 80) float32, BGR channel order, pixel values 0-255 (not rescaled).
Output: (N, 3) logits; after softmax, class 1 is "live" (0 and 2 are attack classes).

The network is a MobileFaceNet-like stack: a stride-2 stem, then three stages, each opened by a
stride-2 inverted bottleneck and made of residual bottlenecks (1x1 expand, 3x3 depthwise, 1x1
linear projection), a global depthwise convolution, a 128-d embedding and a 3-way classifier.
The variants differ only in the hidden widths found by pruning and, for the ``SE`` variant, a
squeeze-excitation unit on the last block of each stage. Dropout (training only) is omitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from facecmp.weights.registry import get_spec
from facecmp.weights.store import load_state_dict


class ConvUnit(nn.Module):
    """Conv2d without bias, BatchNorm, then PReLU unless ``linear`` (a projection)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, linear: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class SqueezeExcite(nn.Module):
    """Channel gating: global average, 1x1 bottleneck (BN, ReLU), 1x1 expand (BN), sigmoid."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels // reduction)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.relu(self.bn1(self.fc1(gate)))
        return x * torch.sigmoid(self.bn2(self.fc2(gate)))


class Bottleneck(nn.Module):
    """1x1 expand to ``hidden``, 3x3 depthwise (``stride``), 1x1 linear projection.

    ``residual`` adds the input back (stride-1 blocks only); ``se_reduction`` gates the
    projected features with :class:`SqueezeExcite` before the addition.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, *, stride: int,
                 residual: bool, se_reduction: int | None = None):
        super().__init__()
        self.residual = residual
        self.conv = ConvUnit(in_channels, hidden)
        self.conv_dw = ConvUnit(hidden, hidden, kernel=3, stride=stride, padding=1, groups=hidden)
        self.project = ConvUnit(hidden, out_channels, linear=True)
        self.se_module = SqueezeExcite(out_channels, se_reduction) if se_reduction else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            out = self.se_module(out)
        return x + out if self.residual else out


class Stage(nn.Module):
    """Residual bottlenecks at constant width; with ``se_reduction`` the last one is gated."""

    def __init__(self, channels: int, hidden_widths: tuple[int, ...], se_reduction: int | None):
        super().__init__()
        last = len(hidden_widths) - 1
        self.model = nn.Sequential(*(
            Bottleneck(channels, hidden, channels, stride=1, residual=True,
                       se_reduction=se_reduction if i == last else None)
            for i, hidden in enumerate(hidden_widths)
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class MiniFASNetConfig:
    """Hidden (expanded) widths of the pruned blocks; stage widths are fixed at 64/128/128."""

    stage3: tuple[int, ...]
    stage4: tuple[int, ...]
    stage5: tuple[int, ...]
    se_reduction: int | None = None


ARCHITECTURES: dict[str, MiniFASNetConfig] = {
    "MiniFASNetV1": MiniFASNetConfig((13, 26, 13, 52), (154, 52, 26, 52, 26, 26), (26, 26)),
    "MiniFASNetV2": MiniFASNetConfig((13, 13, 13, 13), (231, 52, 26, 77, 26, 26), (26, 26)),
    "MiniFASNetV1SE": MiniFASNetConfig((13, 26, 13, 52), (154, 52, 26, 52, 26, 26), (26, 26), se_reduction=4),
    "MiniFASNetV2SE": MiniFASNetConfig((13, 13, 13, 13), (231, 52, 26, 77, 26, 26), (26, 26), se_reduction=4),
}


class MiniFASNet(nn.Module):
    """(N, 3, S, S) BGR 0-255 floats -> (N, num_classes) logits; S a multiple of 16 (80)."""

    def __init__(self, config: MiniFASNetConfig, *, input_size: int = 80, embedding_size: int = 128,
                 num_classes: int = 3):
        super().__init__()
        se = config.se_reduction
        self.conv1 = ConvUnit(3, 32, kernel=3, stride=2, padding=1)
        self.conv2_dw = ConvUnit(32, 32, kernel=3, padding=1, groups=32)
        self.conv_23 = Bottleneck(32, 103, 64, stride=2, residual=False)
        self.conv_3 = Stage(64, config.stage3, se)
        self.conv_34 = Bottleneck(64, 231, 128, stride=2, residual=False)
        self.conv_4 = Stage(128, config.stage4, se)
        self.conv_45 = Bottleneck(128, 308, 128, stride=2, residual=False)
        self.conv_5 = Stage(128, config.stage5, se)
        self.conv_6_sep = ConvUnit(128, 512)
        # Global depthwise convolution over the final (S/16 x S/16) map.
        self.conv_6_dw = ConvUnit(512, 512, kernel=(input_size + 15) // 16, groups=512, linear=True)
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)
        self.prob = nn.Linear(embedding_size, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34,
                      self.conv_4, self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw):
            x = block(x)
        return self.prob(self.bn(self.linear(x.flatten(1))))


def build_minifasnet(arch: str, input_size: int = 80) -> MiniFASNet:
    """An untrained network of architecture ``arch`` (a key of :data:`ARCHITECTURES`)."""
    try:
        config = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown MiniFASNet architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None
    return MiniFASNet(config, input_size=input_size)


def load_minifasnet(name: str, weights_dir: Path | None = None, device: str = "cpu") -> MiniFASNet:
    """Registry weight set ``name`` (``minifasnet-v2``, ``minifasnet-v1se``), verified by the
    store and loaded strictly into a fresh network in eval mode."""
    spec = get_spec(name)
    state = load_state_dict(name, weights_dir)
    model = build_minifasnet(spec.model.arch, spec.model.input_size)
    model.load_state_dict({key.removeprefix("module."): value for key, value in state.items()}, strict=True)
    return model.to(device).eval()
