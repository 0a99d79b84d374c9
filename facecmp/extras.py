"""Optional dependencies, grouped as the distribution's extras (pyproject.toml): importing one
that is not installed raises an ImportError that names the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """``import module``, or an ImportError saying ``pip install 'facecmp[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed; it comes with the {extra!r} extra: "
                          f"pip install 'facecmp[{extra}]'", name=exc.name) from exc
