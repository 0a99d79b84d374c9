"""Benchmark the compare pipeline on CPU against the plain facenet-pytorch recipe, in one run.

Workload: ``--pairs`` LFW View 2 pairs (half genuine, half impostor, from ``pairs.txt``), each
photo as a 640x480 JPEG and upscaled to a 1280x960 JPEG (a phone photo); one compare at a
time, JPEG bytes in, decision out (decode included). Prints, per stage and end to end, the
median and p95 latency, compares/s and the ratio to the baseline measured in this run; the
embedder's throughput at batch sizes 1..16 for each backend (PyTorch float32, OpenVINO
float32 and, where native, bfloat16) as a share of the FLOP limit (its FLOP count times this
CPU's measured matrix-multiply rate in that precision, and in float32); and, unless
``--no-service``, the REST service one request at a time and at concurrency 4.

    python bench/bench_pipeline.py [--mode fast] [--pairs 20] [--no-service]
    python bench/bench_pipeline.py --accuracy-guard 600 [--mode accurate]   # each lever vs the reference

Baseline (what a user of facenet-pytorch writes from its README): ``MTCNN(image_size=160,
margin=14)`` called on each PIL image (detects, crops and standardises), then
``InceptionResnetV1(...).eval()`` on each face, one image at a time, default torch threads;
the model is our converted msceleb-128 (hub weights cannot be downloaded here) and the face
is prewhitened as that model needs.

A command, not a test: the numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_service import KEY, run_level, typical_photo  # noqa: E402
from facecmp import FaceComparer  # noqa: E402
from eval.datasets import load_lfw  # noqa: E402
from eval.devdata import LFW, dataset_dir  # noqa: E402
from facecmp.backends import ComputeOptions  # noqa: E402
from facecmp.contract import DEFAULT_SCORE_CUTOFF  # noqa: E402
from facecmp.detect import FaceDetector  # noqa: E402
from facecmp.embed import Embedder  # noqa: E402
from facecmp.modes import MODES  # noqa: E402
from facecmp.weights.inception import build_inception_resnet_v1  # noqa: E402
from facecmp.weights.pixel_scaling import prewhiten  # noqa: E402
from facecmp.weights.store import load_state_dict  # noqa: E402
from serve.testing import running_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = {"640x480": (640, 480), "1280x960": (1280, 960)}
BATCH_SIZES = (1, 2, 4, 8, 16)


# -- workload --------------------------------------------------------------------------------

def lfw_pairs(lfw_dir: Path, count: int) -> list[tuple[Path, Path, bool]]:
    """``count`` pairs of fold 1 of pairs.txt: the first count/2 genuine and count/2 impostor."""
    data = load_lfw(lfw_dir, max_pairs=count)
    pairs = data.pairs
    genuine = np.flatnonzero(pairs.same)[: (count + 1) // 2]
    impostor = np.flatnonzero(~pairs.same)[: count // 2]
    return [(data.images[pairs.a[i]], data.images[pairs.b[i]], bool(pairs.same[i]))
            for i in np.concatenate([genuine, impostor])]


def jpeg_pairs(pairs, size: tuple[int, int]) -> list[tuple[bytes, bytes]]:
    return [(base64.b64decode(typical_photo(a, size)), base64.b64decode(typical_photo(b, size)))
            for a, b, _ in pairs]


# -- measurement helpers ---------------------------------------------------------------------

def summary(values_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(values_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5, clock=time.perf_counter) -> float:
    """Measured ``torch.mm`` rate (GFLOP/s) in ``dtype`` at the current thread setting, per
    second of ``clock`` (``time.process_time``: per CPU second, what a loaded machine leaves alone)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        torch.mm(a, b)
        best = min(best, clock() - start)
    return 2 * n**3 / best / 1e9


def model_gflop(model: torch.nn.Module) -> float:
    """FLOPs (multiply and add counted apart) of one 160x160 input."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, 160, 160))
    return counter.get_total_flops() / 1e9


# -- the baseline: facenet-pytorch's README recipe ---------------------------------------------

class FacenetPytorchRecipe:
    """``MTCNN(image_size=160, margin=14)`` + ``InceptionResnetV1().eval()``, one image at a time."""

    def __init__(self):
        from facenet_pytorch import MTCNN
        from PIL import Image

        self._image = Image
        self.mtcnn = MTCNN(image_size=160, margin=14)
        self.resnet = build_inception_resnet_v1(128)
        self.resnet.load_state_dict(load_state_dict("msceleb-128"))
        self.resnet.eval()

    def embed(self, jpeg: bytes, timings: dict[str, float]) -> torch.Tensor | None:
        start = time.perf_counter()
        image = self._image.open(io.BytesIO(jpeg)).convert("RGB")
        mid = time.perf_counter()
        face = self.mtcnn(image)
        end = time.perf_counter()
        timings["decode"] = timings.get("decode", 0.0) + (mid - start) * 1000
        timings["detect+crop"] = timings.get("detect+crop", 0.0) + (end - mid) * 1000
        if face is None:
            return None
        with torch.no_grad():
            embedding = self.resnet(prewhiten(face.unsqueeze(0)))
        timings["embed"] = timings.get("embed", 0.0) + (time.perf_counter() - end) * 1000
        return embedding[0]

    def compare(self, jpeg_a: bytes, jpeg_b: bytes) -> dict[str, float]:
        timings: dict[str, float] = {}
        a, b = self.embed(jpeg_a, timings), self.embed(jpeg_b, timings)
        if a is not None and b is not None:
            start = time.perf_counter()
            float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            timings["score"] = (time.perf_counter() - start) * 1000
        timings["total"] = sum(timings.values())
        return timings


def ours(comparer: FaceComparer, mode: str):
    def compare(jpeg_a: bytes, jpeg_b: bytes) -> dict[str, float]:
        start = time.perf_counter()
        result = comparer.compare(jpeg_a, jpeg_b, mode=mode)
        timings = dict(result.timings_ms)
        timings["total"] = (time.perf_counter() - start) * 1000  # end to end, as the caller sees it
        return timings
    return compare


def run_compares(compare, jpegs, repeats: int) -> dict[str, list[float]]:
    compare(*jpegs[0])  # warm-up
    stages: dict[str, list[float]] = {}
    for _ in range(repeats):
        for jpeg_a, jpeg_b in jpegs:
            for stage, value in compare(jpeg_a, jpeg_b).items():
                stages.setdefault(stage, []).append(value)
    return stages


def print_stages(label: str, stages: dict[str, list[float]], baseline_total: list[float] | None) -> None:
    cells = []
    for stage, values in stages.items():
        p50, p95 = summary(values)
        cells.append(f"{stage} {p50:.0f}/{p95:.0f}")
    p50, _ = summary(stages["total"])
    ratio = f"  x{summary(baseline_total)[0] / p50:.2f} vs baseline" if baseline_total else ""
    print(f"  {label:<28} {1000 / p50:6.2f} compares/s{ratio}   [ms p50/p95] " + "  ".join(cells), flush=True)


# -- sections --------------------------------------------------------------------------------

def bench_single(args, pairs) -> None:
    print(f"\n== single compares, one at a time ({len(pairs)} LFW pairs x {args.repeats}, load {load_average()})")
    baseline = FacenetPytorchRecipe()
    comparer = FaceComparer(args.mode)
    for size_name, size in SIZES.items():
        jpegs = jpeg_pairs(pairs, size)
        base = run_compares(baseline.compare, jpegs, args.repeats)
        mine = run_compares(ours(comparer, args.mode), jpegs, args.repeats)
        print(f" {size_name} photos (load {load_average()})")
        print_stages("facenet-pytorch recipe", base, None)
        print_stages(f"facecmp {args.mode}", mine, base["total"])
    print(f" peak RSS of this process (both pipelines): {peak_rss_mib():.0f} MiB")


def bench_embedder(args) -> None:
    print(f"\n== embedder throughput, msceleb-128, 160x160 crops (load {load_average()})")
    backends = [ComputeOptions.reference(), ComputeOptions("openvino", "f32"), ComputeOptions("openvino").resolved()]
    embedders = {compute: Embedder("msceleb-128", compute=compute)
                 for compute in dict.fromkeys(backends)}  # "auto" may resolve to f32: measured once
    gflop = model_gflop(embedders[ComputeOptions.reference()].model)
    rates = {"f32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    limits = {precision: rate / gflop for precision, rate in rates.items()}
    print(f" model {gflop:.2f} GFLOP/image; torch.mm ({torch.get_num_threads()} threads): "
          + ", ".join(f"{p} {rates[p]:.0f} GFLOP/s -> FLOP limit {limits[p]:.1f} images/s" for p in rates))
    crops = np.random.default_rng(0).integers(0, 256, (max(BATCH_SIZES), 160, 160, 3), dtype=np.uint8)
    for compute, embedder in embedders.items():
        print(f" {compute.backend} {compute.precision}:")
        for batch in BATCH_SIZES:
            embedder.embed(crops[:batch])
            runs = max(2, 64 // batch)
            start = time.perf_counter()
            for _ in range(runs):
                embedder.embed(crops[:batch])
            per_s = runs * batch / (time.perf_counter() - start)
            print(f"  batch {batch:>2}: {per_s:6.1f} images/s  {100 * per_s / limits[compute.precision]:5.1f}% of the "
                  f"{compute.precision} FLOP limit  ({100 * per_s / limits['f32']:5.1f}% of the f32 one)", flush=True)


def bench_service(args, pairs) -> None:
    jpegs = jpeg_pairs(pairs, SIZES["640x480"])
    bodies = [{"face_base_64": base64.b64encode(a).decode(), "ref_face_base_64": base64.b64encode(b).decode(),
               "search_mode": args.mode.upper()} for a, b in jpegs]
    body = bodies[0]  # run_level posts one body; the photos are 640x480 like every pair's
    print(f"\n== service, POST /compare, 640x480 photos, mode {args.mode}, {args.requests} requests per level")
    configs = [
        ("one at a time: 1 worker x 2 threads",
         {"FACECMP_MAX_CONCURRENCY": "1", "FACECMP_THREADS_PER_INFERENCE": str(os.cpu_count())}, [1]),
        ("4 workers x 1 thread (default)", {"FACECMP_MAX_CONCURRENCY": "4", "FACECMP_THREADS_PER_INFERENCE": "1"}, [1, 4]),
    ]
    reference = None  # the one-at-a-time server's compares/s
    for label, env, levels in configs:
        env = {"FACECMP_API_KEYS": KEY, "FACECMP_MAX_QUEUE": "16", "FACECMP_LOG_LEVEL": "warning", **env}
        with running_server(env) as server:
            run_level(server.url, body, 1, 2)  # warm-up
            alone = None  # this server's compares/s at concurrency 1
            for level in levels:
                row = run_level(server.url, body, level, args.requests)
                reference = reference or row["compares_per_s"]
                alone = alone or row["compares_per_s"]
                print(f"  {label:<38} concurrency {level}: {row['compares_per_s']:5.2f} compares/s "
                      f"(x{row['compares_per_s'] / reference:.2f} the one-at-a-time server, "
                      f"x{row['compares_per_s'] / alone:.2f} this one at concurrency 1)  p50 {row['p50_ms']:.0f} ms  "
                      f"p95 {row['p95_ms']:.0f} ms  {row['statuses']}  load {load_average()}", flush=True)
            memory = server.memory_kib()
            print(f"  {'':<38} server RSS {memory['VmRSS'] / 1024:.0f} MiB, peak {memory['VmHWM'] / 1024:.0f} MiB "
                  f"(both weight sets loaded)")


def guard_images(lfw_dir: Path, pair_count: int) -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    """The distinct images of the first ``pair_count`` pairs.txt pairs, their identities, and
    the pairs (P, 2) as indices into them with same-person labels (P,)."""
    data = load_lfw(lfw_dir, max_pairs=pair_count)
    used = np.unique(np.concatenate([data.pairs.a, data.pairs.b]))
    index = {int(image): i for i, image in enumerate(used)}
    pairs = np.array([[index[int(a)], index[int(b)]] for a, b in zip(data.pairs.a, data.pairs.b)])
    return [data.images[i] for i in used], data.identities[used], pairs, data.pairs.same


def wilson(successes: int, total: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    from scipy.stats import binomtest

    interval = binomtest(successes, total).proportion_ci(confidence_level=0.95, method="wilson")
    return interval.low, interval.high


def guard_row(comparer: FaceComparer, photos: list[bytes], identities: np.ndarray, pairs: np.ndarray,
              same: np.ndarray) -> dict:
    """One pipeline on the guard's photos: its embeddings, faces found, decisions at 0.7 on
    ``pairs``, how many are right, and the FMR at 0.7 over every different-person pair with
    its 95 % Wilson interval (pairs with a photo without a face left out)."""
    reps = []
    for chunk in range(0, len(photos), 32):
        reps += comparer.represent_batch(photos[chunk:chunk + 32])
    found = np.array([not isinstance(r, Exception) for r in reps])
    emb = np.stack([r.embedding if ok else np.zeros_like(reps[int(np.argmax(found))].embedding)
                    for r, ok in zip(reps, found)])
    matched = comparer.score_embeddings(emb, emb) >= DEFAULT_SCORE_CUTOFF
    usable = found[:, None] & found[None, :]
    impostor = np.triu(identities[:, None] != identities[None, :], 1) & usable
    decisions = matched[pairs[:, 0], pairs[:, 1]] & usable[pairs[:, 0], pairs[:, 1]]
    false_matches, impostors = int((matched & impostor).sum()), int(impostor.sum())
    return dict(emb=emb, found=found, decisions=decisions, correct=int((decisions == same).sum()),
                fmr=false_matches / impostors, fmr_interval=wilson(false_matches, impostors))


def accuracy_guard(args) -> int:
    """Optimised pipeline vs the reference (PyTorch float32 eager, facenet-pytorch's NCHW MTCNN at one 640 px
    detection size), each lever alone and together, on the same 640x480 photos of LFW View 2
    pairs: decisions at 0.7 on pairs.txt's pairs, and the FMR at 0.7 over every
    different-person pair of their images. Fails (exit 1) when accuracy or FMR leaves the
    reference's 95 % Wilson interval."""
    paths, identities, pairs, same = guard_images(args.lfw, args.accuracy_guard)
    photos = [base64.b64decode(typical_photo(p, SIZES["640x480"])) for p in paths]
    impostor = np.triu(identities[:, None] != identities[None, :], 1)
    print(f"\n== accuracy guard, mode {args.mode}: {len(pairs)} pairs.txt pairs, {len(paths)} 640x480 photos, "
          f"{int(impostor.sum())} different-person pairs (load {load_average()})")
    reference_detector = dict(passes=[(640, 20)], channels_last=False, cascade="facenet-pytorch")
    pipelines = {  # each lever alone, then all together
        "reference": FaceComparer(args.mode, compute=ComputeOptions.reference(),
                                  detector=FaceDetector(**reference_detector)),
        "detection only": FaceComparer(args.mode, compute=ComputeOptions.reference()),
        "backend only": FaceComparer(args.mode, detector=FaceDetector(**reference_detector)),
        "optimised": FaceComparer(args.mode),
    }
    results, failures = {}, 0
    for label, comparer in pipelines.items():
        start = time.perf_counter()
        row = results[label] = guard_row(comparer, photos, identities, pairs, same)
        low, high = row["fmr_interval"]
        line = (f"  {label:<15} {comparer.versions()['compute']}\n  {'':<15} faces {row['found'].sum()}/{len(photos)}, "
                f"pairs right at 0.7 {row['correct']}/{len(pairs)}, FMR at 0.7 {row['fmr']:.2e} "
                f"[{low:.2e}, {high:.2e}], {time.perf_counter() - start:.0f} s")
        if label != "reference":
            ref = results["reference"]
            change = 1 - np.sum(ref["emb"] * row["emb"], axis=1)
            acc_low, acc_high = wilson(ref["correct"], len(pairs))
            fmr_low, fmr_high = ref["fmr_interval"]
            ok = acc_low <= row["correct"] / len(pairs) <= acc_high and fmr_low <= row["fmr"] <= fmr_high
            failures += not ok
            line += (f"\n  {'':<15} vs reference: 1 - cos median {np.median(change):.1e}, 99th pct "
                     f"{np.percentile(change, 99):.1e}; decisions changed {int((ref['decisions'] != row['decisions']).sum())}; "
                     f"accuracy and FMR within the reference's 95 % intervals: {'OK' if ok else 'FAIL'}")
        print(line, flush=True)
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=tuple(MODES), default="fast")
    parser.add_argument("--pairs", type=int, default=20, help="LFW pairs (half genuine, half impostor)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the pairs")
    parser.add_argument("--requests", type=int, default=24, help="service requests per concurrency level")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, = cores)")
    parser.add_argument("--no-service", action="store_true")
    parser.add_argument("--only", choices=("single", "embedder", "service"), help="run one section")
    parser.add_argument("--accuracy-guard", type=int, metavar="N", help="only the accuracy guard, on N pairs")
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"{os.cpu_count()} CPU cores; torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, "
          f"{torch.get_num_interop_threads()} inter-op threads, mkldnn {torch.backends.mkldnn.is_available()}; "
          f"load average {load_average()}")
    if args.accuracy_guard:
        sys.exit(1 if accuracy_guard(args) else 0)
    pairs = lfw_pairs(args.lfw, args.pairs)
    if args.only in (None, "single"):
        bench_single(args, pairs)
    if args.only in (None, "embedder"):
        bench_embedder(args)
    if args.only == "service" or (args.only is None and not args.no_service):
        bench_service(args, pairs)


if __name__ == "__main__":
    main()
