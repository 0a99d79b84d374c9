"""Which modes the service loads at start-up (``FACECMP_PRELOAD_MODES``) and what a request for
another mode gets: the mode loaded on first use (test_serve_api, test_serve_server), or, when its
models cannot be loaded, the documented 503 naming the cause."""
from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from facecmp.errors import FacecmpError
from facecmp.modes import MODES
from facecmp.settings import cache_dir
from serve.app import create_app
from serve.settings import Settings

KEY = "modes-test-key"


def test_preload_modes_are_read_in_any_case_after_the_default_mode(monkeypatch):
    monkeypatch.delenv("FACECMP_MODE", raising=False)
    monkeypatch.delenv("FACECMP_PRELOAD_MODES", raising=False)
    assert Settings().startup_modes == ("accurate",)  # the default mode only
    monkeypatch.setenv("FACECMP_PRELOAD_MODES", "ACCURATE, fast")
    monkeypatch.setenv("FACECMP_MODE", "fast")
    assert Settings().preload_modes == ("accurate", "fast") and Settings().startup_modes == ("fast", "accurate")
    with pytest.raises(ValueError, match="known: fast, accurate"):
        Settings(preload_modes="fast,slow")


@pytest.fixture()
def fast_only_cache(tmp_path):
    """A cache holding fast's weights and compiled models, and none of accurate's others."""
    installed, missing = cache_dir(), set(MODES["accurate"].weights) - set(MODES["fast"].weights)
    for folder in ("weights", "openvino"):
        (tmp_path / folder).mkdir()
        for entry in (installed / folder).iterdir():
            if not any(entry.name.startswith(name) for name in missing):
                (tmp_path / folder / entry.name).symlink_to(entry)
    return tmp_path


def test_a_mode_that_cannot_load_is_refused_with_its_cause_and_the_others_serve(fast_only_cache, celebrity_photos):
    ben = [base64.b64encode(path.read_bytes()).decode() for path in celebrity_photos["ben_afflek"][:2]]
    body = {"gallery": [ben[0]], "probe": [ben[1]]}
    settings = Settings(api_keys=KEY, mode="fast", cache_dir=fast_only_cache, wait_for_models=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.app.state.engine.loaded_modes == {"fast"}
        assert client.get("/version").json()["modes"]["accurate"]["calibration"] is None  # not loaded
        for _ in range(2):  # a failed load is tried again by the next request, and fails alike
            refused = client.post("/compare", json={**body, "search_mode": "ACCURATE"}, headers={"x-api-key": KEY})
            assert refused.status_code == 503 and refused.headers["retry-after"]
            assert refused.json()["code"] == "ERR_SERVICE_NOT_READY"
            assert refused.json()["metadata"] == {"cause": "ERR_WEIGHTS_UNAVAILABLE", "mode": "accurate"}
        served = client.post("/compare", json={**body, "search_mode": "FAST"}, headers={"x-api-key": KEY})
        assert served.status_code == 200 and served.json()["is_match"] is True
        assert client.get("/ready").status_code == 200


def test_preloaded_modes_load_at_start_up(fast_only_cache):
    """Preloading accurate, whose weights are not there, fails the start-up (fast alone starts: above)."""
    settings = Settings(api_keys=KEY, mode="fast", preload_modes="accurate", cache_dir=fast_only_cache,
                        wait_for_models=True)
    with pytest.raises(FacecmpError) as refused:
        with TestClient(create_app(settings)):
            pass
    assert refused.value.metadata["cause"] == "ERR_WEIGHTS_UNAVAILABLE"
