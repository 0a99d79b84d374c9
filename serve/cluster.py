"""The service on a Ray cluster (Ray Serve): the same FastAPI app, in N replicas.

:class:`FaceCompare` is :func:`serve.app.create_app` behind ``@serve.ingress``: each replica
builds the app (``__serve_build_asgi_app__``) and the app's own start-up loads that replica's
:class:`facecmp.FaceComparer`. With ``wait_for_models`` set, a replica's start-up ends only once
its models are loaded, so Ray routes a request to it only then. Ray's proxy on each node answers
HTTP on ``host:port`` and spreads requests over the replicas; the service keeps no state, so any
replica can answer any request. Replica count and autoscaling come from :class:`Settings`
(``FACECMP_RAY_*``).

Two ways to start it: ``python -m serve cluster [--address HOST:6379] [--replicas N]`` (:func:`main`,
runs until interrupted) and Ray's own ``serve run serve/ray_serve.yaml`` (:func:`build_app`).
"""
from __future__ import annotations

import logging
import os
import signal

from pydantic import SecretStr
from ray import serve as ray_serve
from ray.serve import Application

from serve.app import create_app
from serve.auth import load_key_ring
from serve.ray_proxy import CALLBACK_IMPORT_PATH
from serve.settings import Settings, get_settings

log = logging.getLogger("facecmp.serve")

APP_NAME = "facecmp"
#: Replicas get the library's own settings (FACECMP_PRECISION, FACECMP_LIVENESS_*, ...) from the
#: deploying process; the keys travel in the Settings object, never as visible environment.
SECRET_ENV = frozenset({"FACECMP_API_KEYS"})
#: The Serve controller's environment, inherited by the proxies it starts: they answer a request
#: whose replica died with the service's JSON 503 (serve/ray_proxy.py).
CONTROLLER_OPTIONS = {"runtime_env": {"env_vars": {"RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": CALLBACK_IMPORT_PATH}}}


@ray_serve.deployment
@ray_serve.ingress()
class FaceCompare:
    """One replica: the service's FastAPI app with its own FaceComparer."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def __serve_build_asgi_app__(self):
        return create_app(self._settings)


def replica_settings(settings: Settings) -> Settings:
    """``settings`` as every replica needs them: keys resolved once here, so that replicas on
    every node accept the same keys (each would otherwise read or generate its own), and
    start-up waiting for the models."""
    update: dict = {"wait_for_models": True}
    ring = load_key_ring(settings)
    if not ring.open:
        update |= {"api_keys": tuple(SecretStr(key.decode("utf-8")) for key in ring.keys), "api_keys_file": None}
    return settings.model_copy(update=update)


def deployment_options(settings: Settings) -> dict:
    """Ray Serve options of :class:`FaceCompare` for ``settings``."""
    env = {name: value for name, value in os.environ.items()
           if name.startswith("FACECMP_") and name not in SECRET_ENV}
    options: dict = {
        "ray_actor_options": {"num_cpus": settings.ray_replica_cpus, "runtime_env": {"env_vars": env}},
        # Above what a replica's gate admits: overload is answered by the service's own JSON 503
        # + Retry-After, not queued at Ray's proxy.
        "max_ongoing_requests": 2 * (settings.max_concurrency + settings.max_queue),
    }
    if settings.ray_autoscaling_max is None:
        options["num_replicas"] = settings.ray_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.ray_autoscaling_min, "max_replicas": settings.ray_autoscaling_max,
            "target_ongoing_requests": settings.ray_target_ongoing_requests or settings.max_concurrency}
    return options


def application(settings: Settings) -> Application:
    """The Ray Serve application of ``settings`` (keys resolved here, see :func:`replica_settings`)."""
    return FaceCompare.options(**deployment_options(settings)).bind(replica_settings(settings))


def build_app(args: dict) -> Application:
    """Ray's application builder (``serve run serve/ray_serve.yaml``): the environment's
    settings, ``args`` (the config's ``args:``, Settings field names) overriding."""
    return application(Settings(**args) if args else get_settings())


def run(settings: Settings) -> None:
    """Deploy on ``settings.ray_address`` (or a Ray instance started here), wait until every replica
    is ready, serve until SIGINT/SIGTERM, then remove the application (also when it failed)."""
    import ray

    from serve.runner import configure_logging

    configure_logging(settings.log_level)
    ray.init(address=settings.ray_address, log_to_driver=False)
    # After ray.init, which installs a SIGTERM handler that aborts: SIGTERM stops it as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        ray_serve.start(http_options={"host": settings.host, "port": settings.port},
                        controller_options=CONTROLLER_OPTIONS)
        try:
            ray_serve.run(application(settings), name=APP_NAME, route_prefix="/")
            replicas = (f"autoscaling {settings.ray_autoscaling_min}-{settings.ray_autoscaling_max}"
                        if settings.ray_autoscaling_max else settings.ray_replicas)
            log.info("facecmp serve: Ray Serve application %r ready (%s replicas) at http://%s:%s",
                     APP_NAME, replicas, settings.host, settings.port)
            while True:
                signal.pause()
        except KeyboardInterrupt:
            log.info("facecmp serve: stopping; removing the Ray Serve application %r", APP_NAME)
        finally:
            ray_serve.delete(APP_NAME)
    finally:
        if settings.ray_address is None:  # the Ray instance is this process's
            ray_serve.shutdown()
        ray.shutdown()


def main(settings: Settings | None = None, **overrides) -> None:
    """``python -m serve cluster``: the environment's settings, non-None ``overrides`` replacing them."""
    settings = settings or get_settings()
    overrides = {key: value for key, value in overrides.items() if value is not None}
    run(settings.model_copy(update=overrides) if overrides else settings)
