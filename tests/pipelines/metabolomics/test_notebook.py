"""The metabolomics notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

from pathlib import Path

from ..notebooks import execute


def test_notebook_runs_and_draws(centroid_cache: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(Path(centroid_cache).parent))  # its default cache: the session's
    run = execute("metabolomics", cwd=tmp_path)
    assert run.images >= 4  # ion-image grid, MSM histogram, FDR levels, KPI timeline
    assert "identical annotations.csv on processes: True" in run.text
    assert (tmp_path / "out" / "metabolomics-notebook" / "annotations" / "annotations.csv").is_file()
