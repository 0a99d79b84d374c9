"""Build facenet-pytorch's ``InceptionResnetV1`` for a given embedding size, without weights."""
from __future__ import annotations

from facenet_pytorch import InceptionResnetV1
from torch import nn

BOTTLENECK_IN = 1792


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
