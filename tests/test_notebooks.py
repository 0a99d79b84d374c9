"""The notebooks: the committed copies hold their outputs, and each runs top to bottom (nbclient)
on a small subset of the data without an error."""
from __future__ import annotations

import importlib.util
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "threshold_exploration.ipynb": {"FACECMP_NB_PAIRS": "40"},
    "pipeline_walkthrough.ipynb": {"FACECMP_NB_PEOPLE": "3", "FACECMP_NB_PHOTOS": "2"},
    "is_07_right_for_my_photos.ipynb": {"FACECMP_NB_IMAGES": "40"},
}


def _outputs(notebook) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _errors(notebook) -> list[str]:
    return [f"cell {k}: {o.get('ename')}: {o.get('evalue')}" for k, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def test_every_notebook_is_tested():
    assert sorted(SMALL) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_committed_copy_holds_its_outputs_and_figures(name):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code), "not executed: run `make notebooks`"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), "cells were run out of order: run `make notebooks`"
    assert not _errors(notebook), _errors(notebook)
    assert any("image/png" in o.get("data", {}) for o in _outputs(notebook)), "no figure in the committed copy"


@pytest.fixture(scope="module")
def executed(celebrity_photos) -> dict[str, Future]:
    """name -> the notebook run top to bottom in a kernel of its own (errors kept as outputs), on
    small data, fast mode and one thread: two kernels at a time, one a core."""
    pytest.importorskip("nbclient")
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    common = {key: value for key, value in os.environ.items() if key != "FACECMP_NB_MY_PHOTOS"}
    common.update({"FACECMP_NB_MODE": "fast", "FACECMP_NB_THREADS": "1", "OMP_NUM_THREADS": "1"})
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(runner.execute, NOTEBOOKS / name, allow_errors=True, env={**common, **small})
               for name, small in sorted(SMALL.items())}


@pytest.mark.slow  # not in the quick tier (make test-quick)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_without_error(name, executed):
    notebook = executed[name].result()
    assert not _errors(notebook), _errors(notebook)
    outputs = _outputs(notebook)
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), text
    assert "Traceback" not in text and "Warning" not in text, text
    if name == "threshold_exploration.ipynb":  # LFW pairs, or the sample photos without ../shared
        genuine, impostor = (int(v) for v in re.search(r"(\d+) genuine and (\d+) impostor pairs scored", text).groups())
        assert genuine > 0 and impostor > 0, text
