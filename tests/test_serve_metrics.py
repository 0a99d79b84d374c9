"""``GET /metrics`` on a real uvicorn server on loopback, scraped without a key as Prometheus does:
the text parses, and between two scrapes every counter and histogram moved by exactly what the
test sent (compares in both modes, a bad request, one without a key, an unknown path, an
overload burst); no key, path or image in it. And ``FACECMP_METRICS=false`` removes it.
"""
from __future__ import annotations

import base64
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serve.app import create_app
from serve.settings import Settings
from serve.testing import running_server

KEY = "metrics-test-key-7"
AUTH = {"x-api-key": KEY}
UNKNOWN_PATH = "/no-such-path/4242"
BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One worker and one waiting place: a burst of a few compares overflows the gate.
    env = {"FACECMP_API_KEYS": KEY, "FACECMP_MAX_CONCURRENCY": "1", "FACECMP_MAX_QUEUE": "1"}
    with running_server(env, log_dir=tmp_path_factory.mktemp("serve-log")) as running:
        yield running


@pytest.fixture(scope="module")
def pair(celebrity_photos) -> dict[str, str]:
    photos = celebrity_photos["ben_afflek"]
    return {"face_base_64": b64(photos[0]), "ref_face_base_64": b64(photos[1])}


def scrape(server) -> tuple[str, Samples]:
    response = requests.get(f"{server.url}/metrics", timeout=30)  # no key: scrapers send none
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(response.text) for sample in family.samples}
    return response.text, samples


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def requests_moved(before: Samples, after: Samples, method: str, route: str, status: int) -> float:
    return moved(before, after, "facecmp_http_requests_total", method=method, route=route, status=str(status))


@pytest.mark.slow
def test_counters_and_histograms_move_by_what_was_sent(server, pair):
    _, before = scrape(server)
    for mode in ("FAST", "FAST", "ACCURATE"):
        answer = requests.post(f"{server.url}/compare", json={**pair, "search_mode": mode}, headers=AUTH, timeout=120)
        assert answer.status_code == 200, answer.text
    bad = requests.post(f"{server.url}/compare", json={**pair, "face_base_64": "@@@"}, headers=AUTH, timeout=120)
    assert bad.status_code == 400
    assert requests.post(f"{server.url}/compare", json=pair, timeout=120).status_code == 401
    assert requests.get(f"{server.url}{UNKNOWN_PATH}?key={KEY}", timeout=30).status_code == 404
    text, after = scrape(server)

    assert requests_moved(before, after, "POST", "/compare", 200) == 3
    assert requests_moved(before, after, "POST", "/compare", 400) == 1
    assert requests_moved(before, after, "POST", "/compare", 401) == 1
    assert requests_moved(before, after, "GET", "<unmatched>", 404) == 1
    assert requests_moved(before, after, "GET", "/metrics", 200) == 1  # the first scrape
    assert moved(before, after, "facecmp_http_request_duration_seconds_count", method="POST", route="/compare") == 5
    assert moved(before, after, "facecmp_http_request_duration_seconds_sum", method="POST", route="/compare") > 0
    for mode, compares in (("fast", 2), ("accurate", 1)):
        stages = {labels[1][1] for name, labels in after
                  if name == "facecmp_stage_duration_seconds_count" and labels[0] == ("mode", mode)}
        assert {"decode", "detect", "embed", "score"} <= stages and not {"total", "liveness"} & stages, stages
        for stage in stages:
            assert moved(before, after, "facecmp_stage_duration_seconds_count", mode=mode, stage=stage) == compares
            assert moved(before, after, "facecmp_stage_duration_seconds_sum", mode=mode, stage=stage) > 0
    assert moved(before, after, "facecmp_inference_rejected_total") == 0
    assert after[("facecmp_inference_in_flight", ())] == after[("facecmp_inference_queued", ())] == 0
    assert after[("facecmp_models_ready", ())] == 1

    assert KEY not in text and UNKNOWN_PATH not in text
    assert not BASE64_RUN.search(text), BASE64_RUN.search(text)


@pytest.mark.slow
def test_overload_refusals_are_counted(server, pair):
    _, before = scrape(server)
    capacity = before[("facecmp_inference_max_concurrency", ())] + before[("facecmp_inference_max_queue", ())]
    body = {**pair, "search_mode": "FAST"}

    def send(_):
        return requests.post(f"{server.url}/compare", json=body, headers=AUTH, timeout=300).status_code

    with ThreadPoolExecutor(max_workers=int(capacity) + 3) as pool:
        statuses = list(pool.map(send, range(int(capacity) + 3)))
    _, after = scrape(server)
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 1, statuses
    assert moved(before, after, "facecmp_inference_rejected_total") == statuses.count(503)
    assert requests_moved(before, after, "POST", "/compare", 503) == statuses.count(503)
    assert requests_moved(before, after, "POST", "/compare", 200) == statuses.count(200)
    assert moved(before, after, "facecmp_stage_duration_seconds_count", mode="fast", stage="embed") == statuses.count(200)


@pytest.mark.slow
def test_info_metrics_name_what_version_reports(server):
    versions = requests.get(f"{server.url}/version", timeout=30).json()
    _, samples = scrape(server)
    modes = {dict(labels)["mode"]: dict(labels) for name, labels in samples if name == "facecmp_mode_info"}
    assert set(modes) == set(versions["modes"])
    for name, mode in versions["modes"].items():
        assert modes[name]["pipeline_id"] == mode["pipeline_id"]
        assert modes[name]["calibration"] == mode["calibration"]
        assert modes[name]["weights"] == ",".join(f"{k}={v}" for k, v in sorted(mode["weights"].items()))
        assert modes[name]["default"] == str(name == versions["mode"]).lower()
    assert (("facecmp_build_info", (("version", versions["facecmp"]),))) in samples
    compute = next(dict(labels) for name, labels in samples if name == "facecmp_compute_info")
    assert (compute["backend"], compute["precision"]) == (versions["compute"]["backend"],
                                                          versions["compute"]["precision"])


def test_metrics_can_be_turned_off():
    client = TestClient(create_app(Settings(api_keys=KEY, metrics=False)))  # no start-up needed
    response = client.get("/metrics")
    assert (response.status_code, response.json()["code"]) == (404, "ERR_NOT_FOUND")
