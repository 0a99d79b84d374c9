"""Request and response bodies, one pair per endpoint, with the examples Swagger UI shows.

Images travel as base64 strings of JPEG/PNG bytes (standard or URL-safe alphabet, a
``data:image/...;base64,`` prefix allowed). Bodies are strict: unknown fields and values of
the wrong JSON type are refused with 422 naming the field. ``POST /compare`` takes either the
OpenCV Face Compare Server body (``face_base_64`` + ``ref_face_base_64``) or the OpenCV FR
cloud SDK body (``gallery`` + ``probe`` lists); the presence of ``gallery`` or ``probe``
selects the second.
"""
from __future__ import annotations

import base64
import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_type_hints

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from facecmp import calibration
from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, DEFAULT_SCORE_CUTOFF, SCORE_PER_DECADE
from facecmp.modes import MODES
from facecmp.settings import FacecmpSettings

# The library's mode names as the OpenCV API spells them (upper case); the library reads any case.
SEARCH_MODES = tuple(name.upper() for name in MODES)
SearchMode = Literal[SEARCH_MODES]
_SEARCH_MODE_TEXT = f"{' or '.join(SEARCH_MODES)} pipeline"
DeviceOS = Literal["DESKTOP", "ANDROID", "IOS"]
MAX_SET_IMAGES = 3

EXAMPLES_DIR = Path(__file__).parent / "examples"

Base64Image = Annotated[str, Field(description="Base64 of the JPEG/PNG bytes of a photo.")]


@lru_cache(maxsize=None)
def example_image(name: str) -> str:
    """Base64 of a bundled public-domain example photo (see serve/examples/README.md)."""
    path = EXAMPLES_DIR / f"{name}.jpg"
    return base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else "<base64 JPEG>"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FaceCompareRequest(_Body):
    """Compare the face in ``face_base_64`` (the probe) with the face in ``ref_face_base_64``."""

    face_base_64: Base64Image = Field(description="The probe photo: one face; liveness is checked on it.")
    ref_face_base_64: Base64Image = Field(description="The reference photo, e.g. the ID document portrait.")
    min_similarity_score: float | None = Field(
        None, ge=0.0, le=1.0,
        description=f"`is_match` is `score >= min_similarity_score`; default {DEFAULT_SCORE_CUTOFF} "
                    "(FACECMP_MIN_SIMILARITY_SCORE).")
    check_liveness: bool = Field(False, description="Also check that the probe shows a live face.")
    search_mode: SearchMode | None = Field(
        None, description=f"{_SEARCH_MODE_TEXT}; default: the server's FACECMP_MODE "
                          f"({FacecmpSettings.model_fields['mode'].default.upper()}).")


class ImageSetCompareRequest(_Body):
    """OpenCV FR SDK ``compare_image_sets``: best score over all gallery x probe pairs."""

    gallery: list[Base64Image] = Field(min_length=1, max_length=MAX_SET_IMAGES)
    probe: list[Base64Image] = Field(min_length=1, max_length=MAX_SET_IMAGES)
    search_mode: SearchMode | None = Field(None, description=f"{_SEARCH_MODE_TEXT}.")


def _compare_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "image_sets" if ("gallery" in value or "probe" in value) else "face_pair"
    return "image_sets" if isinstance(value, ImageSetCompareRequest) else "face_pair"


CompareRequest = Annotated[
    Union[Annotated[FaceCompareRequest, Tag("face_pair")], Annotated[ImageSetCompareRequest, Tag("image_sets")]],
    Discriminator(_compare_shape),
]


def _trust_fields() -> dict[str, Any]:
    """The library's trust figures (:class:`facecmp.calibration.FaceTrust`, their one declaration)
    as optional response fields, each with its type, description and range."""
    types = get_type_hints(calibration.FaceTrust)
    return {figure.name: (types[figure.name], Field(None, **figure.metadata))
            for figure in dataclasses.fields(calibration.FaceTrust)}


FaceTrust = create_model(
    "FaceTrust", __doc__="Where one face falls relative to the faces the calibration was fitted on.",
    **_trust_fields())


class ComparedFace(FaceTrust):
    """A face the comparison used: where it is in the photo sent, and its trust figures."""

    # A trust figure this schema lacked would be refused, never silently dropped (it cannot lack one:
    # its fields are the library's record's).
    model_config = ConfigDict(extra="forbid")
    box: list[float] = Field(min_length=4, max_length=4,
                             description="(x1, y1, x2, y2), pixels of the photo sent (upright by its EXIF "
                                         "orientation); may extend past the photo's border.")
    landmarks: list[list[float]] = Field(
        min_length=5, max_length=5, description="Five (x, y), same pixels: eyes, nose, mouth corners "
                                                "(left = the photo's left).")


class CompareResponse(BaseModel):
    is_match: bool = Field(description="`score >= min_similarity_score` (the server default for image sets).")
    score: float = Field(ge=0.0, le=1.0, description=f"Calibrated score in [0, 1]: {ANCHOR_SCORE} stands for a "
                                                     f"false-match rate of 1 in {1 / ANCHOR_FMR:,.0f}, each "
                                                     f"{SCORE_PER_DECADE} more for 10 times fewer.")
    liveness_score: float | None = Field(
        None, ge=0.0, le=1.0, description="Liveness of the probe; present only when it was checked.")
    within_calibration: bool | None = Field(
        None, description="False when the pair lies outside what the calibration was fitted and measured on "
                          "(see `calibration_notes`): the score's false-match meaning is then not backed by "
                          "measurement. Face pairs only.")
    calibration_notes: list[str] | None = Field(None, description="Why `within_calibration` is false.")
    score_meaning: str | None = Field(None, description="The score in words: the share of different people who "
                                                        "score this high. Face pairs only.")
    faces: list[ComparedFace] | None = Field(None, description="Probe, then reference. Face pairs only.")


class LivenessRequest(_Body):
    """OpenCV FR SDK ``check_liveness``."""

    image: Base64Image = Field(description="A photo with one face, close to the camera.")
    os: DeviceOS = Field("DESKTOP", description="Capturing device; accepted for SDK compatibility.")


class LivenessResponse(BaseModel):
    liveness_score: float = Field(ge=0.0, le=1.0, description="Probability that the face is live.")


class CompareLiveFaceRequest(_Body):
    """OpenCV FR SDK ``compare_live_face``: liveness of ``probe``, then its best score against ``gallery``."""

    gallery: list[Base64Image] = Field(min_length=1, max_length=MAX_SET_IMAGES)
    probe: Base64Image
    liveness_min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="Below this liveness score the request fails with ERR_LIVENESS_ERROR; "
                                          "default: the server's liveness threshold (FACECMP_LIVENESS_THRESHOLD, 0.45).")
    os: DeviceOS = Field("DESKTOP", description="Capturing device; accepted for SDK compatibility.")
    search_mode: SearchMode | None = Field(None, description=f"{_SEARCH_MODE_TEXT}.")


class CompareLiveFaceResponse(BaseModel):
    score: float = Field(ge=0.0, le=1.0, description="Best calibrated similarity of the probe to the gallery.")
    liveness_score: float = Field(ge=0.0, le=1.0, description="Liveness of the probe.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    mode: str


class VersionResponse(BaseModel):
    facecmp: str
    mode: str = Field(description="The default pipeline mode.")
    compute: dict[str, Any] | None = Field(None, description="How the pipeline runs: embedder backend, precision, "
                                                             "threads and OpenVINO streams, detection passes.")
    modes: dict[str, dict[str, Any]] = Field(description="Per mode: weights (name -> digest prefix), "
                                                         "pipeline_id and calibration id (null until the mode "
                                                         "is loaded: FACECMP_PRELOAD_MODES).")


class ErrorResponse(BaseModel):
    code: str
    message: str
    metadata: dict[str, Any] | None = None


# -- OpenAPI examples ------------------------------------------------------------------------

def compare_examples() -> dict[str, dict[str, Any]]:
    probe, reference = example_image("astronaut_probe"), example_image("astronaut_reference")
    return {
        "face_pair": {
            "summary": "Probe and reference photo (OpenCV Face Compare Server body)",
            "value": {"face_base_64": probe, "ref_face_base_64": reference,
                      "min_similarity_score": DEFAULT_SCORE_CUTOFF, "check_liveness": False},
        },
        "image_sets": {
            "summary": "Gallery and probe sets (OpenCV FR SDK compare_image_sets)",
            "value": {"gallery": [reference], "probe": [probe], "search_mode": "FAST"},
        },
    }


def liveness_examples() -> dict[str, dict[str, Any]]:
    return {"desktop": {"summary": "One photo", "value": {"image": example_image("astronaut_probe"),
                                                           "os": "DESKTOP"}}}


def compare_live_face_examples() -> dict[str, dict[str, Any]]:
    return {"live_probe": {
        "summary": "Gallery and a probe photo",
        "value": {"gallery": [example_image("astronaut_reference")], "probe": example_image("astronaut_probe"),
                  "liveness_min_score": 0.5, "os": "DESKTOP", "search_mode": "ACCURATE"},
    }}
