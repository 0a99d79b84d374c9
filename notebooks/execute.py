"""Execute the notebooks in place, keeping their outputs: ``make notebooks``.

Each runs top to bottom in a fresh kernel (nbclient) from this folder, on ``../shared`` where
present and on the package's sample photos (``facecmp.samples``) otherwise. Their parameters
come from the environment (``FACECMP_NB_*``, read in each notebook's first cell); the defaults
are the sizes of the committed copies.

    python notebooks/execute.py [NOTEBOOK ...]      # default: every notebook here
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 1800        # per cell


def execute(path: Path, *, allow_errors: bool = False, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom (not written back). With ``allow_errors`` a
    failing cell leaves its error as an output and the run goes on; otherwise it raises. ``env``:
    the kernel's whole environment (default: this process's)."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=allow_errors,
                            record_timing=False, resources={"metadata": {"path": str(path.parent)}}
                            ).execute(**({"env": env} if env is not None else {}))
    return notebook


def main(argv: list[str]) -> int:
    for path in [Path(a) for a in argv] or sorted(HERE.glob("*.ipynb")):
        print(f"executing {path.name}", file=sys.stderr)
        nbformat.write(execute(path), path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
