"""The named pipeline configurations (FAST, ACCURATE): which weights, crops and flips each uses.

Each has its own calibration file, fitted for exactly this configuration (with the embedding
centres of its centred embedders). The choices and the LFW measurements behind them are in
README ("Pipeline modes"): msceleb-128 works best on similarity-aligned faces, casia-webface on
box crops; centring every embedding helps both at low false-match rates, and fusing msceleb's
aligned and box views with casia-webface's box view helps most.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from facecmp.align import CropConfig
from facecmp.errors import UnknownModeError
from facecmp.settings import FacecmpSettings

#: Bump when decoding, detection, cropping or embedding changes what an image maps to.
PREPROCESSING_VERSION = 2

ALIGNED = CropConfig("similarity", 0.0)
BOX = CropConfig("box", 0.2)


@dataclass(frozen=True)
class EmbedderConfig:
    """One weight set, the crop it is fed, and its share of the fused cosine.

    ``centred``: subtract the mean embedding of a face population (fitted with the mode's
    calibration, stored in its file) and renormalise before the cosine, as Sandberg's LFW
    evaluation does (``--subtract_mean``); these models' embeddings share a common offset
    that otherwise inflates every cosine.
    """

    weights: str
    crop: CropConfig
    fusion_weight: float = 1.0
    centred: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    mode: str
    embedders: tuple[EmbedderConfig, ...]   # several: cosine = fusion-weighted mean of per-model cosines
    flip: bool                               # horizontal-flip test-time augmentation

    @property
    def weights(self) -> tuple[str, ...]:
        return tuple(e.weights for e in self.embedders)

    def fusion_shares(self) -> tuple[float, ...]:
        total = sum(e.fusion_weight for e in self.embedders)
        return tuple(e.fusion_weight / total for e in self.embedders)

    def fingerprint(self) -> dict:
        """What a calibration must have been fitted on (JSON-ready)."""
        return {"embedders": [asdict(e) for e in self.embedders], "flip": self.flip,
                "preprocessing_version": PREPROCESSING_VERSION}


MODES: dict[str, PipelineConfig] = {
    "fast": PipelineConfig("fast", (EmbedderConfig("msceleb-128", ALIGNED, centred=True),), flip=False),
    "accurate": PipelineConfig("accurate", (EmbedderConfig("msceleb-128", ALIGNED, 0.4, centred=True),
                                            EmbedderConfig("msceleb-128", BOX, 0.3, centred=True),
                                            EmbedderConfig("casia-webface", BOX, 0.3, centred=True)), flip=True),
}


def get_mode(mode: str | None) -> PipelineConfig:
    """The configuration of ``mode`` (any case); ``None``: ``FacecmpSettings().mode`` ($FACECMP_MODE).
    Raises :class:`~facecmp.errors.UnknownModeError` for any other name."""
    name = (mode or FacecmpSettings().mode).lower()
    if name not in MODES:
        raise UnknownModeError(f"unknown pipeline mode {name!r}; known: {', '.join(MODES)}")
    return MODES[name]
