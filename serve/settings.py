"""Service settings, read from the environment (prefix ``FACECMP_``) by pydantic-settings.

:class:`Settings` extends the library's :class:`facecmp.settings.FacecmpSettings` (mode, embed
backend and precision, cache, image limits, liveness limits and weights folder), so each variable
is read in one place and means the same in the library and the service; the service's
``FaceComparer`` is built from this object (``FaceComparer(settings=...)``), never from the
environment a second time.
``get_settings()`` is the cached dependency every route and the app factory use; tests pass
their own :class:`Settings` to ``create_app(settings)`` or override the dependency.
API keys are held as ``SecretStr`` so that no repr, log line or traceback shows them.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from facecmp.contract import DEFAULT_SCORE_CUTOFF
from facecmp.modes import MODES, mode_name
from facecmp.settings import FacecmpSettings

MiB = 1024 * 1024


class Settings(FacecmpSettings):
    """Every field is ``FACECMP_<NAME>`` in the environment (case-insensitive)."""

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 exposes the service.")
    port: int = Field(8000, ge=0, le=65535)

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="Accepted API keys, comma-separated in FACECMP_API_KEYS.")
    api_keys_file: Path | None = Field(
        None, description="File with one accepted API key per line ('#' starts a comment).")
    allow_no_auth: bool = Field(
        False, description="Serve without any API key. For local experiments only; logged loudly.")

    max_body_bytes: int = Field(32 * MiB, gt=0, description="Largest accepted request body.")
    # Stricter than the library's own limits (facecmp.decode.DecodeLimits): these images come from the network.
    max_image_bytes: int = Field(10 * MiB, gt=0, description="Largest decoded image file.")
    max_image_pixels: int = Field(25_000_000, gt=0, description="Largest image (width x height).")

    max_concurrency: int = Field(4, ge=1, description="Inferences running at once (worker threads); 4 measured best "
                                                      "on 2 cores (docs/performance.md).")
    max_queue: int = Field(8, ge=0, description="Requests waiting for a worker; more get 503.")
    retry_after_s: int = Field(2, ge=1, description="Retry-After (seconds) sent with 503.")
    threads_per_inference: int | None = Field(
        None, ge=1, description="Threads each inference runs on (PyTorch intra-op and the OpenVINO models' "
                                "per-stream threads); default: CPU cores / max_concurrency.")

    min_similarity_score: float = Field(DEFAULT_SCORE_CUTOFF, ge=0.0, le=1.0,
                                        description="Default is_match threshold on the calibrated score.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    demo: bool = Field(True, description="Serve the demo page at GET /demo (off: /demo answers ERR_NOT_FOUND).")
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /metrics, without an API key "
                                            "(off: /metrics answers ERR_NOT_FOUND and nothing is counted).")

    preload_modes: Annotated[tuple[Literal[tuple(MODES)], ...], NoDecode] = Field(
        (), description="Modes whose models load at start-up besides the default `mode`, comma-separated "
                        "(e.g. 'fast,accurate'). A request naming a mode not loaded yet loads it first (that "
                        "request waits for the load; later ones do not).")
    wait_for_models: bool = Field(
        False, description="Finish start-up only once the models are loaded, and fail it if they cannot be: "
                           "for hosts that send traffic as soon as start-up ends (Ray Serve replicas). "
                           "Off, /health answers at once and /ready tells when the models are loaded.")

    # Ray Serve (serve/cluster.py, `python -m serve cluster`); host and port are then the Ray proxy's.
    ray_address: str | None = Field(
        None, description="Ray cluster to deploy to ('HOST:6379' of `ray start --head`, or 'auto'); "
                          "None starts a Ray instance on this machine.")
    ray_replicas: int = Field(2, ge=1, description="Replicas, each a process holding one FaceComparer.")
    ray_autoscaling_min: int = Field(1, ge=0, description="Fewest replicas when autoscaling is on.")
    ray_autoscaling_max: int | None = Field(
        None, ge=1, description="Most replicas; set, it turns autoscaling on in place of ray_replicas.")
    ray_target_ongoing_requests: float | None = Field(
        None, gt=0, description="Autoscaling aims at this many requests per replica; default max_concurrency.")
    ray_replica_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves for each replica.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("preload_modes", mode="before")
    @classmethod
    def _split_modes(cls, value: object) -> object:
        if isinstance(value, str):  # FACECMP_PRELOAD_MODES=fast,ACCURATE
            return tuple(mode_name(name.strip()) for name in value.split(",") if name.strip())
        if isinstance(value, (list, tuple)):
            return tuple(mode_name(name) if isinstance(name, str) else name for name in value)
        return value

    @property
    def startup_modes(self) -> tuple[str, ...]:
        """The modes loaded at start-up: the default mode, then ``preload_modes``."""
        return tuple(dict.fromkeys((self.mode, *self.preload_modes)))

    @property
    def inference_threads(self) -> int:
        """``threads_per_inference``, or the cores shared out among the workers."""
        return self.threads_per_inference or max(1, (os.cpu_count() or 1) // self.max_concurrency)

    @property
    def embed_streams(self) -> int:
        """OpenVINO embedder streams: one per worker, at most as many as run at once on the cores."""
        return max(1, min(self.max_concurrency, (os.cpu_count() or 1) // self.inference_threads))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
