"""How the embedder's forward pass runs: PyTorch eager, or an OpenVINO-compiled copy of it.

The PyTorch module is the reference (its layer names are the checkpoint's). On a CPU the
default is OpenVINO (``openvino.convert_model`` of that same module, compiled for this
CPU): 2x PyTorch's images/s in float32 at batch 2 on this project's 2-core machine, and
on CPUs with native bfloat16 (AMX / AVX512-BF16) 7x in bfloat16, with embeddings within
1e-3 cosine of float32 (docs/performance.md measures both, and the accuracy guard shows the
LFW decisions and FMR do not move). Choose with ``FACECMP_EMBED_BACKEND`` (``openvino`` |
``torch``) and ``FACECMP_PRECISION`` (``auto`` | ``f32`` | ``bf16``), read by
:class:`facecmp.settings.FacecmpSettings`; ``auto`` takes bfloat16 only where the CPU
computes it natively.

The converted model is cached as OpenVINO IR beside the weights
(``<cache>/openvino/<weights>-<digest>/``), so only the first start pays the conversion.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from facecmp.progress import step
from facecmp.settings import FacecmpSettings

BACKENDS = ("openvino", "torch")
# Part of the IR cache key: bump when what is converted changes (not only the weights).
CONVERSION_VERSION = 1
PRECISIONS = ("auto", "f32", "bf16")


@dataclass(frozen=True)
class ComputeOptions:
    """Which backend runs the embedder, in which precision, on how many threads.

    ``streams``: how many callers (threads) may run the OpenVINO embedder at once, each
    on ``threads`` threads. OpenVINO runs the requests of one stream one after another,
    however many threads call it: a service with several inference workers needs a
    stream per worker (measured: two threads calling a one-stream model each wait for the
    other, 24 ms a batch of 2 instead of 12). The torch backend runs in the calling
    thread and ignores it.
    """

    backend: str = "openvino"
    precision: str = "auto"
    threads: int | None = None      # None: torch.get_num_threads() when the embedder is built
    streams: int = 1

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown embed backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        if self.streams < 1:
            raise ValueError(f"streams must be at least 1, not {self.streams}")
        if self.backend == "torch" and self.precision == "bf16":
            raise ValueError("the torch backend computes in float32; use backend 'openvino' for bf16")

    @classmethod
    def from_settings(cls, settings: FacecmpSettings | None = None, **overrides) -> "ComputeOptions":
        """Backend and precision of ``settings`` (default: the environment's), ``overrides`` on top."""
        settings = settings or FacecmpSettings()
        return cls(**{"backend": settings.embed_backend, "precision": settings.precision, **overrides})

    @classmethod
    def reference(cls) -> "ComputeOptions":
        """PyTorch eager in float32: what the calibrations were fitted with."""
        return cls(backend="torch", precision="f32")

    @classmethod
    def for_device(cls, device: str | torch.device, compute: "ComputeOptions | None" = None,
                   settings: FacecmpSettings | None = None) -> "ComputeOptions":
        """What runs on ``device``, resolved: ``compute`` (default: :meth:`from_settings` of
        ``settings``) on a CPU, the PyTorch reference anywhere else (OpenVINO's CPU plugin is the
        only one used)."""
        if torch.device(device).type != "cpu":
            return cls.reference()
        return (compute or cls.from_settings(settings)).resolved()

    def resolved(self) -> "ComputeOptions":
        """``precision`` "auto" made concrete for this CPU: bf16 where OpenVINO computes it natively."""
        if self.precision != "auto":
            return self
        if self.backend == "torch":
            return replace(self, precision="f32")
        import openvino as ov

        native = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        return replace(self, precision="bf16" if native else "f32")


class OpenVinoModel:
    """A compiled OpenVINO copy of a torch module with one float input; thread-safe ``__call__``
    returning the module's outputs as a tuple of arrays.

    ``build_module`` makes the torch module; it is called only when no converted copy is cached
    (building the embedder and loading its weights, which the compiled copy then does not use,
    left ~90 MiB a weight set in the process: measured with both modes loaded).

    ``input_shape``: the input's shape, -1 where it varies (the batch, or P-Net's height and
    width); ``example_shape``: a concrete one to trace the module with (default: ``input_shape``
    with 1 for each -1). ``precision``: "f32" or "bf16" (see :meth:`ComputeOptions.resolved`);
    ``streams`` requests run at once, each on ``threads`` threads.
    """

    def __init__(self, build_module: Callable[[], torch.nn.Module], *, cache_key: str, input_shape: tuple[int, ...], precision: str,
                 threads: int, cache_root: Path, streams: int = 1, example_shape: tuple[int, ...] | None = None):
        import openvino as ov

        core = ov.Core()
        model_dir = cache_root / "openvino" / f"{cache_key}-c{CONVERSION_VERSION}-ov{ov.get_version().split('-')[0]}"
        xml = model_dir / "model.xml"
        if xml.exists():
            model = core.read_model(xml)
        else:
            example = example_shape or tuple(1 if size == -1 else size for size in input_shape)
            with step(f"compiling {cache_key} for OpenVINO", f"first run only: cached in {model_dir.parent}"), \
                    _tracing_warnings_silenced():
                model = ov.convert_model(build_module(), example_input=torch.zeros(example), input=[list(input_shape)])
            try:
                _save_atomically(ov, model, model_dir)
                # Compile the graph as every later run reads it: the in-memory conversion compiles
                # to other bf16 kernels (embeddings differed by up to 3e-3 from the second run on).
                model = core.read_model(xml)
            except OSError as exc:  # a read-only cache costs the conversion at each start, nothing else
                warnings.warn(f"could not cache the converted model in {model_dir}: {exc}", RuntimeWarning,
                              stacklevel=2)
        # No pinning: OpenVINO pins its inference threads to cores as if the process had the
        # machine to itself, so two processes (eval's workers) pinned theirs to the same core
        # (2 workers x 1 thread, FAST, steady state: 31-32 images/s pinned, 36-39 not).
        self._compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads * streams,
            "NUM_STREAMS": streams, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False})
        self._local = threading.local()  # an infer request serves one thread at a time

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        results = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return tuple(np.array(results[output]) for output in self._compiled.outputs)


@contextmanager
def _tracing_warnings_silenced() -> Iterator[None]:
    """``ov.convert_model`` traces the module with TorchScript, whose warnings do not apply here:

    - TracerWarning "Converting a tensor to a Python float": ``prewhiten``'s floor on the
      deviation, ``1 / sqrt(C * H * W)``, is read from the traced input's shape and recorded as a
      constant. C, H and W are fixed in the IR's input shape (only the batch varies), so that
      constant is the right one for every input it accepts (tests/test_backends_conversion.py
      checks the IR against eager PyTorch on a nearly flat image, where the floor applies, in
      another batch size than the traced one).
    - FutureWarning "`torch.jit.trace` is deprecated": the tracer is OpenVINO's choice of
      frontend; it says nothing about the converted model.
    Any other warning, a TracerWarning of another kind included, is shown as usual.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Converting a tensor to a Python float", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", r"`torch\.jit\.trace(_method)?` is deprecated", FutureWarning)
        yield


def _save_atomically(ov, model, model_dir: Path) -> None:
    """Write IR into a temporary folder and rename it into place: concurrent starts never see half a model."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=".staging-"))
    try:
        ov.save_model(model, staging / "model.xml", compress_to_fp16=False)
        os.replace(staging, model_dir)
    except OSError:
        if not (model_dir / "model.xml").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
