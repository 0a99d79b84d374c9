"""The embedding centres of each pipeline mode: part of what an image maps to.

``<mode>.json`` holds, per embedder of the mode, the mean embedding that is subtracted (and the
result renormalised) before fusing, or ``null`` for an uncentred embedder. The file's sha256 is
pinned in :data:`facecmp.modes.MODES` (``PipelineConfig.centres_sha256``), so it is inside the
mode's ``fingerprint()`` and hence inside ``FaceComparer.pipeline_id`` (the key of every
embedding cache) and inside what each calibration records it was fitted on: new centres make
every cached embedding and every calibration visibly stale instead of silently wrong.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np

from facecmp.errors import CalibrationError


def load_centres(config) -> tuple[np.ndarray | None, ...]:
    """Per embedder of ``config`` (a :class:`facecmp.modes.PipelineConfig`), its (D,) float32
    centre or None; raises CalibrationError if the file is missing, fails its pinned digest or
    does not match the mode's centred embedders."""
    if config.centres_sha256 is None:
        return (None,) * len(config.embedders)
    try:
        blob = resources.files(__name__).joinpath(f"{config.mode}.json").read_bytes()
    except FileNotFoundError as exc:
        raise CalibrationError(f"the embedding centres of mode {config.mode!r} are missing: {exc}") from exc
    if hashlib.sha256(blob).hexdigest() != config.centres_sha256:
        raise CalibrationError(f"facecmp/centres/{config.mode}.json does not match the sha256 its mode pins; "
                               "new centres need a new digest in facecmp/modes.py and refitted calibrations")
    centres = tuple(None if c is None else np.array(c, np.float32) for c in json.loads(blob)["centres"])
    if [c is not None for c in centres] != [e.centred for e in config.embedders]:
        raise CalibrationError(f"the embedding centres of mode {config.mode!r} do not match its centred embedders")
    return centres
