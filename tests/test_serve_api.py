"""The REST service in-process (FastAPI TestClient): real weights, real photos, no mocks.

Covers every documented error code (overload, 503 + Retry-After: test_serve_metrics, which counts
it too), 422 naming the field, unknown paths, the access log, the OpenAPI document and the offline
Swagger UI assets.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import minifasnet_dir
from facecmp import __version__
from facecmp.calibration import score_meaning
from facecmp.settings import LivenessSettings
from serve.app import create_app
from serve.auth import generated_key_path
from serve.settings import Settings

KEY = "test-key-0123456789"
OTHER_KEY = "second-key-abcdef"
AUTH = {"x-api-key": KEY}
DECODE_MESSAGE = "The posted Base64 image(s) could not be decoded as JPEG/PNG bytes."
NO_FACE_MESSAGE = "A face could not be detected in the image(s)."


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def liveness_installed() -> bool:
    """Whether the ``client`` fixture's service has the MiniFASNet weights."""
    from facecmp.weights.registry import MINIFASNET
    from facecmp.weights.store import installed, weights_dir

    folder = weights_dir(MINIFASNET[0].name, minifasnet_dir())
    return all(installed(spec.name, folder) for spec in MINIFASNET)


def wait_ready(client: TestClient, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        cause = (response.json().get("metadata") or {}).get("cause")
        if cause:
            pytest.fail(f"the service could not load its models: {cause}")
        time.sleep(0.5)
    pytest.fail("the service did not become ready")


@pytest.fixture(scope="module")
def client():
    settings = Settings(api_keys=f"{KEY},{OTHER_KEY}", liveness=LivenessSettings(weights_dir=minifasnet_dir()),
                        max_concurrency=2, max_queue=8)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def photos(celebrity_photos):
    """Two photos of one person and one of another, base64."""
    ben, madonna = celebrity_photos["ben_afflek"], celebrity_photos["madonna"]
    return {"same_a": b64(ben[0]), "same_b": b64(ben[1]), "other": b64(madonna[0])}


def post_compare(client, body, headers=AUTH):
    return client.post("/compare", json=body, headers=headers)


def assert_error(response, status_code: int, code: str, message: str | None = None) -> dict:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["code"] == code
    assert set(body) <= {"code", "message", "metadata"}
    assert "Traceback" not in response.text
    if message is not None:
        assert body["message"] == message
    return body


# -- probes and versions ----------------------------------------------------------------------

def test_health_ready_version(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    version = client.get("/version").json()
    assert version["facecmp"] == __version__
    assert set(version["modes"]) == {"fast", "accurate"}
    # two workers embed on OpenVINO streams of their own, as many as the cores run at once
    settings = client.app.state.engine.settings
    assert version["compute"]["threads"] == settings.inference_threads
    assert version["compute"]["streams"] == settings.embed_streams == min(2, os.cpu_count() // settings.inference_threads)
    # Start-up loaded the default mode (accurate); fast shows its calibration once a request loaded it.
    loaded = client.app.state.engine.loaded_modes
    assert "accurate" in loaded
    for name, info in version["modes"].items():
        assert info["weights"] and info["pipeline_id"] and bool(info["calibration"]) == (name in loaded)
    header = ready.headers["x-facecmp-version"]
    assert header.startswith(f"facecmp/{__version__}")
    assert version["modes"]["accurate"]["pipeline_id"] in header
    assert version["modes"]["accurate"]["calibration"] in header


# -- POST /compare, the OpenCV Face Compare Server body ---------------------------------------

def test_compare_same_and_different_person(client, photos, celebrity_photos):
    same = post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]})
    other = post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": photos["other"]})
    assert same.status_code == 200 and other.status_code == 200
    # The seed's field and the score, plus the score in words and how far it can be trusted.
    assert set(same.json()) == {"is_match", "score", "score_meaning", "within_calibration", "calibration_notes",
                                "faces"}
    assert 0.0 <= other.json()["score"] < same.json()["score"] <= 1.0
    assert same.json()["score_meaning"] == score_meaning(same.json()["score"])
    # where each compared face is: the library's own face for these bytes, in the photo's pixels
    ben = celebrity_photos["ben_afflek"]
    library = client.app.state.engine.comparer.compare(ben[0].read_bytes(), ben[1].read_bytes())
    for face, report in zip(same.json()["faces"], library.faces, strict=True):
        assert set(face) == {"estimated_age", "cohort_similarity", "cohort_similarity_percentile",
                             "face_width_percentile", "quality", "quality_percentile", "old_print", "box", "landmarks"}
        assert 0 < face["estimated_age"] < 120 and 0 <= face["cohort_similarity_percentile"] <= 100
        assert 0 <= face["quality"] <= 1 and face["quality"] == report.trust["quality"]
        assert (face["box"], face["landmarks"]) == (report.face.to_dict()["box"], report.face.to_dict()["landmarks"])
        x1, y1, x2, y2 = face["box"]
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face["landmarks"])
    assert same.json()["within_calibration"] is (not same.json()["calibration_notes"])
    assert same.json()["is_match"] is (same.json()["score"] >= 0.7)
    assert other.json()["is_match"] is False
    assert same.headers["x-facecmp-version"].startswith("facecmp/")


def test_the_answer_is_the_library_result_and_its_face_fields_the_trust_record(client, celebrity_photos):
    """One result contract: /compare answers with ``CompareResult.to_dict()``'s values, and the
    face fields its schema documents are the library's trust record's, box and landmarks."""
    import dataclasses

    from facecmp.calibration import FaceTrust

    ben = celebrity_photos["ben_afflek"]
    answer = post_compare(client, {"face_base_64": b64(ben[0]), "ref_face_base_64": b64(ben[1])}).json()
    library = client.app.state.engine.comparer.compare(ben[0].read_bytes(), ben[1].read_bytes()).to_dict()
    assert {key: answer[key] for key in answer if key != "faces"} == {key: library[key] for key in answer
                                                                         if key != "faces"}
    for face, expected in zip(answer["faces"], library["faces"], strict=True):
        assert face == {**expected["trust"], "box": expected["box"], "landmarks": expected["landmarks"]}
    documented = client.get("/openapi.json").json()["components"]["schemas"]["ComparedFace"]["properties"]
    assert set(documented) == {figure.name for figure in dataclasses.fields(FaceTrust)} | {"box", "landmarks"}
    assert documented["quality"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 1}  # its range too


def test_compare_threshold_and_modes(client, photos):
    pair = {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]}
    fast = post_compare(client, {**pair, "search_mode": "FAST", "min_similarity_score": 0.0}).json()
    accurate = post_compare(client, {**pair, "search_mode": "ACCURATE", "min_similarity_score": 1.0}).json()
    assert fast["is_match"] is True
    assert accurate["is_match"] is (accurate["score"] >= 1.0)
    assert fast["score"] != accurate["score"]  # two pipelines, two calibrations


def test_compare_accepts_data_url_prefix(client, photos):
    body = {"face_base_64": "data:image/jpeg;base64," + photos["same_a"], "ref_face_base_64": photos["same_b"]}
    assert post_compare(client, body).status_code == 200


def test_compare_with_liveness(client, shared):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    samples = shared / "data" / "liveness-dev" / "samples"
    live, spoof = sorted((samples / "live").glob("*.jpg")), sorted((samples / "spoof").glob("*.jpg"))
    ok = post_compare(client, {"face_base_64": b64(live[0]), "ref_face_base_64": b64(live[1]),
                               "check_liveness": True})
    assert ok.status_code == 200, ok.text
    assert {"is_match", "score", "liveness_score", "within_calibration"} <= set(ok.json())
    assert ok.json()["liveness_score"] > 0.5
    refused = post_compare(client, {"face_base_64": b64(spoof[1]), "ref_face_base_64": b64(live[0]),
                                    "check_liveness": True})
    body = assert_error(refused, 400, "ERR_LIVENESS_ERROR")
    # The tablet replay passes every image requirement and the model refuses it (score 0.0018).
    assert body["metadata"]["code"] == "FACE_NOT_LIVE"
    assert body["metadata"]["score"] == pytest.approx(0.0018, abs=2e-3)
    assert body["metadata"]["limit"] == 0.45
    assert body["metadata"]["value"] == pytest.approx(body["metadata"]["score"], abs=1e-4)


def test_liveness_error_on_small_face(client, photos):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    small = np.asarray(Image.open(io.BytesIO(base64.b64decode(photos["same_a"]))).convert("RGB").resize((120, 120)))
    response = post_compare(client, {"face_base_64": png_b64(small), "ref_face_base_64": photos["same_b"],
                                     "check_liveness": True})
    body = assert_error(response, 400, "ERR_LIVENESS_ERROR")
    assert body["metadata"]["code"] == "FACE_TOO_SMALL"


# -- the OpenCV FR SDK bodies -------------------------------------------------------------------

def test_compare_image_sets_body(client, photos):
    response = post_compare(client, {"gallery": [photos["same_b"], photos["other"]], "probe": [photos["same_a"]],
                                     "search_mode": "ACCURATE"})
    assert response.status_code == 200, response.text
    pair = post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]}).json()
    assert response.json()["score"] == pytest.approx(pair["score"], abs=1e-6)  # the best pair wins


def test_compare_image_sets_limits(client, photos):
    four = [photos["same_a"]] * 4
    body = assert_error(post_compare(client, {"gallery": four, "probe": [photos["same_b"]]}), 422,
                        "ERR_UNPROCESSABLE_CONTENT")
    assert body["metadata"]["errors"][0]["field"] == "body.gallery"
    body = assert_error(post_compare(client, {"gallery": [photos["same_a"]], "probe": []}), 422,
                        "ERR_UNPROCESSABLE_CONTENT")
    assert body["metadata"]["errors"][0]["field"] == "body.probe"


# -- errors -----------------------------------------------------------------------------------

def test_api_key_missing_invalid_and_second_key(client, photos):
    body = {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]}
    assert_error(post_compare(client, body, headers={}), 401, "ERR_API_KEY_NOT_PRESENT")
    assert_error(post_compare(client, body, headers={"x-api-key": ""}), 401, "ERR_API_KEY_NOT_PRESENT")
    assert_error(post_compare(client, body, headers={"x-api-key": KEY + "x"}), 403, "ERR_API_KEY_NOT_VALID")
    assert_error(client.post("/compare", json=body, headers={"x-api-key": "clé-é".encode("utf-8")}),
                 403, "ERR_API_KEY_NOT_VALID")
    assert post_compare(client, body, headers={"x-api-key": OTHER_KEY}).status_code == 200
    for path, payload in (("/liveness", {"image": photos["same_a"]}),
                          ("/compare-live-face", {"gallery": [photos["same_a"]], "probe": photos["same_b"]})):
        assert_error(client.post(path, json=payload), 401, "ERR_API_KEY_NOT_PRESENT")


@pytest.mark.parametrize("payload", [
    "not base64 at all!!",
    base64.b64encode(b"GIF89a" + bytes(64)).decode(),            # an image, but not JPEG/PNG
    base64.b64encode(b"plain text, no image").decode(),
    "",
])
def test_undecodable_image(client, photos, payload):
    response = post_compare(client, {"face_base_64": payload, "ref_face_base_64": photos["same_b"]})
    assert_error(response, 400, "ERR_BASE64_IMAGE_CANNOT_BE_DECODED", DECODE_MESSAGE)
    response = post_compare(client, {"gallery": [photos["same_b"]], "probe": [payload]})
    assert_error(response, 400, "ERR_BASE64_IMAGE_CANNOT_BE_DECODED", DECODE_MESSAGE)


def test_server_paths_are_never_read(client, celebrity_photos, photos):
    """A request string naming a file on the server is base64 to us, not a path."""
    path = str(celebrity_photos["ben_afflek"][1])
    response = post_compare(client, {"face_base_64": path, "ref_face_base_64": photos["same_b"]})
    assert_error(response, 400, "ERR_BASE64_IMAGE_CANNOT_BE_DECODED", DECODE_MESSAGE)


def test_image_over_pixel_limit(client):
    header = base64.b64encode(_png_header(6_000, 6_000)).decode()  # 36 MP > the 25 MP limit
    body = assert_error(post_compare(client, {"face_base_64": header, "ref_face_base_64": header}), 400,
                        "ERR_BASE64_IMAGE_CANNOT_BE_DECODED", DECODE_MESSAGE)
    assert "pixels" in body["metadata"]["reason"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but carries almost no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def test_face_not_detected(client, photos):
    blank = png_b64(np.full((240, 320, 3), 127, np.uint8))
    body = assert_error(post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": blank}),
                        400, "ERR_FACE_NOT_DETECTED", NO_FACE_MESSAGE)
    assert body["metadata"] == {"image": "reference"}
    assert_error(post_compare(client, {"gallery": [blank], "probe": [photos["same_a"]]}), 400,
                 "ERR_FACE_NOT_DETECTED", NO_FACE_MESSAGE)


NO_FACE_IMAGES = {"1x1": (1, 1), "16x16": (16, 16), "2400x200": (200, 2400), "120x3000": (3000, 120)}


@pytest.mark.parametrize("name", sorted(NO_FACE_IMAGES))
def test_thumbnails_banners_and_strips_answer_with_documented_codes(client, photos, name):
    """Each of these made MTCNN fail (an empty pyramid): 500 UNKNOWN_ERROR on every endpoint."""
    height, width = NO_FACE_IMAGES[name]
    image = png_b64(np.full((height, width, 3), 110, np.uint8))
    for liveness in (False, True):
        body = assert_error(post_compare(client, {"face_base_64": image, "ref_face_base_64": photos["same_a"],
                                                  "check_liveness": liveness}), 400, "ERR_FACE_NOT_DETECTED")
        assert body["metadata"] == {"image": "probe"}
    assert_error(post_compare(client, {"gallery": [photos["same_a"]], "probe": [image]}), 400,
                 "ERR_FACE_NOT_DETECTED")
    body = assert_error(client.post("/liveness", json={"image": image}, headers=AUTH), 400, "ERR_LIVENESS_ERROR")
    assert body["metadata"]["code"] == ("FACE_NOT_FOUND" if liveness_installed() else "LICENSE_ERROR")


def test_face_in_a_banner_and_an_mpo_jpeg_are_compared(client, photos):
    portrait = Image.open(io.BytesIO(base64.b64decode(photos["same_a"]))).convert("RGB")
    banner = np.full((300, 3000, 3), 90, np.uint8)
    banner[10:290, 1500:1780] = np.asarray(portrait.resize((280, 280), Image.BICUBIC))
    response = post_compare(client, {"face_base_64": png_b64(banner), "ref_face_base_64": photos["same_b"]})
    assert response.status_code == 200, response.text
    assert response.json()["is_match"] is True
    mpo = io.BytesIO()  # a phone camera's JPEG with a second (here mirrored) picture
    portrait.save(mpo, format="MPO", save_all=True, append_images=[portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    response = post_compare(client, {"face_base_64": base64.b64encode(mpo.getvalue()).decode(),
                                     "ref_face_base_64": photos["same_b"]})
    assert response.status_code == 200, response.text
    assert response.json()["is_match"] is True


@pytest.mark.parametrize("body, field", [
    ({"ref_face_base_64": "x"}, "body.face_base_64"),
    ({"face_base_64": "x", "ref_face_base_64": 3}, "body.ref_face_base_64"),
    ({"face_base_64": "x", "ref_face_base_64": "y", "check_liveness": "yes"}, "body.check_liveness"),
    ({"face_base_64": "x", "ref_face_base_64": "y", "min_similarity_score": 1.5}, "body.min_similarity_score"),
    ({"face_base_64": "x", "ref_face_base_64": "y", "min_similarity_score": "0.5"}, "body.min_similarity_score"),
    ({"face_base_64": "x", "ref_face_base_64": "y", "search_mode": "SLOW"}, "body.search_mode"),
    ({"face_base_64": "x", "ref_face_base_64": "y", "unknown": 1}, "body.unknown"),
    ({"gallery": "x", "probe": ["y"]}, "body.gallery"),
    ([1, 2], "body"),
])
def test_invalid_body_names_the_field(client, body, field):
    response = post_compare(client, body)
    error = assert_error(response, 422, "ERR_UNPROCESSABLE_CONTENT")
    fields = [item["field"] for item in error["metadata"]["errors"]]
    assert field in fields
    assert field in error["message"]


def test_malformed_json(client):
    response = client.post("/compare", content=b'{"face_base_64": ', headers={**AUTH, "content-type": "application/json"})
    error = assert_error(response, 422, "ERR_UNPROCESSABLE_CONTENT")
    assert error["metadata"]["errors"][0]["field"] == "body"
    response = client.post("/compare", content=b"\xff\xfe", headers={**AUTH, "content-type": "application/json"})
    assert_error(response, 422, "ERR_UNPROCESSABLE_CONTENT")


def test_validation_errors_do_not_echo_input(client):
    secret = base64.b64encode(b"user image bytes " * 8).decode()
    response = post_compare(client, {"face_base_64": secret, "ref_face_base_64": 3})
    assert response.status_code == 422 and secret not in response.text


def test_unknown_paths_and_methods(client):
    assert_error(client.get("/nope"), 404, "ERR_NOT_FOUND")
    assert_error(client.post("/api/v1/compare/extra", json={}, headers=AUTH), 404, "ERR_NOT_FOUND")
    assert_error(client.get("/compare", headers=AUTH), 405, "ERR_METHOD_NOT_ALLOWED")


def test_unexpected_failure_is_a_bare_500(client):
    """An exception no handler knows becomes UNKNOWN_ERROR, with no trace in the body."""
    app = client.app

    def explode() -> None:
        raise RuntimeError("internal detail /etc/secret")

    app.add_api_route("/_test_explode", explode, include_in_schema=False)
    try:
        response = client.get("/_test_explode")
    finally:
        app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != "/_test_explode"]
    assert_error(response, 500, "UNKNOWN_ERROR", "An unexpected error occurred.")
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_liveness_endpoint(client, photos, shared):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    live = sorted((shared / "data" / "liveness-dev" / "samples" / "live").glob("*.jpg"))[0]
    response = client.post("/liveness", json={"image": b64(live), "os": "DESKTOP"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"liveness_score"} and response.json()["liveness_score"] > 0.5
    blank = png_b64(np.full((240, 320, 3), 127, np.uint8))
    body = assert_error(client.post("/liveness", json={"image": blank}, headers=AUTH), 400, "ERR_LIVENESS_ERROR")
    assert body["metadata"]["code"] == "FACE_NOT_FOUND"
    assert_error(client.post("/liveness", json={"image": "%%%"}, headers=AUTH), 400,
                 "ERR_BASE64_IMAGE_CANNOT_BE_DECODED", DECODE_MESSAGE)
    assert_error(client.post("/liveness", json={"image": b64(live), "os": "WINDOWS"}, headers=AUTH), 422,
                 "ERR_UNPROCESSABLE_CONTENT")


def test_compare_live_face_endpoint(client, shared, photos):
    if minifasnet_dir() is None:
        pytest.skip("../shared/models/minifasnet is not present")
    samples = shared / "data" / "liveness-dev" / "samples"
    live = sorted((samples / "live").glob("*.jpg"))
    response = client.post("/compare-live-face", json={"gallery": [b64(live[1])], "probe": b64(live[0]),
                                                       "liveness_min_score": 0.5}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"score", "liveness_score"}
    # The score is /compare's for the pair (a different person here, so not saturated at 1).
    other = client.post("/compare-live-face", json={"gallery": [photos["other"]], "probe": b64(live[1])},
                        headers=AUTH).json()
    pair = post_compare(client, {"face_base_64": b64(live[1]), "ref_face_base_64": photos["other"]}).json()
    assert 0 < other["score"] < 1 and other["score"] == pytest.approx(pair["score"], abs=1e-6)
    refused = client.post("/compare-live-face", json={"gallery": [b64(live[1])], "probe": b64(live[0]),
                                                      "liveness_min_score": 1.0}, headers=AUTH)
    body = assert_error(refused, 400, "ERR_LIVENESS_ERROR")
    # The request's threshold is the one rule: the error says so as /compare's liveness errors do.
    meta = body["metadata"]
    assert meta["code"] == "FACE_NOT_LIVE" and meta["limit"] == meta["liveness_min_score"] == 1.0
    assert 0.9 < meta["score"] == meta["liveness_score"] < 1.0 and meta["value"] == pytest.approx(meta["score"], abs=1e-4)


# -- body size (overload: test_serve_metrics) --------------------------------------------------------------------

def test_body_size_limit():
    small = TestClient(create_app(Settings(api_keys=KEY, max_body_bytes=4096)))  # no start-up: checked first
    big = {"face_base_64": "A" * 8192, "ref_face_base_64": "A"}
    assert_error(small.post("/compare", json=big, headers=AUTH), 413, "ERR_PAYLOAD_IS_TOO_LARGE")

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"face_base_64": "'
        for _ in range(8):
            yield b"A" * 1024
        yield b'", "ref_face_base_64": "A"}'

    response = small.post("/compare", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert_error(response, 413, "ERR_PAYLOAD_IS_TOO_LARGE")


# -- keys: generated on first start, or explicitly disabled ---------------------------------

def test_first_start_generates_and_stores_a_key(tmp_path, capsys):
    settings = Settings(cache_dir=tmp_path)  # no weights here: the models fail to load
    app = create_app(settings)
    with TestClient(app) as first:
        printed = capsys.readouterr().err
        path = generated_key_path(settings)
        assert path.is_relative_to(tmp_path)
        key = path.read_text().strip()
        assert key and key in printed
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert_error(first.post("/compare", json={}), 401, "ERR_API_KEY_NOT_PRESENT")
        assert_error(first.post("/compare", json={}, headers={"x-api-key": "guess"}), 403, "ERR_API_KEY_NOT_VALID")
        accepted = first.post("/compare", json={}, headers={"x-api-key": key})
        assert accepted.status_code == 422  # past the key check
    # The pipeline looked for its weights in the settings' cache, not in the environment's.
    assert app.state.engine.load_error.code == "ERR_WEIGHTS_UNAVAILABLE"
    assert str(tmp_path / "weights") in app.state.engine.load_error.message
    with TestClient(create_app(Settings(cache_dir=tmp_path))) as second:
        assert key not in capsys.readouterr().err  # printed once, on the first start only
        assert second.post("/compare", json={}, headers={"x-api-key": key}).status_code == 422
        assert_error(second.post("/compare", json={}), 401, "ERR_API_KEY_NOT_PRESENT")


def test_keys_file(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# operators\nfile-key-1\n\nfile-key-2\n")
    settings = Settings(api_keys_file=keys, cache_dir=tmp_path)
    with TestClient(create_app(settings)) as keyed:
        assert keyed.post("/compare", json={}, headers={"x-api-key": "file-key-2"}).status_code == 422
        assert_error(keyed.post("/compare", json={}, headers={"x-api-key": "# operators"}), 403,
                     "ERR_API_KEY_NOT_VALID")
    assert not generated_key_path(settings).exists()


def test_allow_no_auth_is_explicit_and_loud(tmp_path, caplog):
    settings = Settings(allow_no_auth=True, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="facecmp.serve"):
        with TestClient(create_app(settings)) as open_client:
            assert open_client.post("/compare", json={}).status_code == 422
    assert "WITHOUT an API key" in caplog.text
    assert not generated_key_path(settings).exists()


# -- access log, OpenAPI, docs ---------------------------------------------------------------

def test_access_log_is_structured_and_leaks_nothing(client, photos, caplog):
    with caplog.at_level(logging.INFO, logger="facecmp.serve.access"):
        post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]})
        post_compare(client, {"face_base_64": photos["same_a"], "ref_face_base_64": photos["same_b"]},
                     headers={"x-api-key": "wrong-key-value"})
        client.get("/nope?face_base_64=" + photos["same_a"][:64])
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "facecmp.serve.access"]
    assert [e["status"] for e in entries] == [200, 403, 404]
    first = entries[0]
    assert first["method"] == "POST" and first["path"] == "/compare" and first["faces"] == [1, 1]
    assert first["latency_ms"] > 0 and first["request_id"]
    assert entries[2]["path"] == "<unmatched>"
    text = caplog.text
    for secret in (KEY, "wrong-key-value", photos["same_a"][:64], photos["same_b"][:64]):
        assert secret not in text


def test_openapi_documents_every_error_with_examples(client):
    schema = client.get("/openapi.json").json()
    compare = schema["paths"]["/compare"]["post"]
    documented = {code for response in compare["responses"].values()
                  for code in response.get("content", {}).get("application/json", {}).get("examples", {})}
    assert {"ERR_API_KEY_NOT_PRESENT", "ERR_API_KEY_NOT_VALID", "ERR_BASE64_IMAGE_CANNOT_BE_DECODED",
            "ERR_FACE_NOT_DETECTED", "ERR_LIVENESS_ERROR", "ERR_UNPROCESSABLE_CONTENT", "ERR_SERVICE_OVERLOADED",
            "ERR_PAYLOAD_IS_TOO_LARGE", "UNKNOWN_ERROR"} <= documented
    assert compare["responses"]["401"]["content"]["application/json"]["examples"][
        "ERR_API_KEY_NOT_PRESENT"]["value"]["code"] == "ERR_API_KEY_NOT_PRESENT"
    assert "Retry-After" in compare["responses"]["503"]["headers"]
    examples = compare["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"face_pair", "image_sets"}
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "x-api-key"
    for path in ("/liveness", "/compare-live-face"):
        assert "examples" in schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]


def test_openapi_examples_work(client):
    """The examples Swagger UI offers ("Try it out") answer 200."""
    schema = client.get("/openapi.json").json()
    for path in ("/compare", "/compare-live-face", "/liveness"):
        examples = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
        for name, example in examples.items():
            response = client.post(path, json=example["value"], headers=AUTH)
            if path != "/compare" and not liveness_installed():
                # Without the MiniFASNet weights the liveness examples get the documented refusal.
                body = assert_error(response, 400, "ERR_LIVENESS_ERROR")
                assert body["metadata"]["code"] == "LICENSE_ERROR", (path, name)
            else:
                assert response.status_code == 200, (path, name, response.text)
    pair = schema["paths"]["/compare"]["post"]["requestBody"]["content"]["application/json"]["examples"]["face_pair"]
    assert client.post("/compare", json=pair["value"], headers=AUTH).json()["is_match"] is True


def test_swagger_ui_is_served_offline(client):
    html = client.get("/docs").text
    assert "swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static-offline-docs/{asset}").status_code == 200
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
