"""The one fetch path, over real HTTP: a server on loopback stands in for the weights' public
URL (``fetch(..., base_url=...)``). It serves copies of ../shared's MiniFASNet files, and a
corrupted copy to show the checksum refusal."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading

import numpy as np
import pytest
import torch

from facecmp.cli import main
from facecmp.errors import LivenessError, WeightsError
from facecmp.liveness import LivenessChecker, LivenessSettings
from facecmp.weights import store
from facecmp.weights.registry import MINIFASNET, REGISTRY, UrlSource


@pytest.fixture()
def served(tmp_path):
    """(base URL, folder it serves): a real HTTP server on 127.0.0.1, an empty folder to fill."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/anti_spoof_models", folder / "anti_spoof_models"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def published(served, shared):
    """The published MiniFASNet files, served under their names."""
    url, folder = served
    source = shared / "models" / "minifasnet"
    if not source.is_dir():
        pytest.skip("../shared/models/minifasnet is not present")
    folder.mkdir()
    for spec in MINIFASNET:
        shutil.copyfile(source / spec.source.filename, folder / spec.source.filename)
    return url, folder


def test_liveness_weights_download_verify_install_and_work(published, tmp_path, monkeypatch):
    url, _ = published
    target = tmp_path / "weights"
    monkeypatch.setenv("FACECMP_LIVENESS_WEIGHTS_DIR", str(target))
    frame = np.full((480, 640, 3), 128, np.uint8)
    with pytest.raises(LivenessError) as before:
        LivenessChecker().check(frame, [])
    assert before.value.liveness_code == "LICENSE_ERROR"

    assert main(["weights", "fetch", "minifasnet", "--base-url", url]) == 0  # what `make setup` runs online
    assert sorted(p.name for p in target.iterdir()) == sorted(s.source.filename for s in MINIFASNET)
    result = LivenessChecker().check(frame, [])  # weights found and loaded: the verdict is about the image
    assert result.code == "FACE_NOT_FOUND"
    assert LivenessSettings().weights_dir == target


def test_a_corrupted_download_is_refused_and_nothing_installed(published, tmp_path):
    url, folder = published
    spec = MINIFASNET[0]
    served = folder / spec.source.filename
    data = bytearray(served.read_bytes())
    data[len(data) // 3] ^= 0x01
    served.write_bytes(bytes(data))
    target = tmp_path / "weights"
    with pytest.raises(WeightsError, match=f"sha256 .* expected {spec.source.sha256}"):
        store.fetch(spec.name, base_url=url, directory=target)
    assert not target.exists() or not any(target.iterdir())


def test_an_unreachable_file_says_how_to_install_offline(served, tmp_path):
    url, _ = served  # serves nothing: 404
    with pytest.raises(WeightsError) as info:
        store.fetch(MINIFASNET[1].name, base_url=url, directory=tmp_path / "w")
    assert "facecmp weights fetch minifasnet --from DIR" in info.value.message
    assert MINIFASNET[1].source.filename in info.value.message
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_a_set_without_a_pinned_digest_is_refused_with_the_digest_to_pin(served, tmp_path, monkeypatch):
    """What happens to vggface2 (whose file no machine of the project could download): its
    source checks out, but weights that could not be verified on each load are refused."""
    url, folder = served
    folder.mkdir()
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    torch.save(state, folder / "unpinned.pt")
    spec = REGISTRY["vggface2"]
    unpinned = type(spec)(**{**spec.__dict__, "name": "unpinned",
                             "source": UrlSource(url=f"{url}/unpinned.pt",
                                                 sha256=store.file_sha256(folder / "unpinned.pt"))})
    monkeypatch.setitem(REGISTRY, "unpinned", unpinned)
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    with pytest.raises(WeightsError) as info:
        store.fetch("unpinned")
    assert store.state_dict_digest(state) in info.value.message and "pin it" in info.value.message
    assert not store.installed("unpinned")
