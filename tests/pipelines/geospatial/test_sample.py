"""The synthetic sample: DTM error against the known surface, COG structure, classify, CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import laspy
import numpy as np
import rasterio

from cloudbutton.pipelines.geospatial import classify, dem
from cloudbutton.pipelines.geospatial.metrics import dem_errors, filter_scores
from cloudbutton.pipelines.geospatial.synthetic import make_survey, surface, write_tiles

from .geospatial_helpers import cell_centres, read_dem


def test_generator_is_deterministic_and_labelled(tmp_path):
    a, b = make_survey(50, 40, seed=5), make_survey(50, 40, seed=5)
    np.testing.assert_array_equal(a.z, b.z)
    assert set(np.unique(a.classification)) == {2, 5, 6}
    ground = a.classification == 2
    np.testing.assert_allclose(a.z[ground], surface(a.x[ground], a.y[ground]), atol=0.2)
    paths = write_tiles(a, str(tmp_path), 2, 1)
    assert [laspy.open(p).header.point_format.id for p in paths] == [3, 6]
    assert sum(laspy.open(p).header.point_count for p in paths) == len(a.x)


def test_smrf_dem_of_the_sample_matches_the_known_surface(sample_tiles, tmp_path):
    out, shade = tmp_path / "dem.tif", tmp_path / "shade.png"
    result = dem(sample_tiles, str(out), tile_size=60, hillshade=str(shade), workers=2, quiet=True)
    assert result.value["tiles"] == 6
    z, transform, crs = read_dem(out)
    x, y = cell_centres(transform, z.shape)
    truth = surface(x, y)
    err = dem_errors(z[5:-5, 5:-5], truth[5:-5, 5:-5])
    assert err["rmse"] < 0.25 and abs(err["bias"]) < 0.03  # SMRF keeps a few object edges (Type II)
    assert np.mean(np.abs(z - truth)[5:-5, 5:-5] < 0.5) > 0.99
    assert crs.to_epsg() == 25831
    with rasterio.open(out) as src:
        assert src.dtypes == ("float32",) and src.nodata == -9999
        assert src.profile["tiled"]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert shade.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hillshade_as_a_georeferenced_geotiff(sample_tiles, tmp_path):
    dem(sample_tiles[:1], str(tmp_path / "dem.tif"), ground="class", hillshade=str(tmp_path / "shade.tif"),
        quiet=True)
    with rasterio.open(tmp_path / "dem.tif") as d, rasterio.open(tmp_path / "shade.tif") as s:
        assert (s.transform, s.crs, s.shape) == (d.transform, d.crs, d.shape)
        shade, z = s.read(1), d.read(1, masked=True)
    assert s.nodata == 0 and s.dtypes == ("uint8",)
    np.testing.assert_array_equal(shade == 0, np.ma.getmaskarray(z) | (shade == 0))
    assert shade[~np.ma.getmaskarray(z)].mean() > 100  # gentle terrain under a 45 degree sun
    assert os.path.exists(tmp_path / "kpi.json")


def test_classify_keeps_points_in_order_and_finds_ground(sample_tiles, tmp_path):
    src = sample_tiles[1]  # the LAZ 1.4 tile
    outs = {}
    for tile in (40.0, 1000.0):
        out = tmp_path / f"c{int(tile)}.laz"
        result = classify(src, str(out), tile_size=tile, workers=2, quiet=True)
        outs[tile] = laspy.read(out)
        assert result.value["points"] == len(outs[tile].x)
    original = laspy.read(src)
    got = outs[40.0]
    np.testing.assert_array_equal(got.x, original.x)
    np.testing.assert_array_equal(got.z, original.z)
    assert got.header.point_format.id == original.header.point_format.id
    before, after = np.asarray(original.classification), np.asarray(got.classification)
    assert set(np.unique(after)) <= {1, 2, 5, 6, 7}
    undecided = ~np.isin(after, (2, 7))
    np.testing.assert_array_equal(after[undecided], np.where(before[undecided] == 2, 1, before[undecided]))
    np.testing.assert_array_equal(got.classification, outs[1000.0].classification)
    truth = np.asarray(original.classification) == 2
    last = np.asarray(original.return_number) == np.asarray(original.number_of_returns)
    assert filter_scores(truth[last], np.asarray(got.classification)[last] == 2).kappa > 0.9


def test_cli_dem_and_plan(sample_tiles, tmp_path):
    out = tmp_path / "cli.tif"
    cmd = [sys.executable, "-m", "cloudbutton.core.cli", "geospatial", "dem", *sample_tiles, "--out", str(out),
           "--ground", "class", "--resolution", "2", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True)
    z, transform, _ = read_dem(out)
    assert transform.a == 2.0 and np.isfinite(z).mean() > 0.95
    plan = subprocess.run([*cmd, "--plan"], check=True, capture_output=True, text=True).stdout
    assert "tile" in plan and "mosaic" in plan
