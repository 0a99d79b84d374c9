"""Benchmark the REST service: p50/p95 latency and compares/s at concurrency 1, 4 and 16.

Starts ``python -m serve`` on a free loopback port (or uses ``--url``), posts ``POST /compare``
with two typical 640x480 photos (real photos of one person, scaled and padded to 640x480,
JPEG), and prints one line per concurrency level and the server's peak RSS.

    python bench/bench_service.py [--mode accurate|fast] [--requests 48] [--workers 2]

A script, not a test: the numbers depend on the machine. Keep --requests small on shared machines.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serve.testing import running_server  # noqa: E402

KEY = "bench-key"
SIZE = (640, 480)


def typical_photo(path: Path, size: tuple[int, int] = SIZE) -> str:
    """A ``size`` (default 640x480) JPEG (base64) of the photo: scaled to fit, padded with its mean colour."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    scale = min(size[0] / image.width, size[1] / image.height)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    mean = tuple(int(v) for v in image.resize((1, 1), Image.BOX).getpixel((0, 0)))
    canvas = Image.new("RGB", size, mean)
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def default_photos() -> tuple[Path, Path]:
    from facecmp.samples import photos_by_person

    person = photos_by_person("val")["ben_afflek"]
    return person[0], person[1]


def run_level(url: str, body: dict, concurrency: int, count: int) -> dict[str, float]:
    local = threading.local()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def one(_: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        start = time.perf_counter()
        response = session.post(f"{url}/compare", json=body, headers={"x-api-key": KEY}, timeout=600)
        elapsed = time.perf_counter() - start
        with lock:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency, "ok": len(ordered), "statuses": statuses,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else float("nan"),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan"),
        "compares_per_s": len(ordered) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (its API key in FACECMP_BENCH_KEY)")
    parser.add_argument("--mode", choices=("accurate", "fast"), default="accurate")
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--workers", type=int, default=2, help="FACECMP_MAX_CONCURRENCY of the started server")
    parser.add_argument("--photos", nargs=2, type=Path, help="two photos (default: 5-celebrity samples)")
    args = parser.parse_args()

    probe, reference = args.photos or default_photos()
    body = {"face_base_64": typical_photo(probe), "ref_face_base_64": typical_photo(reference),
            "search_mode": args.mode.upper()}
    levels = [int(level) for level in args.levels.split(",")]

    def bench(url: str) -> None:
        run_level(url, body, 1, 3)  # warm-up
        print(f"POST /compare, two 640x480 JPEG photos, mode {args.mode}, {args.requests} requests per level")
        print(f"{'concurrency':>11} {'ok':>4} {'p50 ms':>8} {'p95 ms':>8} {'compares/s':>11}  statuses")
        for level in levels:
            row = run_level(url, body, level, args.requests)
            print(f"{row['concurrency']:>11} {row['ok']:>4} {row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f} "
                  f"{row['compares_per_s']:>11.2f}  {row['statuses']}", flush=True)

    if args.url:
        global KEY
        KEY = os.environ.get("FACECMP_BENCH_KEY", KEY)
        bench(args.url.rstrip("/"))
        return
    env = {"FACECMP_API_KEYS": KEY, "FACECMP_MAX_CONCURRENCY": str(args.workers),
           "FACECMP_MAX_QUEUE": str(max(levels) * 2), "FACECMP_LOG_LEVEL": "warning"}
    with running_server(env) as server:
        print(f"server pid {server.pid}, {os.cpu_count()} CPU cores, {args.workers} inference workers")
        bench(server.url)
        memory = server.memory_kib()
        print(f"server RSS now {memory['VmRSS'] / 1024:.0f} MiB, peak {memory['VmHWM'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
