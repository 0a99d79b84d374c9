"""The shared pipeline behind a bounded worker pool.

One :class:`facecmp.FaceComparer` is built at start-up (in a worker thread, so ``/health``
answers while the weights load) and shared by every request. Inference never runs on the
event loop: :class:`InferenceGate` runs it on ``max_concurrency`` worker threads and admits
at most ``max_queue`` more requests to wait for one; any further request is refused at once
with :class:`~serve.errors.ServiceOverloadedError` (503 + Retry-After) instead of piling up.

Concurrent compares can share embedding forward passes (``FACECMP_EMBED_BATCH_WINDOW_MS`` > 0,
off by default): :class:`EmbedBatcher` collects the face crops of compares that reach their
embedding step together (waiting at most that long and only while other compares are still
being prepared) and embeds them in one call of :meth:`FaceComparer.embed_crops`. The face logic stays in
the library; this module only schedules.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from facecmp import FaceComparer, FacecmpError, __version__
from facecmp.backends import ComputeOptions
from facecmp.pipeline import DEFAULT_MIN_SIMILARITY, CompareResult
from facecmp.decode import DecodeLimits
from facecmp.errors import LivenessError
from facecmp.liveness import LivenessSettings
from facecmp.modes import MODES
from serve.errors import ServiceNotReadyError, ServiceOverloadedError, UnknownError
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



@dataclass
class _Batch:
    parts: list[np.ndarray] = field(default_factory=list)
    size: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class EmbedBatcher:
    """Embeds the crops of concurrent compares (one batch per mode) in one forward pass.

    Worker threads call :meth:`slot` before preparing a compare (decode, detect, crop) and
    then ``embed(crops, mode)``. The first thread to submit crops for a mode leads the batch:
    it waits, at most ``window_s``, while other compares are still being prepared and the
    batch holds fewer than ``max_crops`` crops, then embeds all crops at once; the others
    block until their rows are ready. A lone compare never waits.
    """

    def __init__(self, embed: Callable[[np.ndarray, str], np.ndarray], *, window_s: float, max_crops: int):
        self._embed = embed
        self.window_s = window_s
        self.max_crops = max_crops
        self._cond = threading.Condition()
        self._preparing = 0
        self._open: dict[str, _Batch] = {}
        self.batch_sizes: dict[int, int] = {}  # crops per forward pass -> count (for benchmarks)

    def slot(self) -> "_Slot":
        with self._cond:
            self._preparing += 1
        return _Slot(self)

    def _withdraw(self) -> None:
        with self._cond:
            self._preparing -= 1
            self._cond.notify_all()

    def _submit(self, crops: np.ndarray, mode: str) -> np.ndarray:
        with self._cond:
            self._preparing -= 1
            batch = self._open.get(mode)
            leader = batch is None
            if leader:
                batch = self._open[mode] = _Batch()
            start = batch.size
            batch.parts.append(crops)
            batch.size += len(crops)
            self._cond.notify_all()
            if leader:
                deadline = time.monotonic() + self.window_s
                while batch.size < self.max_crops and self._preparing > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                del self._open[mode]
                self.batch_sizes[batch.size] = self.batch_sizes.get(batch.size, 0) + 1
        if leader:
            try:
                batch.result = self._embed(np.concatenate(batch.parts), mode)
            except BaseException as exc:  # noqa: BLE001 - re-raised in every thread of the batch
                batch.error = exc
            finally:
                batch.done.set()
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.result[start:start + len(crops)]


class _Slot:
    """One compare's place in :class:`EmbedBatcher`: ``embed`` once, or leave (``with``) without."""

    def __init__(self, batcher: EmbedBatcher):
        self._batcher = batcher
        self._open = True

    def embed(self, crops: np.ndarray, mode: str) -> np.ndarray:
        self._open = False
        return self._batcher._submit(crops, mode)

    def __enter__(self) -> "_Slot":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._open:
            self._open = False
            self._batcher._withdraw()


class BatchingComparer:
    """The shared comparer as the operations see it: ``compare`` embeds through an
    :class:`EmbedBatcher`; every other attribute is the comparer's own."""

    def __init__(self, comparer: FaceComparer, batcher: EmbedBatcher):
        self._comparer = comparer
        self.batcher = batcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._comparer, name)

    def compare(self, image_a, image_b, *, min_similarity_score: float = DEFAULT_MIN_SIMILARITY,
                check_liveness: bool = False, mode: str | None = None) -> CompareResult:
        with self.batcher.slot() as slot:
            prepared = self._comparer.prepare_compare(image_a, image_b, check_liveness=check_liveness, mode=mode)
            start = time.perf_counter()
            embeddings = slot.embed(prepared.crops, prepared.config.mode)
            prepared.timings_ms["embed"] = (time.perf_counter() - start) * 1000.0  # includes the batch wait
        return self._comparer.finish_compare(prepared, embeddings, min_similarity_score=min_similarity_score)


@dataclass(frozen=True)
class Defaults:
    """Thresholds a request may leave out."""

    min_similarity_score: float
    liveness_threshold: float


class Engine:
    """The pipeline, its load state and the versions it reports."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.liveness_settings = _liveness_settings(settings)
        self.defaults = Defaults(settings.min_similarity_score, self.liveness_settings.threshold)
        self.gate = InferenceGate(settings.max_concurrency, settings.max_queue, settings.inference_threads)
        # Workers embed on OpenVINO streams of their own (on one stream they queue: docs/performance.md).
        self.compute = dataclasses.replace(ComputeOptions.from_env(), threads=settings.inference_threads,
                                           streams=settings.embed_streams)
        self.comparer: FaceComparer | None = None
        self.scheduled: FaceComparer | BatchingComparer | None = None  # what operations get
        self.load_error: FacecmpError | None = None
        self.versions: dict[str, Any] = {"facecmp": __version__}
        self.version_header = f"facecmp/{__version__}"

    @property
    def ready(self) -> bool:
        return self.comparer is not None

    def load(self) -> None:
        """Build the comparer, load every mode's weights and calibration, and warm them up.

        Idempotent: once loaded, a second start-up (or call) keeps the loaded models."""
        if self.comparer is not None:
            return
        start = time.perf_counter()
        torch.set_num_threads(self.settings.inference_threads)
        try:
            comparer = FaceComparer(
                mode=self.settings.mode,
                decode_limits=DecodeLimits(max_bytes=self.settings.max_image_bytes,
                                           max_pixels=self.settings.max_image_pixels),
                liveness_settings=self.liveness_settings,
                compute=self.compute,
            )
            for mode in MODES:
                comparer.calibration(mode)
            _warm_up(comparer)
        except FacecmpError as exc:
            self.load_error = exc
            log.critical("facecmp serve: the models could not be loaded (%s): %s", exc.code, exc.message)
            return
        except Exception:  # noqa: BLE001 - reported by /ready and the log; the process stays up
            self.load_error = UnknownError()
            log.critical("facecmp serve: the models could not be loaded", exc_info=True)
            return
        self.versions = comparer.versions()
        self.version_header = version_header(self.versions)
        self.scheduled = comparer
        if self.settings.embed_batch_window_ms > 0:
            batcher = EmbedBatcher(lambda crops, mode: comparer.embed_crops(crops, mode=mode),
                                   window_s=self.settings.embed_batch_window_ms / 1000.0,
                                   max_crops=self.settings.embed_batch_max_crops)
            self.scheduled = BatchingComparer(comparer, batcher)
        self.comparer = comparer
        log.info("facecmp serve: models loaded in %.1f s (default mode %s)",
                 time.perf_counter() - start, comparer.mode)

    def not_ready_error(self) -> ServiceNotReadyError:
        if self.load_error is None:
            return ServiceNotReadyError()
        return ServiceNotReadyError("The models could not be loaded; see the server log.",
                                    metadata={"cause": self.load_error.code})

    async def run(self, operation: Callable[..., T], body: Any) -> T:
        """Run ``operation(comparer, body, defaults)`` on a worker thread, within the gate's bounds."""
        if self.comparer is None:
            raise self.not_ready_error()
        return await self.gate.run(operation, self.scheduled, body, self.defaults)


def version_header(versions: dict[str, Any]) -> str:
    """Compact, header-safe summary: ``facecmp/0.1.0 mode=accurate fast=<pipeline>;cal=<id> ...``."""
    parts = [f"facecmp/{versions.get('facecmp')}", f"mode={versions.get('mode')}"]
    for name, info in sorted(versions.get("modes", {}).items()):
        parts.append(f"{name}={info.get('pipeline_id')};calibration={info.get('calibration')}")
    return " ".join(parts).encode("ascii", "replace").decode("ascii")


def _liveness_settings(settings: Settings) -> LivenessSettings:
    """The library's liveness settings (FACECMP_LIVENESS_*), with the service's weights directory."""
    liveness = LivenessSettings.from_env()
    if settings.liveness_weights_dir is not None:
        liveness = dataclasses.replace(liveness, weights_dir=settings.liveness_weights_dir)
    return liveness


def _warm_up(comparer: FaceComparer) -> None:
    """One compare per mode and one liveness check on the bundled example photos, so that
    every model is loaded before the first request and a missing liveness model is reported now."""
    from serve.operations import example_bytes

    examples = example_bytes()
    if examples is None:
        log.warning("facecmp serve: serve/examples is not installed; skipping the warm-up")
        return
    probe, reference = examples
    for mode in MODES:
        try:
            comparer.compare(probe, reference, mode=mode)
        except FacecmpError as exc:  # the warm-up photos are fixed: this means a broken install
            log.warning("facecmp serve: warm-up compare in mode %s failed: %s", mode, exc.code)
    try:
        comparer.check_liveness(probe)
    except LivenessError as exc:
        log.warning("facecmp serve: liveness checks will fail (%s): %s", exc.liveness_code, exc.message)
