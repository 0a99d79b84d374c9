"""Run the real service in a subprocess on a free loopback port (tests and bench/).

>>> with running_server({"FACECMP_API_KEYS": "k"}) as server:   # doctest: +SKIP
...     requests.post(f"{server.url}/compare", json=..., headers={"x-api-key": "k"})
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the server process, KiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values


def chromium_path() -> str | None:
    """The system's Chromium (Debian: ``apt-get install chromium``; ``make browser``), if any."""
    return next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@contextlib.contextmanager
def running_server(env: dict[str, str], *, wait_for: str = "ready", timeout_s: float = 600.0,
                   log_dir: Path | None = None) -> Iterator[ServerProcess]:
    """``python -m serve`` on 127.0.0.1:<free port> with ``env`` added to this environment.

    ``wait_for``: "ready" (models loaded; fails if they cannot be) or "health" (process up).
    """
    port = free_port()
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="facecmp-serve-"))
    log_path = log_dir / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait(server, wait_for, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(server: ServerProcess, wait_for: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            status, body = _get(f"{server.url}/{wait_for}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(0.3)
            continue
        if status == 200:
            return
        if body.get("metadata", {}).get("cause"):
            raise RuntimeError(f"server could not load its models ({body['metadata']['cause']}):\n"
                               f"{server.log()[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"server not {wait_for} after {timeout_s} s:\n{server.log()[-3000:]}")
