"""Dataset embedding on CPU against facenet-pytorch's batched recipe, in one run.

Workload: ``--photos`` LFW photos (250x250 JPEGs as distributed, spread over the people),
embedded as ``python -m eval run`` and ``training.embed_images`` embed them
(:func:`eval.embeddings.embed_images`: decode, detect, crop, embed, in batches of 32, with its
default worker processes and with ``--workers 1``, i.e. in this process), in FAST and ACCURATE.
The baseline, timed in the same rounds on the same files, is what a user of facenet-pytorch
writes for a dataset: ``MTCNN(image_size=160, margin=14)`` called on 32 PIL images at once, then
``InceptionResnetV1`` on their faces at batch 32 (our converted msceleb-128, prewhitened as it
needs), default torch threads. Rounds alternate the pipelines so that the machine's load falls
on each alike; the load average is printed with each.

Then each stage's CPU time on one thread (this process, FAST and ACCURATE, the same photos) and
its share of the FLOP limit: the stage's network FLOPs (counted per call: P-Net on each pyramid
level, R-Net and O-Net on each candidate, the embedders on each face and mirror) over its CPU
time, against ``torch.mm``'s rate on one thread in the precision it runs in.

    python bench/bench_dataset.py [--photos 256] [--rounds 2]

Needs ``../shared`` (LFW). A command, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import FacenetPytorchRecipe, load_average, matmul_gflops, model_gflop  # noqa: E402
from eval.devdata import LFW, dataset_dir  # noqa: E402
from eval.embeddings import EmbeddingCache, embed_images  # noqa: E402
from facecmp import FaceComparer  # noqa: E402
from facecmp.backends import ComputeOptions  # noqa: E402
from facecmp.detect import FaceDetector  # noqa: E402
from facecmp.mtcnn import load_networks  # noqa: E402
from facecmp.settings import FacecmpSettings  # noqa: E402
from facecmp.weights.inception import build_inception_resnet_v1  # noqa: E402
from facecmp.weights.pixel_scaling import prewhiten  # noqa: E402
from facecmp.weights.registry import get_spec  # noqa: E402

BATCH = 32


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


def rounds(args, paths: list[Path]) -> None:
    recipe = BatchedRecipe()
    comparer = FaceComparer("fast")
    workers = max(2, os.cpu_count() or 1)  # eval's default for a large set (a script gets 1: see default_workers)
    print(f"\n== dataset embedding, {len(paths)} LFW photos (250x250), batches of {BATCH} "
          f"(load {load_average()})")
    runs = [(f"facecmp {mode}, {count} worker{'s' if count > 1 else ''}", mode, count)
            for mode in ("fast", "accurate") for count in (workers, 1)]
    for number in range(1, args.rounds + 1):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        found = recipe.embed_all(paths, timings)
        base = len(paths) / (time.perf_counter() - start)
        split = ", ".join(f"{stage} {1000 * seconds / len(paths):.1f}" for stage, seconds in timings.items())
        print(f" round {number} (load {load_average()})\n  {'facenet-pytorch batched recipe':<34} {base:6.1f} images/s"
              f"   [{found} faces; ms a photo: {split}]", flush=True)
        for label, mode, count in runs:
            start = time.perf_counter()
            result = embed_images(paths, comparer, mode=mode, cache=EmbeddingCache(":memory:"), batch_size=BATCH,
                                  workers=count, progress=False)
            rate = len(paths) / (time.perf_counter() - start)
            print(f"  {label:<34} {rate:6.1f} images/s   x{rate / base:.2f} the recipe   [{int(result.ok.sum())} faces"
                  f"{', worker start included' if count > 1 else ''}; load {load_average()}]", flush=True)


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


def stage_shares(args, paths: list[Path]) -> None:
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
                 (f"embed ({passes * len(config.embedders)} passes a face)", seconds["embed"], embed_flops,
                  compute.precision)]
        total = sum(row[1] for row in rows)
        print(f" {mode}: {1000 * total / len(blobs):.1f} ms a photo ({faces} faces in {len(blobs)} photos; one core "
              f"at this rate: {len(blobs) / total:.1f} photos/s)")
        for label, stage_seconds, flops, precision in rows:
            share = (f"{flops / 1e6 / len(blobs):7.0f} MFLOP a photo, {100 * flops / 1e9 / stage_seconds / rates[precision]:4.0f} %"
                     f" of the {precision} limit" if flops else "")
            print(f"  {label:<38} {1000 * stage_seconds / len(blobs):6.2f} ms  {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every pipeline")
    parser.add_argument("--only", choices=("rounds", "stages"), help="run one section")
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    args = parser.parse_args()
    paths = photos(args.lfw, args.photos)
    if args.only in (None, "rounds"):
        rounds(args, paths)
    if args.only in (None, "stages"):
        stage_shares(args, paths)


if __name__ == "__main__":
    main()
