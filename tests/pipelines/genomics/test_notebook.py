"""The genomics notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "genomics.ipynb"


def test_notebook_executes_and_draws_figures():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored stripped
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # QUAL histogram, depth, KPI timeline
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "identical records: True" in text
    f1 = [line for line in text.splitlines() if line.startswith("ALL")]
    assert f1 and float(f1[0].split("F1")[1]) > 0.95
