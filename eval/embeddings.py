"""Embed the images of a dataset through the service pipeline, with an on-disk cache.

Every image goes through :meth:`facecmp.FaceComparer.represent_batch`, exactly as the
service sees it (decode, detect, crop, embed). Results, including failures such as
"no face detected", are cached in SQLite under ``cache_dir()/embeddings/`` keyed by
(``pipeline_id``, sha256 of the image bytes): a renamed file hits the cache, changed
weights or preprocessing miss it. Each batch is committed as soon as it is computed, so an
interrupted run resumes where it stopped.

Backends: ``local`` (this machine, batches, tqdm progress) and ``ray`` (Ray Data
``map_batches`` over an actor pool, one :class:`~facecmp.FaceComparer` per actor; results
come back to this process, which alone writes the cache). ``local`` runs the batches in worker
processes, one a core (a thread each) with a pipeline like the comparer's, when there are
enough images to pay for their start (:func:`default_workers`): a photo's decode and detection,
whose small networks and NumPy steps gain little from a second thread, then run beside another
photo's embedding instead of taking turns with it (docs/performance.md measures both). A face's
embedding does not depend on the process, thread count or batch that computes it
(:data:`facecmp.embed.FACES_PER_PASS`), so the cache holds one answer whichever ran.
"""
from __future__ import annotations

import json
import multiprocessing
import sqlite3
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from facecmp.errors import FacecmpError
from facecmp.settings import cache_dir
from facecmp.weights.store import file_sha256


def default_cache_path() -> Path:
    """``cache_dir()/embeddings/embeddings.sqlite`` (``$FACECMP_CACHE_DIR`` moves it)."""
    return cache_dir() / "embeddings" / "embeddings.sqlite"


@dataclass(frozen=True)
class ImageRecord:
    """What the pipeline made of one image: an embedding and its face, or the error.

    embedding : (D,) float32, unit norm; None when the image failed.
    face : ``Face.to_dict()`` (box, probability, landmarks) of the face used, or None.
    face_count : faces detected in the image.
    image_size : (width, height), or None if the image did not decode.
    error_type, error_code, error_message : the FacecmpError raised, or None.
    trust : the face's ``FaceReport.trust`` (quality, estimated age, percentiles), or None.
    """

    embedding: np.ndarray | None
    face: dict | None = None
    face_count: int = 0
    image_size: tuple[int, int] | None = None
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    trust: dict | None = None

    @property
    def ok(self) -> bool:
        return self.embedding is not None

    @classmethod
    def from_result(cls, result) -> "ImageRecord":
        """From one item of ``FaceComparer.represent_batch``'s output."""
        if isinstance(result, FacecmpError):
            return cls(None, error_type=type(result).__name__, error_code=result.code, error_message=result.message)
        return cls(np.asarray(result.embedding, dtype=np.float32), result.face.to_dict(), int(result.face_count),
                   tuple(int(v) for v in result.image_size), trust=dict(result.trust))

    def meta_json(self) -> str:
        """Everything but the embedding, as JSON (cache rows and Ray batches use the same form)."""
        meta = asdict(self)
        del meta["embedding"]
        return json.dumps(meta, sort_keys=True)

    @classmethod
    def from_meta(cls, meta_json: str, embedding: np.ndarray | None) -> "ImageRecord":
        meta = json.loads(meta_json)
        if meta.get("image_size") is not None:
            meta["image_size"] = tuple(meta["image_size"])
        return cls(embedding, **meta)


class EmbeddingCache:
    """SQLite store of :class:`ImageRecord` keyed by (pipeline_id, image sha256).

    ``path=":memory:"`` keeps nothing on disk (``--no-cache``).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = str(default_cache_path() if path is None else path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (pipeline_id TEXT NOT NULL, sha256 TEXT NOT NULL, "
            "meta TEXT NOT NULL, embedding BLOB, created REAL NOT NULL, PRIMARY KEY (pipeline_id, sha256))")
        self._db.commit()

    def get_many(self, pipeline_id: str, keys: Iterable[str]) -> dict[str, ImageRecord]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, ImageRecord] = {}
        for chunk in _batches(keys, 500):  # SQLite caps the number of bound parameters
            rows = self._db.execute(
                f"SELECT sha256, meta, embedding FROM records WHERE pipeline_id = ? AND sha256 IN "
                f"({','.join('?' * len(chunk))})", [pipeline_id, *chunk])
            for key, meta, blob in rows:
                found[key] = ImageRecord.from_meta(meta, None if blob is None else np.frombuffer(blob, np.float32))
        return found

    def put_many(self, pipeline_id: str, items: Sequence[tuple[str, ImageRecord]]) -> None:
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
            [(pipeline_id, key, record.meta_json(),
              None if record.embedding is None else np.asarray(record.embedding, np.float32).tobytes(), now)
             for key, record in items])
        self._db.commit()

    def close(self) -> None:
        self._db.close()


@dataclass
class EmbeddingResult:
    """Per image of the input list (n_images).

    keys : sha256 per image.
    records : ImageRecord per image, None for images not embedded (run stopped by ``limit``).
    embeddings : (n_images, D) float32; zero rows where not ok.
    ok : (n_images,) bool.
    """

    keys: list[str]
    records: list[ImageRecord | None]
    embeddings: np.ndarray
    ok: np.ndarray
    n_cached: int
    n_computed: int
    seconds: float
    complete: bool

    def failures(self) -> dict[str, int]:
        """Count of failed images per error type."""
        counts: dict[str, int] = {}
        for record in self.records:
            if record is not None and not record.ok:
                counts[record.error_type] = counts.get(record.error_type, 0) + 1
        return counts


def _batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _embed_local(comparer, mode, todo: list[tuple[str, Path]], *, batch_size: int):
    for batch in _batches(todo, batch_size):
        results = comparer.represent_batch([path.read_bytes() for _, path in batch], mode=mode)
        yield [(key, ImageRecord.from_result(result)) for (key, _), result in zip(batch, results)]


BACKENDS = ("local", "ray")   # where embed_images computes: this machine's processes, or a Ray cluster

#: Images to compute per worker process, at least, before ``local`` starts workers: each imports
#: torch and loads the pipeline (a pool of 2 gives its first batches after 6.5 s in FAST, 9.4 s in
#: ACCURATE), which the workers' faster rate wins back from ~570 (FAST) and ~670 (ACCURATE)
#: images on 2 cores (bench/bench_dataset.py's figures: docs/performance.md).
MIN_IMAGES_PER_WORKER = 320


def default_workers(comparer, count: int) -> int:
    """Worker processes of the ``local`` backend for ``count`` images: on a CPU, one for each of
    the threads ``comparer`` computes on (its ``compute.threads``, else torch's thread count: the
    cores, or what ``--threads`` set), with at least :data:`MIN_IMAGES_PER_WORKER` images each;
    on a GPU 1, i.e. ``comparer``'s own process (one process shares a GPU best). Also 1 in a
    program started as a script file (``python my_script.py``): a spawned worker runs such a
    script's top level again, which without ``if __name__ == "__main__":`` starts it over
    (Python's rule for ``spawn``); a script with that guard may pass ``workers``. ``python -m``,
    pytest and notebooks are safe."""
    import torch

    main = sys.modules["__main__"]
    script = getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
    if script or not str(comparer.device).startswith("cpu"):
        return 1
    threads = comparer.compute.threads or torch.get_num_threads()
    return max(1, min(threads, count // MIN_IMAGES_PER_WORKER))


class EmbeddingWorkers:
    """``count`` worker processes for the ``local`` backend, each with a copy of ``comparer``'s
    pipeline on one thread, embedding in ``mode`` (``spawn``: a fork would copy OpenVINO's and
    OpenMP's thread pools). :func:`embed_images` starts its own for a call when given a number of
    workers; a program that embeds several sets in one mode passes one of these instead, and pays
    the start (each worker imports torch and loads the models: seconds) once. A context manager."""

    def __init__(self, comparer, mode: str | None, count: int):
        self.count, self.pipeline_id = count, comparer.pipeline_id(mode)
        self._pool = ProcessPoolExecutor(
            count, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(comparer.mode, mode, comparer.settings, replace(comparer.compute, threads=1),
                      comparer.detector.options()))

    def embed(self, todo: list[tuple[str, Path]], *, batch_size: int):
        """The batches of ``todo`` ((key, path) pairs), each yielded as [(key, ImageRecord)]."""
        batches = list(_batches(todo, batch_size))
        for batch, records in zip(batches, self._pool.map(_represent_files, [[path for _, path in b] for b in batches])):
            yield [(key, record) for (key, _), record in zip(batch, records)]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> EmbeddingWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _embed_workers(comparer, mode, todo: list[tuple[str, Path]], *, batch_size: int, workers: int):
    with EmbeddingWorkers(comparer, mode, workers) as pool:
        yield from pool.embed(todo, batch_size=batch_size)


_worker: tuple | None = None   # in a worker process: (its FaceComparer, the mode it embeds in)


def _start_worker(default_mode, mode, settings, compute, detector_options) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    from facecmp import FaceComparer
    from facecmp.detect import FaceDetector

    global _worker
    torch.set_num_threads(compute.threads)
    threadpool_limits(compute.threads)  # BLAS (the cohort cosines of a batch) on this worker's core too
    detector = FaceDetector(**detector_options, compute=compute, settings=settings)
    _worker = FaceComparer(default_mode, settings=settings, compute=compute, detector=detector), mode


def _represent_files(paths: list[Path]) -> list[ImageRecord]:
    comparer, mode = _worker
    return [ImageRecord.from_result(result)
            for result in comparer.represent_batch([path.read_bytes() for path in paths], mode=mode)]


class RayEmbedder:
    """Ray Data actor: holds one FaceComparer; maps a batch of image bytes to cache rows.

    ``comparer_factory``: a picklable ``mode -> FaceComparer`` (default ``FaceComparer(mode=mode)``).
    """

    def __init__(self, mode: str | None, torch_threads: int | None = 1, comparer_factory=None):
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        if comparer_factory is None:
            from facecmp import FaceComparer as comparer_factory

        self.mode = mode
        self.comparer = comparer_factory(mode=mode)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.comparer.represent_batch([bytes(b) for b in batch["data"]], mode=self.mode)
        records = [ImageRecord.from_result(r) for r in results]
        dim = next((r.embedding.size for r in records if r.ok), 0)
        embeddings = np.stack([r.embedding if r.ok else np.zeros(dim, np.float32) for r in records]) \
            if dim else np.zeros((len(records), 0), np.float32)
        return {"key": np.asarray(batch["key"]), "meta": np.array([r.meta_json() for r in records]),
                "embedding": embeddings}


def _embed_ray(mode, todo: list[tuple[str, Path]], *, batch_size: int, actors: int, torch_threads: int | None,
               comparer_factory=None):
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=max(actors, 1), include_dashboard=False, log_to_driver=False)
    dataset = ray.data.from_items([{"key": key, "data": path.read_bytes()} for key, path in todo])
    mapped = dataset.map_batches(RayEmbedder, fn_constructor_kwargs={"mode": mode, "torch_threads": torch_threads,
                                                        "comparer_factory": comparer_factory},
                                 batch_size=batch_size, concurrency=actors, num_cpus=1, batch_format="numpy")
    for batch in mapped.iter_batches(batch_size=batch_size, batch_format="numpy"):
        items = []
        for key, meta, embedding in zip(batch["key"], batch["meta"], batch["embedding"]):
            record = ImageRecord.from_meta(str(meta), None)
            if record.error_type is None:
                record = replace(record, embedding=np.array(embedding, dtype=np.float32))
            items.append((str(key), record))
        yield items


def check_backend(backend: str) -> None:
    """Raises ValueError unless ``backend`` is one that :func:`embed_images` runs."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use {' or '.join(map(repr, BACKENDS))}")


def embed_images(paths: Sequence[str | Path], comparer=None, *, mode: str | None = None,
                 pipeline_id: str | None = None, cache: EmbeddingCache | None = None, batch_size: int = 32,
                 backend: str = "local", workers: int | EmbeddingWorkers | None = None, limit: int | None = None,
                 progress: bool = True,
                 ray_actors: int = 1, torch_threads: int | None = 1, ray_comparer_factory=None) -> EmbeddingResult:
    """Embed ``paths`` (through the cache), returning per-image records and an embedding matrix.

    Parameters
    ----------
    paths : sequence of n_images image files.
    comparer : FaceComparer; needed by the local backend and for ``pipeline_id``.
    mode : pipeline mode passed to the comparer.
    pipeline_id : cache key part; default ``comparer.pipeline_id(mode)``.
    cache : EmbeddingCache; default the one at :func:`default_cache_path`.
    batch_size : images per ``represent_batch`` call (and per cache commit).
    backend : "local" or "ray".
    workers : processes of the local backend (1: this one; default :func:`default_workers`), or
        running :class:`EmbeddingWorkers` of this pipeline.
    limit : compute at most this many new images, then stop (``complete=False``).
    progress : show a tqdm bar.
    ray_actors : actor pool size of the ray backend.
    torch_threads : ``torch.set_num_threads`` in each Ray actor (None: leave as is).
    ray_comparer_factory : picklable ``mode -> FaceComparer`` for the Ray actors.
    """
    check_backend(backend)
    start = time.perf_counter()
    cache = cache or EmbeddingCache()
    pipeline_id = pipeline_id or comparer.pipeline_id(mode)
    if isinstance(workers, EmbeddingWorkers) and workers.pipeline_id != pipeline_id:
        raise ValueError(f"these workers embed for {workers.pipeline_id}, not {pipeline_id}")
    paths = [Path(p) for p in paths]
    keys = [file_sha256(p) for p in paths]
    known = cache.get_many(pipeline_id, keys)
    first_path: dict[str, Path] = {}
    for key, path in zip(keys, paths):
        first_path.setdefault(key, path)
    todo = [(key, path) for key, path in first_path.items() if key not in known]
    n_cached = len(first_path) - len(todo)
    if limit is not None:
        todo = todo[:max(0, limit)]
    n_computed = 0
    if todo:
        with tqdm(total=len(todo), unit="img", desc=f"embedding ({backend})", disable=not progress) as bar:
            if backend == "local":
                workers = workers or default_workers(comparer, len(todo))
                if isinstance(workers, EmbeddingWorkers):
                    batches = workers.embed(todo, batch_size=batch_size)
                elif workers > 1:
                    batches = _embed_workers(comparer, mode, todo, batch_size=batch_size, workers=workers)
                else:
                    batches = _embed_local(comparer, mode, todo, batch_size=batch_size)
            else:
                batches = _embed_ray(mode, todo, batch_size=batch_size, actors=ray_actors, torch_threads=torch_threads,
                                     comparer_factory=ray_comparer_factory)
            for items in batches:
                cache.put_many(pipeline_id, items)
                known.update(items)
                n_computed += len(items)
                bar.update(len(items))
    records = [known.get(key) for key in keys]
    dim = next((r.embedding.size for r in records if r is not None and r.ok), 0)
    embeddings = np.zeros((len(paths), dim), np.float32)
    ok = np.array([r is not None and r.ok for r in records], dtype=bool)
    for i in np.flatnonzero(ok):
        embeddings[i] = records[i].embedding
    return EmbeddingResult(keys, records, embeddings, ok, n_cached, n_computed, time.perf_counter() - start,
                           complete=all(r is not None for r in records))
