"""Beyond one machine, on a real Ray cluster that this module starts (``ray start --head --block``)
and stops itself: the service on Ray Serve (``python -m serve cluster``, two replicas, one killed
under load) and the eval suite's Ray Data path pointed at that cluster (``--ray-address``).

Every test of the suite that needs Ray is here, on the one ``ray_cluster`` (slow tier); the
tests above it need no cluster (quick tier)."""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

pytest.importorskip("ray.serve", reason="ray[serve] is not installed (pip install 'ray[serve]')")
# The first cluster test also starts the cluster and deploys: minutes on a busy 2-core machine.
pytestmark = pytest.mark.timeout(1200)

from fastapi.testclient import TestClient  # noqa: E402

from eval.embeddings import EmbeddingCache, embed_images  # noqa: E402
from facecmp.errors import FacecmpError  # noqa: E402
from serve.app import create_app  # noqa: E402
from serve.auth import generated_key_path  # noqa: E402
from serve.cluster import build_app, deployment_options, replica_settings  # noqa: E402
from serve.ray_proxy import CALLBACK_IMPORT_PATH, AnswerLostRequests  # noqa: E402
from serve.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY = "ray-test-key"
REPLICA_PREFIX = "SERVE_REPLICA::facecmp#FaceCompare#"
# The cluster, `serve cluster`, the eval run and the helper scripts share a token of their own
# (Ray's token authentication), whatever ~/.ray/auth_token holds. Ray Serve restarts a proxy that
# does not answer its checks in 5-10 s; a busy 2-core machine loading two replicas can take longer.
ENV = {**os.environ, "FACECMP_MODE": "fast", "RAY_USAGE_STATS_ENABLED": "0",
       "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
       "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60",
       "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}  # the head stops without 30 s of draining


# -- without a cluster: settings to Ray options, keys, the config file, the proxy's 503 -----------

def test_settings_choose_fixed_replicas_or_autoscaling(monkeypatch):
    monkeypatch.setenv("FACECMP_PRECISION", "f32")
    monkeypatch.setenv("FACECMP_API_KEYS", "secret-key")
    settings = Settings(ray_replicas=3, ray_replica_cpus=2)
    fixed = deployment_options(settings)
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"]["num_cpus"] == 2
    env = fixed["ray_actor_options"]["runtime_env"]["env_vars"]
    assert env["FACECMP_PRECISION"] == "f32" and "FACECMP_API_KEYS" not in env  # keys travel in Settings
    assert fixed["max_ongoing_requests"] == 2 * (settings.max_concurrency + settings.max_queue)
    scaled = deployment_options(Settings(ray_autoscaling_min=1, ray_autoscaling_max=5))
    assert "num_replicas" not in scaled
    assert scaled["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 5,
                                            "target_ongoing_requests": settings.max_concurrency}


def test_replicas_get_the_keys_resolved_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    keys = tmp_path / "keys.txt"
    keys.write_text("# operators\nfile-key-1\nfile-key-2\n")
    settings = replica_settings(Settings(api_keys="env-key", api_keys_file=keys))
    assert [key.get_secret_value() for key in settings.api_keys] == ["env-key", "file-key-1", "file-key-2"]
    assert settings.api_keys_file is None and settings.wait_for_models
    generated = replica_settings(Settings())  # nothing configured: this machine's generated key, for all
    assert [key.get_secret_value() for key in generated.api_keys] == [generated_key_path(Settings()).read_text().strip()]
    assert replica_settings(Settings(allow_no_auth=True)).api_keys == ()


def test_ray_serve_config_file_is_valid_and_builds_the_app(monkeypatch):
    import yaml
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    monkeypatch.setenv("FACECMP_API_KEYS", KEY)
    config = ServeDeploySchema.model_validate(yaml.safe_load((REPO / "serve" / "ray_serve.yaml").read_text()))
    (application,) = config.applications
    module, _, name = application.import_path.partition(":")
    builder = getattr(__import__(module, fromlist=[name]), name)
    assert builder is build_app and isinstance(builder(application.args), Application)
    assert config.controller_options.runtime_env["env_vars"]["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] \
        == CALLBACK_IMPORT_PATH


def test_replica_start_up_fails_when_its_models_cannot_load(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))  # no weights here
    with pytest.raises(FacecmpError):
        with TestClient(create_app(Settings(api_keys=KEY, wait_for_models=True))):
            pass


def test_proxy_answers_a_request_left_without_response_with_json_503():
    async def dies(scope, receive, send):  # what Ray's proxy does when the replica died
        return None

    async def answers(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    lost = TestClient(AnswerLostRequests(dies)).post("/compare", json={})
    assert lost.status_code == 503 and lost.headers["retry-after"] == "1"
    assert lost.json()["code"] == "ERR_SERVICE_UNAVAILABLE"
    kept = TestClient(AnswerLostRequests(answers)).get("/health")
    assert kept.status_code == 200 and kept.text == "ok"


# -- on a Ray cluster (slow tier) ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {text!r} after {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen, timeout_s: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class RayCluster:
    address: str
    temp_dir: Path

    def logs(self) -> Path:
        return self.temp_dir / "session_latest" / "logs"


def _processes_using(directory: Path) -> list[int]:
    """Processes with a file open under ``directory``: what is left of this module's cluster."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if any(str(fd.readlink()).startswith(str(directory)) for fd in (entry / "fd").iterdir()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    """A one-node Ray cluster of its own (own ports, own temp dir); SIGTERM to ``ray start --block``
    stops exactly its processes. Ray gives up when its node is not up in 30 s, which a busy 2-core
    machine can miss: up to three tries."""
    temp_dir = Path(tempfile.mkdtemp(prefix="fcray-", dir="/tmp"))  # short: Ray puts sockets in it
    head = None
    try:
        for attempt in range(3):
            port = _free_port()
            log = temp_dir / f"head-{attempt}.log"
            command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port", str(port),
                       "--num-cpus", "3", "--include-dashboard", "false", "--temp-dir", str(temp_dir),
                       "--disable-usage-stats", "--ray-client-server-port", str(_free_port()),
                       "--dashboard-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port())]
            with open(log, "wb") as out:
                head = subprocess.Popen(command, env=ENV, stdout=out, stderr=subprocess.STDOUT)
            try:
                _wait_for_line(log, "Ray runtime started", head, timeout_s=180)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield RayCluster(f"127.0.0.1:{port}", temp_dir)
    finally:  # also after three failed starts: nothing of them is left running or on disk
        if head is not None:
            _stop(head, timeout_s=120)
        for pid in _processes_using(temp_dir):  # e.g. an agent orphaned by a failed start
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _ray_script(cluster: RayCluster, code: str, timeout_s: float = 300) -> dict:
    """Run ``code`` (which prints one JSON line) in a Python connected to ``cluster``: the
    Ray client state stays out of this process, which other tests use for Ray of their own."""
    prelude = ("import json, sys, time\nimport ray\n"
               f"ray.init(address={cluster.address!r}, log_to_driver=False)\n"
               f"replicas = lambda: sorted(a['name'] for a in ray.util.list_named_actors(all_namespaces=True) "
               f"if a['name'].startswith({REPLICA_PREFIX!r}))\n")
    done = subprocess.run([sys.executable, "-c", prelude + code], env=ENV, capture_output=True, text=True,
                          timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _replica_names(cluster: RayCluster) -> list[str]:
    return _ray_script(cluster, "print(json.dumps({'replicas': replicas()}))")["replicas"]


@dataclass
class Deployed:
    url: str
    ready_s: float
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def deployed(ray_cluster) -> Deployed:
    """``python -m serve cluster --replicas 2`` on the cluster, until its replicas are ready."""
    port = _free_port()
    log = ray_cluster.temp_dir / "serve-cluster.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "serve", "cluster", "--address", ray_cluster.address, "--replicas", "2",
             "--host", "127.0.0.1", "--port", str(port)],
            env={**ENV, "FACECMP_API_KEYS": KEY}, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_line(log, "ready (2 replicas)", process, timeout_s=480)
        deployment = Deployed(f"http://127.0.0.1:{port}", time.monotonic() - start, process, log)
        print(f"\n2 replicas ready {deployment.ready_s:.0f} s after `python -m serve cluster` started")
        yield deployment
    finally:
        _stop(process, timeout_s=120)


@pytest.fixture(scope="module")
def pairs(celebrity_photos) -> dict[str, dict]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    same = celebrity_photos["ben_afflek"][:2]
    other = celebrity_photos["madonna"][0]
    return {"same": {"face_base_64": b64(same[0]), "ref_face_base_64": b64(same[1])},
            "different": {"face_base_64": b64(same[0]), "ref_face_base_64": b64(other)}}


def _compare(url: str, body: dict, timeout_s: float = 60) -> requests.Response:
    return requests.post(f"{url}/compare", json=body, headers={"x-api-key": KEY}, timeout=timeout_s)


@pytest.mark.slow
def test_two_replicas_answer_the_seed_contract(deployed, ray_cluster, pairs):
    replicas = _replica_names(ray_cluster)
    assert len(replicas) == 2
    kinds = ["same", "different"] * 6
    with ThreadPoolExecutor(4) as pool:  # concurrent, so that the proxy spreads them over both replicas
        answers = list(pool.map(lambda kind: _compare(deployed.url, pairs[kind]), kinds))
    for kind, answer in zip(kinds, answers):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body["is_match"], bool) and body["is_match"] == (kind == "same"), (kind, body)
        assert 0.0 <= body["score"] <= 1.0
    # Each replica's own log (Ray Serve's access log) shows compares it answered.
    for name in replicas:
        replica_log = ray_cluster.logs() / "serve" / f"replica_facecmp_FaceCompare_{name[len(REPLICA_PREFIX):]}.log"
        assert "POST /compare 200" in replica_log.read_text(), name


@pytest.mark.slow
def test_key_check_holds(deployed, pairs):
    missing = requests.post(f"{deployed.url}/compare", json=pairs["same"], timeout=60)
    assert missing.status_code == 401 and missing.json()["code"] == "ERR_API_KEY_NOT_PRESENT"
    wrong = requests.post(f"{deployed.url}/compare", json=pairs["same"], headers={"x-api-key": KEY + "x"},
                          timeout=60)
    assert wrong.status_code == 403 and wrong.json()["code"] == "ERR_API_KEY_NOT_VALID"
    assert requests.get(f"{deployed.url}/ready", timeout=60).json()["mode"] == "fast"


KILL_AND_WAIT = """
from ray import serve
victim = replicas()[0]
killed_at = time.time()
ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
replaced_at = None
while time.time() < killed_at + 480:
    running = serve.status().applications["facecmp"].deployments["FaceCompare"].replica_states.get("RUNNING", 0)
    now = replicas()
    if victim not in now and len(now) == 2 and running == 2:
        replaced_at = time.time()
        break
    time.sleep(1)
print(json.dumps({"victim": victim, "killed_at": killed_at, "replaced_at": replaced_at, "replicas": now}))
"""


MAX_REQUESTS = 3000  # about 150 s of three clients: bounded, and longer than a replacement takes


@pytest.mark.slow
def test_a_killed_replica_is_replaced_and_every_request_is_answered(deployed, ray_cluster, pairs):
    """Three clients compare while one replica is killed (``ray.kill``) and Ray starts another.
    Each request has a timeout; the loop stops 10 requests after the replacement is ready (a
    replica starts in 20-30 s here, minutes when the machine is busy), at 540 s, or at
    MAX_REQUESTS. The cap must outlast the kill: three clients send ~20 requests/s, and the
    replacement is only known once the kill script reports (a 400 cap ran out first: 402
    requests, replacement ready after 18 s, none sent after it)."""
    before = _replica_names(ray_cluster)
    assert len(before) == 2
    outcomes: list[tuple[float, int | str, dict | str]] = []  # (start, status or exception, body)
    replaced_at: list[float] = []
    deadline = time.time() + 540

    def client() -> None:
        while time.time() < deadline and len(outcomes) < MAX_REQUESTS:
            if replaced_at and sum(start > replaced_at[0] for start, *_ in outcomes) >= 10:
                return
            start = time.time()
            try:
                answer = _compare(deployed.url, pairs["same"])
                body = answer.json() if answer.headers.get("content-type") == "application/json" else answer.text
                outcomes.append((start, answer.status_code, body))
            except requests.RequestException as exc:
                outcomes.append((start, type(exc).__name__, str(exc)))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    while len(outcomes) < 6 and time.time() < deadline:  # answered before the kill, not a fixed wait
        time.sleep(0.1)
    kill = _ray_script(ray_cluster, KILL_AND_WAIT, timeout_s=600)
    if kill["replaced_at"] is not None:
        replaced_at.append(kill["replaced_at"])
    for thread in clients:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a client is still waiting for an answer"

    counts = Counter(status for _, status, _ in outcomes)
    before_kill = sum(start <= kill["killed_at"] for start, *_ in outcomes)
    took = f"ready after {kill['replaced_at'] - kill['killed_at']:.0f} s" if replaced_at else "not ready in 480 s"
    print(f"\nkilled {kill['victim']}; replacement {took}; {len(outcomes)} requests "
          f"({before_kill} of them started before the kill): {dict(counts)}")
    assert replaced_at and kill["victim"] in before and kill["victim"] not in kill["replicas"], kill
    assert before_kill >= 6
    assert set(counts) <= {200, 503}, [o for o in outcomes if o[1] not in (200, 503)][:5]
    for _, status, body in outcomes:
        if status == 200:
            assert body["is_match"] is True
        else:
            assert body["code"] in ("ERR_SERVICE_UNAVAILABLE", "ERR_SERVICE_OVERLOADED", "ERR_SERVICE_NOT_READY")
    assert sum(start > replaced_at[0] and status == 200 for start, status, _ in outcomes) >= 10


@pytest.mark.slow
def test_eval_ray_backend_on_a_cluster_started_apart_gives_the_local_results(ray_cluster, people_folder, tmp_path,
                                                                             fast_comparer, rounding_noise):
    out, cache = tmp_path / "run", tmp_path / "ray.sqlite"
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "eval", "run", str(people_folder), "--out", str(out), "--mode", "fast",
         "--backend", "ray", "--ray-address", ray_cluster.address, "--ray-actors", "1", "--batch-size", "4",
         "--cache", str(cache), "--bootstrap", "50", "--folds", "2", "--threads", "1", "--no-progress"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    print(f"\neval run on the cluster: {time.monotonic() - started:.0f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["dataset"]["n_images"] == 9
    assert summary["timing"]["images_embedded"] == 9
    # It joined this cluster rather than starting a Ray of its own ...
    port = ray_cluster.address.rsplit(":", 1)[1]
    assert any("Connecting to existing Ray cluster at address" in line and f":{port}" in line
               for line in run.stderr.splitlines()), run.stderr[-3000:]
    assert "Started a local Ray instance" not in run.stderr
    # ... and its embedding actor ran there: the cluster's logs hold that actor's worker log.
    assert any("RayEmbedder" in path.read_text(errors="replace")
               for path in ray_cluster.logs().glob("worker-*.out")), "no RayEmbedder actor ran on the cluster"
    # What the actor embedded (kept in the cache) is what this process embeds, up to rounding noise:
    # another process with other thread counts sums in another order.
    images = sorted(people_folder.glob("*/*"))
    remote = embed_images(images, fast_comparer, mode="fast", cache=EmbeddingCache(cache), progress=False)
    assert remote.n_computed == 0 and remote.n_cached == len(images) == 9
    local = embed_images(images, fast_comparer, mode="fast", cache=EmbeddingCache(":memory:"), batch_size=4,
                         progress=False)
    np.testing.assert_array_equal(remote.ok, local.ok)
    assert np.all(np.einsum("ij,ij->i", remote.embeddings, local.embeddings) > 1 - rounding_noise)
    for r, l in zip(remote.records, local.records):
        assert np.allclose(r.face["box"], l.face["box"], atol=1e-2)
