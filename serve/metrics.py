"""The service's Prometheus metrics (``prometheus-client``), served by ``GET /metrics``.

:class:`ServiceMetrics` holds one app's metrics in a registry of its own (not the library's
global one: each app counts its own requests, and tests build many apps in one process):

- per request, fed by :class:`~serve.middleware.AccessLogMiddleware` once the answer is sent:
  a counter by method, route and status, and a latency histogram by method and route;
- per face-pair compare, the pipeline's own stage timings (``CompareResult.timings_ms``) as a
  histogram by mode and stage;
- read from the engine at each scrape (:class:`EngineCollector`): the admission gate's
  running and waiting requests, its limits and its 503 refusals; whether the models are loaded;
  the loaded modes' pipeline, weights and calibration ids and the compute (info metrics);
- prometheus-client's process, platform and garbage-collector collectors (RSS, CPU, ...).

No label holds anything a client sent: routes are matched path templates (any unknown path is
``<unmatched>``), methods outside :data:`METHODS` are ``OTHER``, and statuses, modes, stages
and ids come from the service and the library. The values are this process's only
(docs/service.md "Metrics": several workers, Ray Serve replicas).
"""
from __future__ import annotations

from typing import Iterator, Mapping

from prometheus_client import (
    GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from facecmp import __version__

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The pipeline's sum of its own stages: left out, so that summing the stages does not count twice.
PIPELINE_TOTAL = "total"
#: A compare takes ~50 ms to seconds (queued behind others); a scrape or a probe under 5 ms.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Stages take from well under a millisecond (score) to ~100 ms (ACCURATE's embed on 2 cores).
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """One app's registry and the metrics its requests feed."""

    def __init__(self, engine):
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.registry.register(EngineCollector(engine))
        self.requests = Counter(
            "facecmp_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "facecmp_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.stages = Histogram(
            "facecmp_stage_duration_seconds",
            "The pipeline's stages in face-pair compares (POST /compare with face_base_64), by mode and stage.",
            ["mode", "stage"], buckets=STAGE_BUCKETS, registry=self.registry)

    def observe_request(self, method: str | None, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_stages(self, mode: str, timings_ms: Mapping[str, float]) -> None:
        for stage, milliseconds in timings_ms.items():
            if stage != PIPELINE_TOTAL:
                self.stages.labels(mode, stage).observe(milliseconds / 1000.0)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition in the format ``accept`` asks for (OpenMetrics or Prometheus text), and
        its content type. Call it on the event loop: the gate's counts are read unlocked."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class EngineCollector(Collector):
    """The engine's state, read at each scrape: nothing to keep in step with it."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        gate = self.engine.gate
        # Requests hold a worker slot as soon as one is free, so only the excess waits.
        running = min(gate.admitted, gate.max_concurrency)
        yield GaugeMetricFamily("facecmp_inference_in_flight", "Requests running on an inference worker.",
                                value=running)
        yield GaugeMetricFamily("facecmp_inference_queued", "Admitted requests waiting for an inference worker.",
                                value=gate.admitted - running)
        yield GaugeMetricFamily("facecmp_inference_max_concurrency",
                                "Inference workers (FACECMP_MAX_CONCURRENCY).", value=gate.max_concurrency)
        yield GaugeMetricFamily("facecmp_inference_max_queue", "Requests that may wait for a worker "
                                "(FACECMP_MAX_QUEUE).", value=gate.capacity - gate.max_concurrency)
        yield CounterMetricFamily("facecmp_inference_rejected", "Requests refused with 503 ERR_SERVICE_OVERLOADED "
                                  "(every worker busy, the queue full).", value=gate.rejected)
        yield GaugeMetricFamily("facecmp_models_ready", "1 once the models are loaded (GET /ready answers 200), "
                                "else 0.", value=int(self.engine.ready))
        yield InfoMetricFamily("facecmp_build", "The facecmp version.", value={"version": __version__})
        yield from _loaded_info(self.engine.versions if self.engine.ready else {})


def _loaded_info(versions: Mapping) -> Iterator[Metric]:
    """Info metrics of what GET /version reports: the compute and, per mode, its ids."""
    if not versions:
        return
    compute = versions.get("compute") or {}
    yield InfoMetricFamily("facecmp_compute", "How the models run (as GET /version reports).", value={
        "backend": str(compute.get("backend")), "precision": str(compute.get("precision")),
        "threads": str(compute.get("threads")), "streams": str(compute.get("streams"))})
    modes = InfoMetricFamily("facecmp_mode", "Each mode's pipeline id, weights (name=digest prefix) and "
                             "calibration id, and whether it is the default.", labels=["mode"])
    for name, mode in sorted(versions.get("modes", {}).items()):
        weights = ",".join(f"{weights}={digest}" for weights, digest in sorted(mode.get("weights", {}).items()))
        modes.add_metric([name], {"pipeline_id": str(mode.get("pipeline_id")), "weights": weights,
                                  "calibration": str(mode.get("calibration")),
                                  "default": str(name == versions.get("mode")).lower()})
    yield modes
