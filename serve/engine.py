"""The shared pipeline behind a bounded worker pool.

One :class:`facecmp.FaceComparer` is built at start-up (in a worker thread, so ``/health``
answers while the weights load) and shared by every request. Start-up loads the modes of
``settings.startup_modes`` (the default mode, plus ``preload_modes``); a request naming another
mode loads it on its worker thread first, once. Inference never runs on the
event loop: :class:`InferenceGate` runs it on ``max_concurrency`` worker threads and admits
at most ``max_queue`` more requests to wait for one; any further request is refused at once
with :class:`~serve.errors.ServiceOverloadedError` (503 + Retry-After) instead of piling up.

The face logic stays in the library; this module only schedules. (Cross-request batching of
the embedder's forward passes was measured and removed: docs/performance.md.)
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import torch

from facecmp import FaceComparer, FacecmpError, __version__
from facecmp.backends import ComputeOptions
from facecmp.errors import LivenessError
from facecmp.modes import mode_name
from serve.errors import ServiceNotReadyError, ServiceOverloadedError, UnknownError
from serve.operations import Defaults, example_bytes
from serve.settings import Settings

log = logging.getLogger("facecmp.serve")
T = TypeVar("T")


class InferenceGate:
    """``max_concurrency`` worker threads plus a waiting room of ``max_queue`` requests.

    The threads exist between :meth:`open` and :meth:`close` (the app's start-up and shutdown).
    """

    def __init__(self, max_concurrency: int, max_queue: int, threads_per_worker: int):
        self.max_concurrency = max_concurrency
        self.threads_per_worker = threads_per_worker
        self._executor: ThreadPoolExecutor | None = None
        self._slots = asyncio.Semaphore(max_concurrency)
        self.capacity = max_concurrency + max_queue
        self.admitted = 0  # running + waiting; only touched on the event loop
        self.rejected = 0  # requests refused with ServiceOverloadedError since start (serve/metrics.py)

    def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.max_concurrency, thread_name_prefix="facecmp-infer",
                initializer=torch.set_num_threads, initargs=(self.threads_per_worker,))

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def run_in_worker(self, fn: Callable[[], T]) -> asyncio.Future:
        """Run ``fn`` on a worker thread outside the admission count (the start-up load).

        Loading there rather than on a thread of its own matters with several torch threads
        per worker: each thread that runs torch ops in parallel gets its own OpenMP team, and
        once the process holds more OpenMP threads than cores, libgomp stops spin-waiting and
        every small op pays a wake-up (one worker x 2 threads: 100 vs 60 ms a compare here).
        """
        if self._executor is None:
            raise ServiceNotReadyError()
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        if self._executor is None:
            raise ServiceNotReadyError()
        if self.admitted >= self.capacity:
            self.rejected += 1
            raise ServiceOverloadedError()
        self.admitted += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self.admitted -= 1
            raise
        future = asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
        # The slot is freed when the work ends, not when a cancelled caller stops waiting for it.
        future.add_done_callback(self._release)
        return await asyncio.shield(future)

    def _release(self, _future: asyncio.Future) -> None:
        self._slots.release()
        self.admitted -= 1



class Engine:
    """The pipeline, its load state and the versions it reports."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.defaults = Defaults(settings.min_similarity_score)
        self.gate = InferenceGate(settings.max_concurrency, settings.max_queue, settings.inference_threads)
        # Workers embed on OpenVINO streams of their own (on one stream they queue: docs/performance.md).
        self.compute = ComputeOptions.from_settings(settings, threads=settings.inference_threads,
                                                    streams=settings.embed_streams)
        self.comparer: FaceComparer | None = None
        self.load_error: FacecmpError | None = None
        self.loaded_modes: frozenset[str] = frozenset()
        self._mode_lock = threading.Lock()
        self.versions: dict[str, Any] = {"facecmp": __version__}
        self.version_header = f"facecmp/{__version__}"

    @property
    def ready(self) -> bool:
        return self.comparer is not None

    def load(self) -> None:
        """Build the comparer, load the start-up modes' weights and calibrations, and warm them up.

        Idempotent: once loaded, a second start-up (or call) keeps the loaded models."""
        if self.comparer is not None:
            return
        start = time.perf_counter()
        torch.set_num_threads(self.settings.inference_threads)
        try:
            comparer = FaceComparer(settings=self.settings, compute=self.compute)
            for mode in self.settings.startup_modes:
                comparer.calibration(mode)
            _warm_up(comparer, self.settings.startup_modes)
        except FacecmpError as exc:
            self.load_error = exc
            log.critical("facecmp serve: the models could not be loaded (%s): %s", exc.code, exc.message)
            return
        except Exception:  # noqa: BLE001 - reported by /ready and the log; the process stays up
            self.load_error = UnknownError()
            log.critical("facecmp serve: the models could not be loaded", exc_info=True)
            return
        self.loaded_modes = frozenset(self.settings.startup_modes)
        self._note_versions(comparer)
        self.comparer = comparer
        log.info("facecmp serve: models loaded in %.1f s (modes %s; default %s)",
                 time.perf_counter() - start, ", ".join(self.settings.startup_modes), comparer.mode)

    def _note_versions(self, comparer: FaceComparer) -> None:
        self.versions = comparer.versions()
        self.version_header = version_header(self.versions)

    def not_ready_error(self) -> ServiceNotReadyError:
        if self.load_error is None:
            return ServiceNotReadyError()
        return ServiceNotReadyError("The models could not be loaded; see the server log.",
                                    metadata={"cause": self.load_error.code})

    async def run(self, operation: Callable[..., T], body: Any) -> T:
        """Run ``operation(comparer, body, defaults)`` on a worker thread, within the gate's bounds,
        once the mode the body names (``search_mode``) is loaded."""
        if self.comparer is None:
            raise self.not_ready_error()
        return await self.gate.run(self._operate, operation, body)

    def _operate(self, operation: Callable[..., T], body: Any) -> T:
        mode = getattr(body, "search_mode", None)
        if mode is not None:
            self._load_mode(mode_name(mode))
        return operation(self.comparer, body, self.defaults)

    def _load_mode(self, mode: str) -> None:
        """Load ``mode`` on first use. A failed load raises ServiceNotReadyError (503) naming the
        library's code; the next request naming the mode tries again."""
        if mode in self.loaded_modes:
            return
        with self._mode_lock:  # a second request for the mode waits here, then finds it loaded
            if mode in self.loaded_modes:
                return
            start = time.perf_counter()
            try:
                self.comparer.calibration(mode)
            except FacecmpError as exc:
                log.error("facecmp serve: mode %s could not be loaded (%s): %s", mode, exc.code, exc.message)
                raise ServiceNotReadyError(f"The models of mode {mode} could not be loaded; see the server log.",
                                           metadata={"cause": exc.code, "mode": mode}) from exc
            self.loaded_modes = self.loaded_modes | {mode}
            self._note_versions(self.comparer)
        log.info("facecmp serve: mode %s loaded on first use in %.1f s (FACECMP_PRELOAD_MODES loads it at start-up)",
                 mode, time.perf_counter() - start)


def version_header(versions: dict[str, Any]) -> str:
    """Compact, header-safe summary: ``facecmp/0.1.0 mode=accurate fast=<pipeline>;cal=<id> ...``."""
    parts = [f"facecmp/{versions.get('facecmp')}", f"mode={versions.get('mode')}"]
    for name, info in sorted(versions.get("modes", {}).items()):
        parts.append(f"{name}={info.get('pipeline_id')};calibration={info.get('calibration')}")
    return " ".join(parts).encode("ascii", "replace").decode("ascii")


def _warm_up(comparer: FaceComparer, modes: tuple[str, ...]) -> None:
    """One compare per mode of ``modes`` and one liveness check on the bundled example photos, so
    that their models have run before the first request and a missing liveness model is reported now."""
    examples = example_bytes()
    if examples is None:
        log.warning("facecmp serve: serve/examples is not installed; skipping the warm-up")
        return
    probe, reference = examples
    for mode in modes:
        try:
            comparer.compare(probe, reference, mode=mode)
        except FacecmpError as exc:  # the warm-up photos are fixed: this means a broken install
            log.warning("facecmp serve: warm-up compare in mode %s failed: %s", mode, exc.code)
    try:
        comparer.check_liveness(probe)
    except LivenessError as exc:
        log.warning("facecmp serve: liveness checks will fail (%s): %s", exc.liveness_code, exc.message)
