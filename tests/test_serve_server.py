"""The REST service as a real uvicorn server on loopback (conftest's ``server``, shared with
test_serve_demo): the official OpenCV FR SDK against it, a bounded load test (no 500, flat
memory), images of every shape fuzzed through it (hypothesis), the access log, a mode loaded on
first use, and Swagger UI in headless Chromium.
"""
from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import SERVER_KEY, minifasnet_dir
from facecmp.errors import LIVENESS_CODES
from image_strategies import user_images
from serve.testing import chromium_path

pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)

KEY = SERVER_KEY
AUTH = {"x-api-key": KEY}


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


@pytest.fixture(scope="module")
def sdk(server):
    pytest.importorskip("opencv.fr", reason="the OpenCV FR SDK (PyPI opencv-face-recognition) is not installed")
    from opencv.fr import FR

    return FR(server.url, KEY)


@pytest.fixture(scope="module")
def people(celebrity_photos):
    return {"ben": celebrity_photos["ben_afflek"], "madonna": celebrity_photos["madonna"],
            "elton": celebrity_photos["elton_john"]}


# -- images of every shape through the real service ----------------------------------------------

@given(image=user_images(max_pixels=300_000), check_liveness=st.booleans())
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_valid_image_gets_a_documented_answer(server, people, image, check_liveness):
    """Sizes from 1x1, any aspect ratio, L/LA/P/RGB/RGBA/CMYK/I;16, JPEG/PNG/MPO: 200, or 400 with
    a documented code; never a 500 (thumbnails and banners were 500 UNKNOWN_ERROR)."""
    probe = base64.b64encode(image).decode()
    reference = b64(people["ben"][0])
    answers = [
        requests.post(f"{server.url}/compare", json={"face_base_64": probe, "ref_face_base_64": reference,
                                                      "check_liveness": check_liveness, "search_mode": "FAST"},
                      headers=AUTH, timeout=120),
        requests.post(f"{server.url}/compare", json={"gallery": [reference], "probe": [probe], "search_mode": "FAST"},
                      headers=AUTH, timeout=120),
        requests.post(f"{server.url}/liveness", json={"image": probe}, headers=AUTH, timeout=120),
    ]
    for response in answers:
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            body = response.json()
            assert body["code"] in ("ERR_FACE_NOT_DETECTED", "ERR_LIVENESS_ERROR"), body
            if body["code"] == "ERR_LIVENESS_ERROR":
                assert body["metadata"]["code"] in LIVENESS_CODES
    assert answers[2].status_code == 400 or minifasnet_dir() is not None  # no weights: LICENSE_ERROR


# -- the official SDK ---------------------------------------------------------------------------

def test_sdk_compare_image_sets(sdk, people):
    from opencv.fr.compare.schemas import CompareRequest
    from opencv.fr.search.schemas import SearchMode

    scores = {}
    for mode in (SearchMode.FAST, SearchMode.ACCURATE):
        same = sdk.compare.compare_image_sets(
            CompareRequest([str(people["ben"][0])], [str(p) for p in people["ben"][1:3]], search_mode=mode))
        other = sdk.compare.compare_image_sets(
            CompareRequest([str(people["ben"][0])], [str(people["madonna"][0])], search_mode=mode))
        assert 0.0 <= other < same <= 1.0
        scores[mode] = same
    assert scores[SearchMode.FAST] != scores[SearchMode.ACCURATE]  # FAST and ACCURATE are our two pipelines


def test_sdk_errors_carry_our_codes(server, people):
    pytest.importorskip("opencv.fr")
    from opencv.fr import FR
    from opencv.fr.api_error import APIError
    from opencv.fr.compare.schemas import CompareRequest

    with pytest.raises(APIError) as caught:
        FR(server.url, "wrong").compare.compare_image_sets(
            CompareRequest([str(people["ben"][0])], [str(people["ben"][1])]))
    assert (caught.value.http_status_code, caught.value.err_code) == (403, "ERR_API_KEY_NOT_VALID")


def test_sdk_check_liveness(sdk, shared):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    from opencv.fr.liveness.schemas import DeviceType, LivenessRequest

    samples = shared / "data" / "liveness-dev" / "samples"
    live = sdk.liveness.check_liveness(LivenessRequest(str(sorted((samples / "live").glob("*.jpg"))[0])))
    spoof = sdk.liveness.check_liveness(LivenessRequest(str(sorted((samples / "spoof").glob("*.jpg"))[1]),
                                                        DeviceType.ANDROID))
    assert 0.5 < live.score <= 1.0
    assert 0.0 <= spoof.score < live.score


def test_sdk_compare_live_face(sdk, shared):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    from opencv.fr.api_error import APIError
    from opencv.fr.compare.schemas import CompareLiveRequest
    from opencv.fr.search.schemas import SearchMode

    live = sorted((shared / "data" / "liveness-dev" / "samples" / "live").glob("*.jpg"))
    response = sdk.compare.compare_live_face(
        CompareLiveRequest([str(live[1])], str(live[0]), search_mode=SearchMode.ACCURATE, liveness_min_score=0.5))
    assert 0.0 <= response.score <= 1.0 and 0.5 < response.liveness_score <= 1.0
    with pytest.raises(APIError) as caught:
        sdk.compare.compare_live_face(CompareLiveRequest([str(live[1])], str(live[0]), liveness_min_score=1.0))
    assert caught.value.err_code == "ERR_LIVENESS_ERROR"


def test_a_mode_not_preloaded_is_loaded_once_by_its_first_requests(server, people):
    """The server preloads its default mode only; concurrent FAST requests load fast once."""
    assert "(modes accurate; default accurate)" in server.log()
    body = {"gallery": [b64(people["ben"][0])], "probe": [b64(people["ben"][1])], "search_mode": "FAST"}
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{server.url}/compare", json=body, headers=AUTH,
                                                        timeout=300), range(3)))
    assert [answer.status_code for answer in answers] == [200] * 3, answers[0].text
    assert len({answer.json()["score"] for answer in answers}) == 1
    assert server.log().count("mode fast loaded on first use") == 1
    version = requests.get(f"{server.url}/version", timeout=30)
    calibration = version.json()["modes"]["fast"]["calibration"]
    assert calibration and f"calibration={calibration}" in version.headers["x-facecmp-version"]


# -- plain HTTP: the Face Compare Server body, load, memory, log ---------------------------------

def test_face_compare_body_over_http(server, people):
    body = {"face_base_64": b64(people["ben"][0]), "ref_face_base_64": b64(people["ben"][1])}
    response = requests.post(f"{server.url}/compare", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200 and {"is_match", "score", "within_calibration", "faces"} <= set(response.json())
    assert isinstance(response.json()["is_match"], bool) and len(response.json()["faces"]) == 2
    assert response.headers["x-facecmp-version"].startswith("facecmp/")
    # A base URL with a trailing slash (as SDK users often write it) still reaches the route.
    assert requests.post(f"{server.url}//compare", json=body, headers=AUTH, timeout=120).status_code == 200


def _documented_statuses(server) -> dict[str, set[int]]:
    schema = requests.get(f"{server.url}/openapi.json", timeout=30).json()
    return {path: {int(code) for code in operation["responses"]}
            for path, item in schema["paths"].items() for operation in item.values()}


def _load_round(server, people, documented) -> list[tuple[str, int, dict]]:
    photos = [b64(p) for p in people["ben"][:3] + people["madonna"][:2] + people["elton"][:2]]
    good = [("/compare", {"face_base_64": photos[i % 7], "ref_face_base_64": photos[(i + 3) % 7],
                          "search_mode": ("ACCURATE", "FAST")[i % 2]}, AUTH) for i in range(40)]  # both pipelines
    bad = [
        ("/compare", '{"face_base_64": ', AUTH),
        ("/compare", {"face_base_64": "@@@", "ref_face_base_64": photos[0]}, AUTH),
        ("/compare", {"face_base_64": photos[0]}, AUTH),
        ("/compare", {"face_base_64": photos[0], "ref_face_base_64": photos[1]}, {}),
        ("/compare", {"face_base_64": photos[0], "ref_face_base_64": photos[1]}, {"x-api-key": "nope"}),
        ("/compare", {"gallery": [photos[0]] * 5, "probe": [photos[1]]}, AUTH),
        ("/does-not-exist", {}, AUTH),
        ("/liveness", {"image": 42}, AUTH),
    ] * 2

    def send(item):
        path, body, headers = item
        if isinstance(body, str):
            response = requests.post(f"{server.url}{path}", data=body, timeout=600,
                                     headers={**headers, "content-type": "application/json"})
        else:
            response = requests.post(f"{server.url}{path}", json=body, headers=headers, timeout=600)
        return path, response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(send, good + bad))
    for path, status, body in results:
        assert status != 500, body
        assert {"code", "message"} <= set(body) or status == 200, body
        if path in documented:
            assert status in documented[path], (path, status, body)
        else:
            assert (status, body["code"]) == (404, "ERR_NOT_FOUND")
    return results


def test_load_no_500_and_flat_memory(server, people):
    documented = _documented_statuses(server)
    _load_round(server, people, documented)  # warm-up: allocator arenas, every worker thread
    before = server.memory_kib()
    for _ in range(2):
        results = _load_round(server, people, documented)
    after = server.memory_kib()
    ok = sum(1 for path, status, _ in results if path == "/compare" and status == 200)
    assert ok >= 40  # the queue (64) holds the whole burst: every real compare is answered
    growth_mib = (after["VmRSS"] - before["VmRSS"]) / 1024
    print(f"server RSS before {before['VmRSS'] / 1024:.0f} MiB, after {after['VmRSS'] / 1024:.0f} MiB, "
          f"peak {after['VmHWM'] / 1024:.0f} MiB")
    assert growth_mib < 64, f"RSS grew by {growth_mib:.0f} MiB over two rounds of 56 requests"


def test_access_log_lines(server, people):
    requests.post(f"{server.url}/compare", json={"face_base_64": b64(people["ben"][0]),
                                                 "ref_face_base_64": b64(people["ben"][1])},
                  headers=AUTH, timeout=120)
    requests.get(f"{server.url}/secret-path?key={KEY}", timeout=30)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith('{"event":"access"')]
    assert lines, server.log()[-2000:]
    compare = [e for e in lines if e["path"] == "/compare" and e["status"] == 200][-1]
    assert set(compare) == {"event", "request_id", "method", "path", "status", "latency_ms", "faces"}
    assert compare["faces"] == [1, 1]
    log = server.log()
    assert KEY not in log and "secret-path" not in log
    assert b64(people["ben"][0])[:40] not in log


# -- Swagger UI in a real browser ------------------------------------------------------------

def test_swagger_ui_renders_offline_in_chromium(server):
    browser = chromium_path()
    if browser is None:
        pytest.skip("chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="facecmp-chromium-") as profile:
        completed = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
             "--dump-dom", f"{server.url}/docs"],
            capture_output=True, text=True, timeout=180,
        )
    dom = completed.stdout
    assert "swagger-ui" in dom, completed.stderr[-2000:]
    assert 'id="operations-compare-compare"' in dom, dom[:2000]  # the compare operation was rendered
    assert "/compare-live-face" in dom and "/liveness" in dom
