"""The metabolomics notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "metabolomics.ipynb"


def test_notebook_runs_and_draws(shared_data: Path, centroid_cache: str, tmp_path: Path, monkeypatch) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored stripped
    monkeypatch.setenv("CLOUDBUTTON_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(Path(centroid_cache).parent))  # its default cache: the session's
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    pngs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
            if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4  # ion-image grid, MSM histogram, FDR levels, KPI timeline
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "identical annotations.csv on processes: True" in text
    assert (tmp_path / "out" / "metabolomics-notebook" / "annotations" / "annotations.csv").is_file()
