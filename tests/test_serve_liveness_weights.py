"""A service started without the liveness weights (a fresh `make serve` offline): it starts, its
log says how to install them, liveness answers LICENSE_ERROR while they are absent and works as
soon as they are installed, without a restart."""
from __future__ import annotations

import base64
import logging

import pytest
from fastapi.testclient import TestClient

from facecmp.settings import LivenessSettings
from facecmp.weights.registry import GROUPS
from facecmp.weights.store import fetch
from serve.app import create_app
from serve.settings import Settings

KEY = "liveness-weights-key"


def test_service_without_liveness_weights_starts_says_how_and_recovers(tmp_path, shared, caplog):
    published = shared / "models" / "minifasnet"
    if not published.is_dir():
        pytest.skip("../shared/models/minifasnet is not present")
    weights = tmp_path / "minifasnet"  # empty
    settings = Settings(api_keys=KEY, max_concurrency=1, mode="FAST", wait_for_models=True,
                        liveness=LivenessSettings(weights_dir=weights))
    live = sorted((shared / "data" / "liveness-dev" / "samples" / "live").glob("*.jpg"))[0]
    photo = base64.b64encode(live.read_bytes()).decode()
    with caplog.at_level(logging.WARNING, logger="facecmp.serve"):
        with TestClient(create_app(settings)) as client:
            assert "facecmp weights fetch minifasnet --from DIR" in caplog.text
            refused = client.post("/liveness", json={"image": photo}, headers={"x-api-key": KEY})
            assert refused.status_code == 400, refused.text
            assert refused.json()["metadata"]["code"] == "LICENSE_ERROR"
            for name in GROUPS["minifasnet"]:
                fetch(name, published, directory=weights)
            answered = client.post("/liveness", json={"image": photo}, headers={"x-api-key": KEY})
            assert answered.status_code == 200, answered.text  # Minivision's live sample: 0.9999 live
            assert answered.json()["liveness_score"] > 0.9
