"""Acceptance points of issue 5 on the shared real data (ISPRS, Topography, autzen, Catalonia)."""
from __future__ import annotations

import laspy
import numpy as np
import pytest
from pyproj import CRS
from scipy.interpolate import LinearNDInterpolator

from cloudbutton.pipelines.geospatial import dem
from cloudbutton.pipelines.geospatial.metrics import filter_scores
from cloudbutton.pipelines.geospatial.smrf import SmrfParams, smrf_ground

from .geospatial_helpers import cell_centres, read_dem

ISPRS = ("11", "12", "21", "22", "51", "52")


def test_smrf_kappa_on_isprs_samples(shared_data):
    """One parameter set (PDAL's defaults) for every sample; mean kappa >= 84 %."""
    rows = {}
    for sample in ISPRS:
        las = laspy.read(shared_data / "geospatial" / "isprs" / f"isprs_samp{sample}.las")
        ground = smrf_ground(np.asarray(las.x), np.asarray(las.y), np.asarray(las.z), SmrfParams())
        rows[sample] = filter_scores(np.asarray(las.classification) == 2, ground)
    print("\nsample  TypeI   TypeII  total   kappa")
    for sample, s in rows.items():
        print(f"{sample:>6}  {s.type1:.4f}  {s.type2:.4f}  {s.total:.4f}  {s.kappa:.4f}")
    kappas = [s.kappa for s in rows.values()]
    print(f"  mean kappa {np.mean(kappas):.4f}")
    assert np.mean(kappas) >= 0.84
    assert min(kappas) >= 0.70  # no sample collapses
    assert all(s.total < 0.1 for s in rows.values())


def _tin_oracle(path, transform, shape) -> np.ndarray:
    """scipy LinearNDInterpolator over the ground classes (2, 9), untiled, same grid and origin."""
    las = laspy.read(path)
    keep = np.isin(np.asarray(las.classification), (2, 9))
    x0, y1 = transform.c, transform.f
    cx, cy = cell_centres(transform, shape)
    pts = np.column_stack([np.asarray(las.x)[keep] - x0, np.asarray(las.y)[keep] - y1])
    return LinearNDInterpolator(pts, np.asarray(las.z)[keep])(cx - x0, cy - y1)


@pytest.mark.parametrize(("name", "tile_size", "buffer"), [
    ("Topography.laz", 120.0, 30.0),  # metres (the default 250 m would give one 286 m tile)
    ("autzen_trim.laz", 400.0, 100.0),  # US feet: about 120 m tiles with the default 30 m buffer
])
def test_dem_from_classes_matches_tin_oracle(shared_data, tmp_path, name, tile_size, buffer):
    path = shared_data / "geospatial" / name
    out = tmp_path / "dem.tif"
    result = dem(str(path), str(out), ground="class", tile_size=tile_size, buffer=buffer, workers=2, quiet=True)
    assert result.value["tiles"] > 1  # the tiling really splits these files
    got, transform, crs = read_dem(out)
    file_crs = laspy.open(path).header.parse_crs()
    assert CRS.from_user_input(crs.to_wkt()) == file_crs  # autzen: WKT-only Lambert in US feet
    oracle = _tin_oracle(path, transform, got.shape)
    both = np.isfinite(got) & np.isfinite(oracle)
    assert both.sum() >= 0.98 * np.isfinite(oracle).sum()
    to_metres = file_crs.axis_info[0].unit_conversion_factor
    rmse_m = np.sqrt(np.mean((got[both] - oracle[both]) ** 2)) * to_metres
    print(f"\n{name}: RMSE {rmse_m * 1000:.3f} mm over {both.sum()} cells")
    assert rmse_m <= 0.01


@pytest.fixture(scope="module")
def catalonia_runs(shared_data, tmp_path_factory):
    """DTMs of the 12 Catalonia tiles: class ground untiled and at 50 / 250 / 500 m tiles (500 m gives one
    520 x 725 m tile), SMRF untiled and at the default 250 m tiles. Values are (raster, summary)."""
    tiles = str(shared_data / "geospatial" / "catalonia-tiles")
    out = tmp_path_factory.mktemp("catalonia")
    runs = {}
    for label, ground, tile_size, buffer in (("untiled", "class", 100_000.0, 0.0), ("t50", "class", 50.0, 30.0),
                                             ("t250", "class", 250.0, 30.0), ("t500", "class", 500.0, 30.0),
                                             ("smrf-untiled", "smrf", 100_000.0, 0.0),
                                             ("smrf-t250", "smrf", 250.0, 30.0)):
        result = dem(tiles, str(out / f"{label}.tif"), ground=ground, tile_size=tile_size, buffer=buffer, workers=2,
                     quiet=True)
        runs[label] = read_dem(out / f"{label}.tif")[0], result.value
    return runs


def _interior(a: np.ndarray, margin: int = 30) -> np.ndarray:
    return a[margin:-margin, margin:-margin]


@pytest.mark.parametrize(("label", "untiled"), [("t50", "untiled"), ("t250", "untiled"),
                                                ("smrf-t250", "smrf-untiled")])
def test_catalonia_tiles_are_seamless(catalonia_runs, label, untiled):
    """Every cell, the outer data edge included, equals the untiled run: max |dz| = 0, same coverage."""
    (ref, _), (got, summary) = catalonia_runs[untiled], catalonia_runs[label]
    assert summary["tiles"] > 1
    if label.endswith("t250"):  # at the default size every triangle used is checked (50 m tiles: 120 m halos
        assert summary["uncertain_tiles"] == 0  # cannot see across the widest gaps, though values still agree)
    assert np.isfinite(ref).mean() > 0.99
    np.testing.assert_array_equal(got, ref)


def test_catalonia_tile_size_does_not_change_the_raster(catalonia_runs):
    np.testing.assert_array_equal(catalonia_runs["t50"][0], catalonia_runs["t500"][0])


def test_unbuffered_tiles_show_the_seams_the_buffer_removes(shared_data, tmp_path, catalonia_runs):
    """The anchors' way (no buffer) is measurably wrong on the same data: the test can fail."""
    out = tmp_path / "nobuffer.tif"
    dem(str(shared_data / "geospatial" / "catalonia-tiles"), str(out), ground="class", tile_size=100.0,
        buffer=0.0, workers=2, quiet=True)
    diff = np.abs(_interior(read_dem(out)[0]) - _interior(catalonia_runs["untiled"][0]))
    assert np.nanmax(diff) > 0.5


def test_smrf_dem_is_seamless_on_topography(shared_data, tmp_path):
    path = str(shared_data / "geospatial" / "Topography.laz")
    dem(path, str(tmp_path / "one.tif"), tile_size=10_000.0, buffer=0.0, workers=2, quiet=True)
    dem(path, str(tmp_path / "many.tif"), tile_size=150.0, workers=2, quiet=True)
    one, many = read_dem(tmp_path / "one.tif")[0], read_dem(tmp_path / "many.tif")[0]
    assert np.isfinite(one).mean() > 0.99
    np.testing.assert_array_equal(many, one)
