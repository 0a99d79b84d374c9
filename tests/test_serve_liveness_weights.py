"""A service started without the liveness weights (a fresh `make serve` offline): it starts, its
log says how to install them, liveness answers LICENSE_ERROR while they are absent and works as
soon as they are installed, without a restart."""
from __future__ import annotations

import base64

import pytest
import requests

from facecmp.weights.registry import GROUPS
from facecmp.weights.store import fetch
from serve.testing import running_server

KEY = "liveness-weights-key"


def test_service_without_liveness_weights_starts_says_how_and_recovers(tmp_path, shared):
    published = shared / "models" / "minifasnet"
    if not published.is_dir():
        pytest.skip("../shared/models/minifasnet is not present")
    weights = tmp_path / "minifasnet"  # empty
    env = {"FACECMP_API_KEYS": KEY, "FACECMP_MAX_CONCURRENCY": "1", "FACECMP_MODE": "FAST",
           "FACECMP_LIVENESS_WEIGHTS_DIR": str(weights)}
    live = sorted((shared / "data" / "liveness-dev" / "samples" / "live").glob("*.jpg"))[0]
    photo = base64.b64encode(live.read_bytes()).decode()
    with running_server(env, log_dir=tmp_path) as server:
        assert "facecmp weights fetch minifasnet --from DIR" in server.log()
        refused = requests.post(f"{server.url}/liveness", json={"image": photo}, headers={"x-api-key": KEY},
                                timeout=120)
        assert refused.status_code == 400, refused.text
        assert refused.json()["metadata"]["code"] == "LICENSE_ERROR"
        for name in GROUPS["minifasnet"]:
            fetch(name, published, directory=weights)
        answered = requests.post(f"{server.url}/liveness", json={"image": photo}, headers={"x-api-key": KEY},
                                 timeout=120)
        assert answered.status_code == 200, answered.text  # Minivision's live sample: 0.9999 live
        assert answered.json()["liveness_score"] > 0.9
