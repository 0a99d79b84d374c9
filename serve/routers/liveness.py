"""Passive liveness: ``POST /liveness`` (OpenCV FR SDK ``check_liveness``)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from facecmp.errors import ImageDecodeError, LivenessError
from serve import operations
from serve.deps import ApiKey, EngineDep
from serve.errors import AUTH_ERRORS, LOAD_ERRORS, error_responses
from serve.schemas import LivenessRequest, LivenessResponse, liveness_examples

router = APIRouter(prefix="/liveness", tags=["liveness"])


@router.post(
    "", response_model=LivenessResponse, operation_id="check_liveness",
    summary="How likely is the face in the photo to be live (not a print or a screen)?",
    responses=error_responses(ImageDecodeError(), LivenessError("FACE_NOT_FOUND"), *AUTH_ERRORS, *LOAD_ERRORS),
)
async def check_liveness(body: Annotated[LivenessRequest, Body(openapi_examples=liveness_examples())],
                         request: Request, _key: ApiKey, engine: EngineDep) -> LivenessResponse:
    """`liveness_score` in [0, 1]. A photo on which the check cannot be made (no face, face too
    small or cut off, several faces) fails with `ERR_LIVENESS_ERROR` and `metadata.code`."""
    outcome = await engine.run(operations.check_liveness, body)
    request.state.outcome = outcome
    return outcome.body
