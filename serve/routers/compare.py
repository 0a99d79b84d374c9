"""Face compare: ``POST /compare`` (both body shapes) and ``POST /compare-live-face``."""
from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Body, Request

from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, DEFAULT_SCORE_CUTOFF, PROMISE_FLOOR, SCORE_PER_DECADE
from facecmp.errors import FaceNotDetectedError, ImageDecodeError, LivenessError
from serve import operations
from serve.deps import ApiKey, EngineDep
from serve.errors import AUTH_ERRORS, LOAD_ERRORS, error_responses
from serve.schemas import (
    CompareLiveFaceRequest, CompareLiveFaceResponse, CompareRequest, CompareResponse, ImageSetCompareRequest,
    compare_examples, compare_live_face_examples,
)

# The OpenAPI text of POST /compare; its numbers come from the score contract.
COMPARE_DESCRIPTION = f"""Is the person in `face_base_64` the one in `ref_face_base_64`?

`score` is calibrated on false-match rates, not a probability: a different-person pair
reaches a score of `s` >= {PROMISE_FLOOR:g} with a rate of
10^-({-math.log10(ANCHOR_FMR):g} + (s - {ANCHOR_SCORE:g}) / {SCORE_PER_DECADE:g}), so the default
`min_similarity_score` {DEFAULT_SCORE_CUTOFF:g} admits about 1 in {1 / ANCHOR_FMR:,.0f} different-person pairs,
{ANCHOR_SCORE + SCORE_PER_DECADE:g} about 1 in {10 / ANCHOR_FMR:,.0f}. The cosine is first normalised against a
cohort of faces of every age and group, so that this holds across them (measured per group:
README); `score_meaning` says the score in words; `within_calibration`, `calibration_notes` and `faces` say how far a pair's score
can be trusted, and `faces` also where each face is (`box`, `landmarks`). With
`check_liveness`, the probe must also pass the liveness check and `liveness_score` is
returned. The OpenCV FR SDK body (`gallery`, `probe`: up to 3 photos each) returns the best
score over all pairs.
"""

IMAGE_ERRORS = (ImageDecodeError(), FaceNotDetectedError(), LivenessError("FACE_NOT_LIVE"))

router = APIRouter(prefix="/compare", tags=["compare"])
live_router = APIRouter(prefix="/compare-live-face", tags=["compare"])


@router.post(
    "", response_model=CompareResponse, response_model_exclude_none=True, operation_id="compare",
    summary="Compare two faces (or two sets of face photos)", description=COMPARE_DESCRIPTION,
    responses=error_responses(*IMAGE_ERRORS, *AUTH_ERRORS, *LOAD_ERRORS),
)
async def compare(body: Annotated[CompareRequest, Body(openapi_examples=compare_examples())],
                  request: Request, _key: ApiKey, engine: EngineDep) -> CompareResponse:
    """Is the person in `face_base_64` the one in `ref_face_base_64`? (OpenAPI: COMPARE_DESCRIPTION.)"""
    operation = operations.compare_sets if isinstance(body, ImageSetCompareRequest) else operations.compare_pair
    outcome = await engine.run(operation, body)
    request.state.outcome = outcome
    return outcome.body


@live_router.post(
    "", response_model=CompareLiveFaceResponse, operation_id="compare_live_face",
    summary="Check that the probe is live, then compare it with a gallery",
    responses=error_responses(*IMAGE_ERRORS, *AUTH_ERRORS, *LOAD_ERRORS),
)
async def compare_live_face(
    body: Annotated[CompareLiveFaceRequest, Body(openapi_examples=compare_live_face_examples())],
    request: Request, _key: ApiKey, engine: EngineDep,
) -> CompareLiveFaceResponse:
    """OpenCV FR SDK `compare_live_face`. A probe scoring below `liveness_min_score` fails with
    `ERR_LIVENESS_ERROR` (`metadata.code` `FACE_NOT_LIVE`)."""
    outcome = await engine.run(operations.compare_live_face, body)
    request.state.outcome = outcome
    return outcome.body
