"""Where the project's development data lives: ``../shared`` beside the source checkout, or
``$FACECMP_SHARED_DIR``; its layout is ``../shared/README.md``'s.

Development only. The library never reads it (a user's machine has no ``../shared``); the tests,
eval's and training's scripts, the notebooks and the benchmarks take their default paths from here,
and each takes a path option besides.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The source checkout this package was imported from; its parent holds ../shared on a developer's machine.
_CHECKOUT = Path(__file__).resolve().parents[1]

LFW = "lfw"                     # LFW View 2: images/ and pairs.txt
UTKFACE = "utkface-dev"         # images/ and labels.csv (path, age, gender, race)
CACD_VS = "cacd-vs-dev"         # images/ and pairs.tsv
FGNET = "fgnet-dev"             # <subject>/ and labels.csv (path, subject, age)
LIVENESS = "liveness-dev"       # live/, spoof/, samples/


class DevDataSettings(BaseSettings):
    """``FACECMP_SHARED_DIR``, read as the library reads its own variables (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="FACECMP_", frozen=True, extra="ignore", env_ignore_empty=True)

    shared_dir: Path = Field(_CHECKOUT.parent / "shared", description="The project's development data.")


def shared_root() -> Path:
    """``$FACECMP_SHARED_DIR``, else ``../shared`` beside the source checkout (present or not)."""
    return DevDataSettings().shared_dir.expanduser()


def shared_dir() -> Path | None:
    """:func:`shared_root` if it exists, else None (then tests that need it skip)."""
    root = shared_root()
    return root if root.is_dir() else None


def dataset_dir(name: str) -> Path:
    """``<shared>/data/<name>``, e.g. ``dataset_dir(LFW)``."""
    return shared_root() / "data" / name


def models_dir(name: str) -> Path:
    """``<shared>/models/<name>``, e.g. ``models_dir("minifasnet")``."""
    return shared_root() / "models" / name
