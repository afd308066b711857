"""The geospatial notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "geospatial.ipynb"


def test_notebook_executes_and_draws_figures():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored stripped
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # hillshade + tiles, difference maps, error histogram, cross-section, timeline
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    tiled, unbuffered = map(float, re.search(r"tiled vs untiled max \|dz\|: (\S+) m; unbuffered tiles vs untiled "
                                             r"max \|dz\|: (\S+) m", text).groups())
    assert tiled == 0.0 and unbuffered > 0.05
    rmse = float(re.search(r"RMSE (\S+) m", text).group(1))
    assert rmse < 0.25
