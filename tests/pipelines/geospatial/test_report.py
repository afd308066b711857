"""report.html of a DTM run, rendered in headless Chromium: hillshade with the tiles, coverage, heights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from cloudbutton.core.cli import main

from ...browser import open_report


def test_dem_report_in_browser(sample_tiles: list[str], tmp_path: Path) -> None:
    dem = tmp_path / "dem.tif"
    assert main(["geospatial", "dem", *sample_tiles, "--out", str(dem), "--tile-size", "60",
                 "--hillshade", str(tmp_path / "shade.png"), "--quiet"]) == 0
    page = open_report(tmp_path / "report.html", tmp_path / "geospatial-report.png")
    assert page.sections == ["Run", "Terrain model", "Tiles", "Stages", "Task timeline"]
    assert page.requests == [] and page.errors == []

    with rasterio.open(dem) as src:
        z = src.read(1, masked=True)
        qa = json.loads(src.tags()["CLOUDBUTTON_QA"])
    assert f"height range\n{float(z.min()):.2f} – {float(z.max()):.2f}" in page.text
    assert f"coverage\n{np.ma.count(z) / z.size:.1%}" in page.text
    assert len(qa["tiles"]) == qa["summary"]["tiles_with_ground"] > 1
    assert "hillshade written by the run" in page.text
    assert f"uncertain tiles\n{sum(t[4] for t in qa['tiles'])}" in page.text
