"""A second process that detects the reference photo of a lone compare on another core.

A compare detects two photos, and detection (three small networks between NumPy steps) is most
of its time; in one process the photos take turns, and threads cannot share that work (the GIL:
docs/performance.md). :class:`DetectWorker` is a child process holding a copy of the comparer's
detector on one thread: :meth:`facecmp.FaceComparer.compare` sends it the reference photo's
pixels and detects the probe meanwhile, then crops and embeds both faces in one pass as before.
MTCNN's faces depend neither on the images batched with a photo nor on the thread count
(tests/test_detect_worker.py checks them bit for bit), so a compare's result is the same
whichever process detected its photos.

The child is ``python -m facecmp.detect_worker`` (not ``multiprocessing``'s spawn, which would
run a user's script file again in it), talking over a socket pair; it starts on the first
compare that wants it and serves from when its models are loaded (compares meanwhile detect
both photos here), one compare at a time (the others detect both photos here), and ends when
its comparer is closed or collected, or its parent dies. POSIX only.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from facecmp.faces import Face

_READY = "ready"


class DetectWorker:
    """The child process and its end of the socket pair. ``setup``: what the child builds its
    detector from, ``(detector options, settings, compute)`` (see :meth:`FaceDetector.options`)."""

    def __init__(self, setup: tuple):
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen([sys.executable, "-m", "facecmp.detect_worker", str(child.fileno())],
                                         pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, env=env)
        child.close()
        self._connection = Connection(parent.detach())
        self._connection.send(setup)
        self._lock = threading.Lock()
        self._ready = False
        self.photos_detected = 0   # how many photos it has detected (the bench reports it)

    def claim(self) -> bool:
        """True when the worker is up and now this caller's, until :meth:`release`; False when
        it is loading, busy with another compare, or gone (then detect here)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._ready and self._connection is not None and self._connection.poll():
                self._ready = self._connection.recv() == _READY
            if self._ready:
                return True
        except (EOFError, OSError):
            self._lost()
        self._lock.release()
        return False

    def release(self) -> None:
        self._lock.release()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the worker serves (at most ``timeout`` s); whether it does."""
        with self._lock:
            if not self._ready and self._connection is not None and self._connection.poll(timeout):
                self._ready = self._connection.recv() == _READY
            return self._ready

    def send(self, image: np.ndarray) -> None:
        """Start detecting ``image`` (claimed workers only)."""
        self._connection.send(image)

    def receive(self) -> list[Face] | None:
        """The faces of the image sent, as ``FaceDetector.detect`` gives them; None when the
        worker died (then detect here: it is not used again). An error of the detector is raised."""
        try:
            outcome, value = self._connection.recv()
        except (EOFError, OSError):
            self._lost()
            return None
        if outcome == "error":
            raise value
        self.photos_detected += 1
        return value

    def _lost(self) -> None:
        self._ready = False
        self.close()

    def close(self) -> None:
        """End the child: its socket closes, it exits (killed if it has not in 5 s)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _serve(fd: int) -> None:
    """The child's loop: build the detector, say ready, detect each image sent until the parent
    closes the socket."""
    connection = Connection(fd)
    detector_options, settings, compute = connection.recv()
    import torch
    from threadpoolctl import threadpool_limits

    from facecmp.detect import FaceDetector

    torch.set_num_threads(compute.threads)
    threadpool_limits(compute.threads)
    detector = FaceDetector(**detector_options, compute=compute, settings=settings)
    connection.send(_READY)
    while True:
        try:
            image = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("faces", detector.detect(image))
        except Exception as exc:  # the parent raises it as its own detector would
            reply = ("error", exc)
        connection.send(reply)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
