"""Dataset embedding and a compare on CPU against facenet-pytorch's recipes, in one run.

Dataset: ``--photos`` LFW photos (250x250 JPEGs as distributed, spread over the people),
embedded as ``python -m eval run`` and ``training.embed_images`` embed them
(:func:`eval.embeddings.embed_images`: decode, detect, crop, embed, in batches of 32), in FAST
and ACCURATE, in worker processes (one a core, one thread each: what a large set gets; the pool
started and warmed before it is timed, its start printed apart) and in this process (torch's
threads). The baseline, timed in the same rounds on the same files, is what a user of
facenet-pytorch writes for a dataset: ``MTCNN(image_size=160, margin=14)`` called on 32 PIL
images at once, then ``InceptionResnetV1`` on their faces at batch 32 (our converted
msceleb-128, prewhitened as it needs), default torch threads.

Compare: ``--pairs`` LFW pairs as 640x480 JPEGs, one compare at a time, FAST against
facenet-pytorch's README recipe (one image at a time), p50 of each (bench/bench_pipeline.py
measures more sizes and stages).

Rounds alternate the pipelines so that the machine's load falls on each alike; the load
average is printed with each figure. Then each stage's CPU time on one thread (this process,
FAST and ACCURATE, the same photos) and its share of the FLOP limit: the stage's network FLOPs
(counted per call: P-Net on each pyramid level, R-Net and O-Net on each candidate, the
embedders on each face and mirror) over its CPU time, against ``torch.mm``'s rate on one thread
in the precision it runs in.

Every figure is written to ``--results`` (default bench/results/dataset.json), from which
``python -m training.doc_tables`` writes docs/performance.md's tables.

    python bench/bench_dataset.py [--photos 256] [--rounds 2] [--pairs 10]

Needs ``../shared`` (LFW). A command, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import (SIZES, FacenetPytorchRecipe, jpeg_pairs, lfw_pairs, load_average,  # noqa: E402
                                  matmul_gflops, model_gflop, ours, run_compares, summary)
from eval.devdata import LFW, dataset_dir  # noqa: E402
from eval.embeddings import EmbeddingCache, EmbeddingWorkers, embed_images  # noqa: E402
from facecmp import FaceComparer  # noqa: E402
from facecmp.backends import ComputeOptions  # noqa: E402
from facecmp.detect import FaceDetector  # noqa: E402
from facecmp.embed import FACES_PER_PASS  # noqa: E402
from facecmp.mtcnn import load_networks  # noqa: E402
from facecmp.settings import FacecmpSettings  # noqa: E402
from facecmp.weights.inception import build_inception_resnet_v1  # noqa: E402
from facecmp.weights.pixel_scaling import prewhiten  # noqa: E402
from facecmp.weights.registry import get_spec  # noqa: E402

BATCH = 32
RESULTS = Path(__file__).resolve().parent / "results" / "dataset.json"


class BatchedRecipe(FacenetPytorchRecipe):
    """facenet-pytorch's dataset recipe: the README's models, MTCNN on 32 PIL images at once and
    InceptionResnetV1 at batch 32."""

    def embed_all(self, paths: list[Path], timings: dict[str, float]) -> int:
        """Embeds the faces of ``paths``; returns how many it found."""
        found = 0
        for start in range(0, len(paths), BATCH):
            begin = time.perf_counter()
            images = [self._image.open(io.BytesIO(path.read_bytes())).convert("RGB")
                      for path in paths[start:start + BATCH]]
            decoded = time.perf_counter()
            faces = [face for face in self.mtcnn(images) if face is not None]
            detected = time.perf_counter()
            if faces:
                with torch.no_grad():
                    self.resnet(prewhiten(torch.stack(faces)))
            found += len(faces)
            for stage, seconds in (("decode", decoded - begin), ("detect+crop", detected - decoded),
                                   ("embed", time.perf_counter() - detected)):
                timings[stage] = timings.get(stage, 0.0) + seconds
        return found


def photos(lfw_dir: Path, count: int) -> list[Path]:
    """``count`` LFW photos spread evenly over the sorted list (so over the people)."""
    paths = sorted((lfw_dir / "images").glob("*/*.jpg"))
    return paths[::max(1, len(paths) // count)][:count]


def rounds(args, paths: list[Path], pairs) -> list[dict]:
    """Alternating rounds of every pipeline: per round its dataset images/s, worker start and compare p50."""
    recipe = BatchedRecipe()
    comparer = FaceComparer("fast")
    workers = max(2, os.cpu_count() or 1)  # eval's default for a large set: one a core
    jpegs = jpeg_pairs(pairs, SIZES["640x480"])
    print(f"\n== dataset embedding, {len(paths)} LFW photos (250x250), batches of {BATCH}; "
          f"FAST compare, {len(pairs)} LFW pairs as 640x480 photos (load {load_average()})")
    results = []
    for number in range(1, args.rounds + 1):
        row: dict = {"load": os.getloadavg()[0], "images_per_s": {}, "worker_start_s": {}, "compare_p50_ms": {}}
        timings: dict[str, float] = {}
        start = time.perf_counter()
        found = recipe.embed_all(paths, timings)
        base = row["images_per_s"]["recipe"] = len(paths) / (time.perf_counter() - start)
        split = ", ".join(f"{stage} {1000 * seconds / len(paths):.1f}" for stage, seconds in timings.items())
        print(f" round {number} (load {load_average()})\n  {'facenet-pytorch batched recipe':<36} {base:6.1f} images/s"
              f"   [{found} faces; ms a photo: {split}]", flush=True)
        for mode in ("fast", "accurate"):
            for count in (workers, 1):
                label = f"{mode}, {count} worker processes" if count > 1 else f"{mode}, in this process"
                rate = row["images_per_s"][label] = dataset_rate(comparer, mode, paths, count, row["worker_start_s"])
                start_note = f"; pool start and first {count} batches {row['worker_start_s'][mode]:.1f} s" if count > 1 else ""
                print(f"  facecmp {label:<28} {rate:6.1f} images/s   x{rate / base:.2f} the recipe   "
                      f"[load {load_average()}{start_note}]", flush=True)
        for label, compare in (("recipe", recipe.compare), ("fast", ours(comparer, "fast"))):
            row["compare_p50_ms"][label] = summary(run_compares(compare, jpegs, 1)["total"])[0]
        compares = row["compare_p50_ms"]
        print(f"  FAST compare of two 640x480 photos: {compares['fast']:.0f} ms p50 vs the recipe's "
              f"{compares['recipe']:.0f} ms (x{compares['recipe'] / compares['fast']:.2f}; load {load_average()})",
              flush=True)
        results.append(row)
    return results


def dataset_rate(comparer: FaceComparer, mode: str, paths: list[Path], count: int, start_s: dict) -> float:
    """Images/s of ``embed_images`` on ``paths`` in ``count`` workers (started and warmed first,
    the seconds that took stored in ``start_s[mode]``) or, for 1, in this process."""
    def rate(workers) -> float:
        start = time.perf_counter()
        embed_images(paths, comparer, mode=mode, cache=EmbeddingCache(":memory:"), batch_size=BATCH, workers=workers,
                     progress=False)
        return len(paths) / (time.perf_counter() - start)

    if count == 1:
        return rate(1)
    start = time.perf_counter()
    with EmbeddingWorkers(comparer, mode, count) as pool:
        embed_images(paths[:count * BATCH], comparer, mode=mode, cache=EmbeddingCache(":memory:"), batch_size=BATCH,
                     workers=pool, progress=False)
        start_s[mode] = time.perf_counter() - start
        return rate(pool)


class NetworkCounter:
    """Wraps an MTCNN runner: counts the FLOPs of what it is given and the CPU time it takes."""

    def __init__(self, run, flops_of):
        self.run, self.flops_of, self.flops, self.seconds = run, flops_of, 0.0, 0.0

    def __call__(self, pixels: np.ndarray):
        start = time.process_time()
        out = self.run(pixels)
        self.seconds += time.process_time() - start
        self.flops += self.flops_of(pixels.shape)
        return out


def flop_counter(module: torch.nn.Module):
    """shape (N, 3, H, W) -> FLOPs of ``module`` on it (counted once per H, W)."""
    from torch.utils.flop_counter import FlopCounterMode

    per_image: dict[tuple[int, int], float] = {}

    def flops(shape) -> float:
        if shape[2:] not in per_image:
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                module(torch.zeros(1, *shape[1:]))
            per_image[shape[2:]] = counter.get_total_flops()
        return shape[0] * per_image[shape[2:]]
    return flops


def stage_shares(paths: list[Path]) -> dict:
    """Per mode: each stage's CPU time a photo on one thread, and its share of the FLOP limit."""
    torch.set_num_threads(1)
    settings = FacecmpSettings()
    compute = replace(ComputeOptions.from_settings(settings).resolved(), threads=1)
    rates = {dtype: matmul_gflops(getattr(torch, name), 1024, 20, time.process_time)
             for dtype, name in (("f32", "float32"), ("bf16", "bfloat16"))}
    print(f"\n== stages on one thread, CPU time a photo ({compute.backend} {compute.precision}; torch.mm on one "
          f"thread, per CPU second: f32 {rates['f32']:.0f}, bf16 {rates['bf16']:.0f} GFLOP/s; load {load_average()})")
    detector = FaceDetector(compute=compute, settings=settings)
    comparer = FaceComparer("fast", compute=compute, settings=settings, detector=detector)
    networks = detector._vectorised.networks
    counters = {name: NetworkCounter(networks._runners[name], flop_counter(net))
                for name, net in load_networks().items()}
    networks._runners.update(counters)
    embed_gflop = {name: model_gflop(build_inception_resnet_v1(get_spec(name).model.embedding_size))
                   for name in ("msceleb-128", "casia-webface")}
    blobs = [path.read_bytes() for path in paths]
    shares: dict = {"gflops_per_cpu_s": rates, "precision": compute.precision}
    for mode in ("fast", "accurate"):
        config = comparer._prepare(mode)
        comparer.represent_batch(blobs[:BATCH], mode=mode)  # warm-up
        for counter in counters.values():
            counter.flops = counter.seconds = 0.0
        seconds: dict[str, float] = {}

        def timed(stage, work, *arguments):
            begin = time.process_time()
            out = work(*arguments)
            seconds[stage] = seconds.get(stage, 0.0) + time.process_time() - begin
            return out

        faces = 0
        for start in range(0, len(blobs), BATCH):
            images = timed("decode", lambda: [comparer.load_image(blob) for blob in blobs[start:start + BATCH]])
            found = [(image, f[0]) for image, f in zip(images, timed("detect", detector.detect_batch, images)) if f]
            crops = timed("crop", comparer._crops, config, [i for i, _ in found], [f for _, f in found])
            timed("embed", comparer._embed, config, crops)
            faces += len(found)
        passes = 2 if config.flip else 1
        embed_flops = faces * passes * sum(embed_gflop[e.weights] for e in config.embedders) * 1e9
        network_seconds = sum(counter.seconds for counter in counters.values())
        rows = [(f"detect: {name}", counter.seconds, counter.flops, "f32") for name, counter in counters.items()]
        rows += [("detect: the rest (resampling, NMS)", seconds["detect"] - network_seconds, 0.0, None),
                 ("decode", seconds["decode"], 0.0, None), ("crop (align)", seconds["crop"], 0.0, None),
                 ("embed", seconds["embed"], embed_flops,
                  compute.precision)]
        total = sum(row[1] for row in rows)
        print(f" {mode}: {1000 * total / len(blobs):.1f} ms a photo ({faces} faces in {len(blobs)} photos, "
              f"{passes * len(config.embedders)} embedder passes a face; one core at this rate: "
              f"{len(blobs) / total:.1f} photos/s)")
        shares[mode] = {"ms_a_photo": 1000 * total / len(blobs), "passes_a_face": passes * len(config.embedders),
                        "stages": []}
        for label, stage_seconds, flops, precision in rows:
            share = flops / 1e9 / stage_seconds / rates[precision] if flops else None
            shares[mode]["stages"].append({"stage": label, "ms_a_photo": 1000 * stage_seconds / len(blobs),
                                           "mflop_a_photo": flops / 1e6 / len(blobs), "limit_share": share,
                                           "precision": precision})
            note = (f"{flops / 1e6 / len(blobs):7.0f} MFLOP a photo, {100 * share:4.0f} % of the {precision} limit"
                    if flops else "")
            print(f"  {label:<38} {1000 * stage_seconds / len(blobs):6.2f} ms  {note}")
    shares["pass_shape"] = pass_shape_cost(comparer._embedders["msceleb-128"])
    return shares


def pass_shape_cost(embedder, largest: int = 16, repeats: int = 8) -> dict:
    """FAST's embedder on one thread, images per CPU second, in passes of FACES_PER_PASS faces
    (every path's one shape: part 1 of issue 25) and of ``largest`` (what a dataset alone could use)."""
    crops = np.random.default_rng(0).integers(0, 256, (largest, 160, 160, 3), dtype=np.uint8).transpose(0, 3, 1, 2)
    rates = {}
    for batch in (FACES_PER_PASS, largest):
        embedder._compiled(crops[:batch])
        start = time.process_time()
        for _ in range(repeats * largest // batch):
            embedder._compiled(crops[:batch])
        rates[batch] = repeats * largest / (time.process_time() - start)
    print(f" FAST's embedder, one thread: {rates[FACES_PER_PASS]:.1f} images per CPU second in passes of "
          f"{FACES_PER_PASS} faces (the pass shape), {rates[largest]:.1f} in passes of {largest}")
    return {"faces_per_pass": FACES_PER_PASS, "largest": largest, "images_per_cpu_s": rates}


def machine() -> dict:
    """The CPU model, its cores and whether it computes bfloat16 natively."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "")
    return {"cpu": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=10, help="LFW pairs for the compare (half genuine, half impostor)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every pipeline")
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON file the figures are written to")
    args = parser.parse_args()
    paths = photos(args.lfw, args.photos)
    results = {"command": " ".join(["python bench/bench_dataset.py", *sys.argv[1:]]),
               "date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(), "photos": len(paths),
               "pairs": args.pairs, "load_before": os.getloadavg()[0]}
    results["rounds"] = rounds(args, paths, lfw_pairs(args.lfw, args.pairs))
    results["stages"] = stage_shares(paths)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
