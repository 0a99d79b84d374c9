"""``GET /metrics``, scraped without a key as Prometheus does, on the run's real uvicorn server
on loopback (conftest's ``server``): the text parses, and between two scrapes every counter and
histogram moved by exactly what the test sent (compares in both modes, a bad request, one without
a key, an unknown path); no key, path or image in it. In-process: an overload burst answered 503
+ Retry-After and counted, and ``FACECMP_METRICS=false`` removes the endpoint.
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

from conftest import SERVER_KEY
from serve.app import create_app
from serve.settings import Settings

KEY = SERVER_KEY  # conftest's ``server`` accepts it
AUTH = {"x-api-key": KEY}
UNKNOWN_PATH = "/no-such-path/4242"
BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


@pytest.fixture(scope="module")
def pair(celebrity_photos) -> dict[str, str]:
    photos = celebrity_photos["ben_afflek"]
    return {"face_base_64": b64(photos[0]), "ref_face_base_64": b64(photos[1])}


def scrape(target) -> tuple[str, Samples]:
    """``/metrics`` of a real server (``target.url``) or of an in-process ``TestClient``."""
    if isinstance(target, TestClient):
        response = target.get("/metrics")
    else:
        response = requests.get(f"{target.url}/metrics", timeout=30)  # no key: scrapers send none
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


def test_overload_answers_503_with_retry_after_and_is_counted(celebrity_photos):
    """One worker and no waiting place (in-process, fast mode): of eight concurrent face-pair
    compares some are refused at once with 503 + Retry-After, and /metrics counts each refusal and
    each answer (a refused compare has no stages)."""
    photos = celebrity_photos["ben_afflek"]
    body = {"face_base_64": b64(photos[0]), "ref_face_base_64": b64(photos[1])}
    settings = Settings(api_keys=KEY, max_concurrency=1, max_queue=0, retry_after_s=3, mode="fast",
                        wait_for_models=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as busy:
        _, before = scrape(busy)
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda _: busy.post("/compare", json=body, headers=AUTH), range(8)))
        _, after = scrape(busy)
    statuses = [response.status_code for response in responses]
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            body = response.json()
            assert body["code"] == "ERR_SERVICE_OVERLOADED" and set(body) <= {"code", "message", "metadata"}
            assert response.headers["retry-after"] == "3" and "Traceback" not in response.text
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
