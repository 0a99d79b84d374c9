"""Build facenet-pytorch's ``InceptionResnetV1`` for a given embedding size, without weights."""
from __future__ import annotations

from facenet_pytorch import InceptionResnetV1
from torch import nn

BOTTLENECK_IN = 1792

#: facenet-pytorch's stem convolutions -> the TF-slim scope names both Sandberg exports use.
STEM_SCOPES = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
    "conv2d_4b": "Conv2d_4b_3x3",
}


def build_inception_resnet_v1(embedding_size: int = 512) -> InceptionResnetV1:
    """An untrained embedder whose bottleneck maps 1792 features to ``embedding_size``.

    facenet-pytorch hard-codes 512; Sandberg's MS-Celeb model has 128, so the last two
    layers are swapped for ones of the right width (same eps as TensorFlow's, 1e-3).
    """
    model = InceptionResnetV1(pretrained=None, classify=False)
    if embedding_size != model.last_linear.out_features:
        model.last_linear = nn.Linear(BOTTLENECK_IN, embedding_size, bias=False)
        model.last_bn = nn.BatchNorm1d(embedding_size, eps=1e-3, momentum=0.1, affine=True)
    return model.eval()
