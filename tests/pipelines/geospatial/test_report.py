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


def test_elevation_picture_without_matplotlib() -> None:
    """The fallback picture: terrain colours (those of matplotlib's 'terrain'), lowest to highest, no data clear."""
    import io

    from matplotlib import colormaps
    from PIL import Image

    from cloudbutton.pipelines.geospatial.report import _terrain_png, terrain_palette

    reference = colormaps["terrain"](np.linspace(0, 1, 255), bytes=True)[:, :3].astype(int)
    assert np.abs(terrain_palette().astype(int) - reference).max() <= 2

    z = np.array([[np.nan, 10.0], [20.0, 30.0]])
    rgba = np.asarray(Image.open(io.BytesIO(_terrain_png(z))).convert("RGBA"))
    assert rgba.shape == (2, 2, 4)
    assert rgba[0, 0, 3] == 0 and (rgba[[0, 1, 1], [1, 0, 1], 3] == 255).all()
    assert (rgba[0, 1, :3] == terrain_palette()[0]).all() and (rgba[1, 1, :3] == terrain_palette()[-1]).all()
    assert (rgba[1, 0, :3] == terrain_palette()[127]).all()
