"""What each endpoint asks of the pipeline; these functions run on the inference workers.

Each takes the shared :class:`~facecmp.FaceComparer`, the validated request body and the
server's :class:`Defaults`, and returns an :class:`Outcome`: the response body, the
per-image face counts (for the access log) and, where the library reports them, the pipeline's
stage timings (for the metrics, serve/metrics.py). Images are decoded from base64 here, with
the comparer's limits, and handed to the library as bytes: a request string is never
interpreted as a server-side path.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, NamedTuple

import numpy as np

from facecmp import FaceComparer
from facecmp.decode import decode_base64
from facecmp.errors import FacecmpError
from facecmp.pipeline import is_match
from serve.schemas import (
    CompareLiveFaceRequest, CompareLiveFaceResponse, CompareResponse, ComparedFace, FaceCompareRequest, ImageSetCompareRequest,
    EXAMPLES_DIR, LivenessRequest, LivenessResponse,
)


@dataclass(frozen=True)
class Defaults:
    """What a request may leave out (the server's settings). The liveness threshold is not here:
    the comparer's checker applies its settings' unless a request gives its own."""

    min_similarity_score: float


class Outcome(NamedTuple):
    body: object
    face_counts: tuple[int, ...] | None = None
    mode: str | None = None  # the pipeline mode that answered, where timings_ms is set
    timings_ms: Mapping[str, float] | None = None  # CompareResult.timings_ms: stage -> milliseconds


def _image(comparer: FaceComparer, text: str) -> bytes:
    return decode_base64(text, comparer.decode_limits)


#: The fields of ``CompareResult.to_dict()`` that ``POST /compare`` answers with as they are.
PAIR_FIELDS = ("is_match", "score", "score_meaning", "within_calibration", "calibration_notes")


def compare_pair(comparer: FaceComparer, body: FaceCompareRequest, defaults: Defaults) -> Outcome:
    """The library's answer (``CompareResult.to_dict()``) in the response's shape: the same values
    as the CLI's JSON; each face's trust figures beside its box and landmarks."""
    threshold = defaults.min_similarity_score if body.min_similarity_score is None else body.min_similarity_score
    result = comparer.compare(_image(comparer, body.face_base_64), _image(comparer, body.ref_face_base_64),
                              min_similarity_score=threshold, check_liveness=body.check_liveness,
                              mode=body.search_mode)
    answer = result.to_dict()
    response = CompareResponse(
        **{name: answer[name] for name in PAIR_FIELDS},
        liveness_score=None if answer["liveness"] is None else answer["liveness"]["score"],
        faces=[ComparedFace(**face["trust"], box=face["box"], landmarks=face["landmarks"]) for face in answer["faces"]])
    return Outcome(response, tuple(face["face_count"] for face in answer["faces"]), result.mode, result.timings_ms)


def compare_sets(comparer: FaceComparer, body: ImageSetCompareRequest, defaults: Defaults) -> Outcome:
    """The SDK's image-set compare: the best calibrated score over all gallery x probe pairs."""
    score = _best_score(comparer, [_image(comparer, text) for text in body.gallery],
                        [_image(comparer, text) for text in body.probe], body.search_mode)
    return Outcome(CompareResponse(is_match=is_match(score, defaults.min_similarity_score), score=score))


def check_liveness(comparer: FaceComparer, body: LivenessRequest, defaults: Defaults) -> Outcome:
    result = comparer.check_liveness(_image(comparer, body.image))
    return Outcome(LivenessResponse(liveness_score=_liveness_score(result)), _face_count(result))


def compare_live_face(comparer: FaceComparer, body: CompareLiveFaceRequest, defaults: Defaults) -> Outcome:
    """The probe's liveness score and, when it is live (its score at least ``liveness_min_score``,
    the checker's threshold when left out), its best calibrated score against the gallery: the
    score /compare gives each pair (the probe is decoded once)."""
    gallery = [_image(comparer, text) for text in body.gallery]
    probe = comparer.load_image(_image(comparer, body.probe))
    liveness = comparer.check_liveness(probe, threshold=body.liveness_min_score)
    # Besides the metadata every liveness error has, this endpoint's names its score and limit as its request does.
    liveness.raise_for_failure(liveness_score=liveness.score, liveness_min_score=liveness.threshold)
    similarity = _best_score(comparer, gallery, [probe], body.search_mode)
    return Outcome(CompareLiveFaceResponse(score=similarity, liveness_score=liveness.score), _face_count(liveness))


def _best_score(comparer: FaceComparer, gallery: list, probe: list, mode: str | None) -> float:
    """Best calibrated score over all gallery x probe pairs; the first image without a face (or
    not decodable) raises its error."""
    representations = comparer.represent_batch([*gallery, *probe], mode=mode)
    for representation in representations:
        if isinstance(representation, FacecmpError):
            raise representation
    embeddings = np.stack([representation.embedding for representation in representations])
    return float(comparer.score_embeddings(embeddings[:len(gallery)], embeddings[len(gallery):], mode=mode).max())


def _liveness_score(result) -> float:
    """The live probability; a check that could not be made (no face, face too small...) raises."""
    if result.score is None:  # a requirement failed
        result.raise_for_failure()
    return float(result.score)


def _face_count(result) -> tuple[int, ...] | None:
    check = result.checks.get("face_count")
    return (int(check["value"]),) if check else None


@lru_cache(maxsize=1)
def example_bytes() -> tuple[bytes, bytes] | None:
    """The bundled example probe and reference photos (public domain) as JPEG bytes, if installed."""
    paths = [EXAMPLES_DIR / f"{name}.jpg" for name in ("astronaut_probe", "astronaut_reference")]
    if not all(path.is_file() for path in paths):
        return None
    return paths[0].read_bytes(), paths[1].read_bytes()
