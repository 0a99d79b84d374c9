"""The notebooks run top to bottom (nbclient) on a small subset of the available data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "threshold_exploration.ipynb": {"FACECMP_NB_PAIRS": "40"},
    "pipeline_walkthrough.ipynb": {"FACECMP_NB_PEOPLE": "3", "FACECMP_NB_PHOTOS": "2"},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_without_error(name, monkeypatch, celebrity_photos):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The kernel inherits this environment: small data, one thread, fast mode.
    for key, value in {**SMALL[name], "FACECMP_NB_MODE": "fast", "FACECMP_NB_THREADS": "1",
                       "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()        # raises CellExecutionError on the first failing cell
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), text
    if name == "threshold_exploration.ipynb":  # LFW pairs, or the sample photos without ../shared
        genuine, impostor = (int(v) for v in re.search(r"(\d+) genuine and (\d+) impostor pairs scored", text).groups())
        assert genuine > 0 and impostor > 0, text
