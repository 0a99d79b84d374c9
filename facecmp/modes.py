"""The named pipeline configurations (FAST, ACCURATE): which weights, crop and flip each uses.

Each has its own calibration file, fitted for exactly this configuration. The choices and
the LFW measurements behind them are in README ("Pipeline modes").
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from facecmp.align import CropConfig

#: Bump when decoding, detection, cropping or embedding changes what an image maps to.
PREPROCESSING_VERSION = 1


@dataclass(frozen=True)
class PipelineConfig:
    mode: str
    weights: tuple[str, ...]   # several: embeddings fused (cosine = mean of per-model cosines)
    crop: CropConfig
    flip: bool                 # horizontal-flip test-time augmentation

    def fingerprint(self) -> dict:
        """What a calibration must have been fitted on (JSON-ready)."""
        return {"weights": list(self.weights), "crop": asdict(self.crop), "flip": self.flip,
                "preprocessing_version": PREPROCESSING_VERSION}


MODES: dict[str, PipelineConfig] = {
    "fast": PipelineConfig("fast", ("msceleb-128",), CropConfig("box", 0.2), flip=False),
    "accurate": PipelineConfig("accurate", ("msceleb-128", "casia-webface"), CropConfig("box", 0.2), flip=True),
}


def default_mode() -> str:
    """``$FACECMP_MODE`` if set, else ``accurate``."""
    return os.environ.get("FACECMP_MODE", "accurate").lower()


def get_mode(mode: str | None) -> PipelineConfig:
    name = (mode or default_mode()).lower()
    if name not in MODES:
        raise ValueError(f"unknown pipeline mode {name!r}; known: {', '.join(MODES)}")
    return MODES[name]
