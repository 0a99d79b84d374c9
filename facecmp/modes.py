"""The named pipeline configurations (FAST, ACCURATE): which weights, crops and flips each uses.

Each has its own embedding centres (``facecmp/centres/<mode>.json``, pinned by sha256 here) and
its own calibration file, fitted for exactly this configuration. The choices and the LFW measurements behind them are in
docs/modes.md ("How `accurate` was chosen"): msceleb-128 works best on similarity-aligned faces, casia-webface on
box crops; centring every embedding helps both at low false-match rates, and fusing msceleb's
aligned and box views with casia-webface's box view helps most.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from facecmp.align import CropConfig
from facecmp.errors import UnknownModeError

#: Bump when decoding, detection, cropping or embedding changes what an image maps to.
PREPROCESSING_VERSION = 2

ALIGNED = CropConfig("similarity", 0.0)
BOX = CropConfig("box", 0.2)


@dataclass(frozen=True)
class EmbedderConfig:
    """One weight set, the crop it is fed, and its share of the fused cosine.

    ``centred``: subtract the mean embedding of a face population (the mode's centres file,
    :mod:`facecmp.centres`) and renormalise before the cosine, as Sandberg's LFW
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
    centres_sha256: str | None = None        # of facecmp/centres/<mode>.json; None: no embedder centred

    @property
    def weights(self) -> tuple[str, ...]:
        return tuple(e.weights for e in self.embedders)

    def fusion_shares(self) -> tuple[float, ...]:
        total = sum(e.fusion_weight for e in self.embedders)
        return tuple(e.fusion_weight / total for e in self.embedders)

    def fingerprint(self) -> dict:
        """What an image maps to in this mode, centres included (JSON-ready): what a calibration
        must have been fitted on, and part of ``FaceComparer.pipeline_id``."""
        return {"embedders": [asdict(e) for e in self.embedders], "flip": self.flip,
                "centres_sha256": self.centres_sha256, "preprocessing_version": PREPROCESSING_VERSION}


MODES: dict[str, PipelineConfig] = {
    "fast": PipelineConfig("fast", (EmbedderConfig("msceleb-128", ALIGNED, centred=True),), flip=False,
                           centres_sha256="7d6d141091022a07272bba435edd8f2befa0fd5f12cab46986c991ab0236460c"),
    "accurate": PipelineConfig("accurate", (EmbedderConfig("msceleb-128", ALIGNED, 0.4, centred=True),
                                            EmbedderConfig("msceleb-128", BOX, 0.3, centred=True),
                                            EmbedderConfig("casia-webface", BOX, 0.3, centred=True)), flip=True,
                               centres_sha256="9b30c972312ee52d54edeb9525db0dc6f143c279496369bafadd4f64a2d60da7"),
}


def mode_name(name: str) -> str:
    """``name`` as :data:`MODES` spells it: mode names are case-insensitive ("FAST", "Accurate")
    wherever they are read (settings, the service's ``search_mode``, the library's ``mode=``).

    Raises :class:`~facecmp.errors.UnknownModeError` (a ValueError) naming the known modes for any other name."""
    folded = name.lower()
    if folded not in MODES:
        raise UnknownModeError(f"unknown pipeline mode {folded!r}; known: {', '.join(MODES)}")
    return folded


def get_mode(name: str) -> PipelineConfig:
    """The configuration of mode ``name`` (any case)."""
    return MODES[mode_name(name)]
