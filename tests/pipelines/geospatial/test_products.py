"""DSM, CHM, density and height above ground: the DTM's grid, tiled runs bit-identical to untiled ones."""
from __future__ import annotations

import subprocess
import sys

import laspy
import numpy as np
import pytest
import rasterio
from scipy.interpolate import RegularGridInterpolator

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.geospatial import chm, dem, density, dsm, hag
from cloudbutton.pipelines.geospatial.synthetic import surface

from .geospatial_helpers import cell_centres, read_dem

PRODUCTS = {"dtm": dem, "dsm": dsm, "chm": chm, "density": density}


@pytest.fixture(scope="module")
def rasters(sample_tiles, tmp_path_factory):
    """Every raster product of the synthetic forest, untiled (one tile) and in 40 m tiles: (z, transform, crs)."""
    out = tmp_path_factory.mktemp("products")
    runs = {}
    for name, run in PRODUCTS.items():
        for tiling, tile_size in (("one", 10_000.0), ("tiled", 40.0)):
            path = out / f"{name}-{tiling}.tif"
            result = run(sample_tiles, str(path), tile_size=tile_size, workers=2, quiet=True)
            assert result.value["tiles"] == (1 if tiling == "one" else 12)
            runs[name, tiling] = read_dem(path)
    return runs


@pytest.mark.parametrize("name", list(PRODUCTS))
def test_tiled_products_are_bit_identical_to_untiled_on_the_dtm_grid(rasters, name):
    z, transform, crs = rasters[name, "tiled"]
    one, one_transform, _ = rasters[name, "one"]
    dtm, dtm_transform, dtm_crs = rasters["dtm", "one"]
    assert (transform, crs, z.shape) == (dtm_transform, dtm_crs, dtm.shape)
    assert one_transform == transform
    np.testing.assert_array_equal(z, one)
    assert np.isfinite(z).mean() > 0.99


def test_dsm_is_never_below_the_dtm_and_chm_is_their_difference(rasters):
    dtm, dsm_, chm_ = (rasters[n, "tiled"][0] for n in ("dtm", "dsm", "chm"))
    both = np.isfinite(dtm) & np.isfinite(dsm_)
    assert (dsm_[both] >= dtm[both]).all()
    assert np.nanmin(chm_) >= 0
    np.testing.assert_allclose(chm_[both], dsm_[both] - dtm[both], atol=1e-4)
    # The generator's crowns reach 6-20 m above ground; roofs 5-15 m.
    assert 15.0 < np.nanmax(chm_) <= 20.5
    x, y = cell_centres(rasters["dtm", "one"][1], dtm.shape)
    open_ground = chm_ < 0.5
    assert np.nanmedian(np.abs(dsm_ - surface(x, y))[open_ground]) < 0.1  # bare cells: DSM on the terrain


def test_density_counts_every_point_once(rasters, sample_tiles):
    z, transform, _ = rasters["density", "tiled"]
    points = sum(laspy.open(p).header.point_count for p in sample_tiles)
    assert z.sum() * transform.a**2 == pytest.approx(points, abs=0.5)  # float32 cells of whole counts


def test_dsm_as_a_tin_of_first_returns(sample_tiles, tmp_path, rasters):
    for tile_size in (10_000.0, 40.0):
        dsm(sample_tiles, str(tmp_path / f"tin{tile_size}.tif"), method="tin", tile_size=tile_size, workers=2,
            quiet=True)
    one, transform, _ = read_dem(tmp_path / "tin10000.0.tif")
    np.testing.assert_array_equal(read_dem(tmp_path / "tin40.0.tif")[0], one)
    assert transform == rasters["dtm", "one"][1]
    assert np.nanmax(one) == pytest.approx(np.nanmax(rasters["dsm", "one"][0]), abs=1.0)
    with pytest.raises(InputError, match="--method"):
        dsm(sample_tiles, str(tmp_path / "x.tif"), method="idw", quiet=True)


def test_height_above_ground_is_z_minus_the_dtm(sample_tiles, tmp_path, rasters):
    src = sample_tiles[1]  # the LAZ 1.4 tile
    for tile_size in (10_000.0, 40.0):
        result = hag(src, str(tmp_path / f"hag{int(tile_size)}.laz"), tile_size=tile_size, workers=2, quiet=True)
    tiled, one = laspy.read(tmp_path / "hag40.laz"), laspy.read(tmp_path / "hag10000.laz")
    height = np.asarray(tiled.HeightAboveGround, dtype=float)
    np.testing.assert_array_equal(height, np.asarray(one.HeightAboveGround, dtype=float))
    original = laspy.read(src)
    np.testing.assert_array_equal(tiled.X, original.X)
    np.testing.assert_array_equal(tiled.classification, original.classification)
    assert tiled.header.parse_crs() == original.header.parse_crs()
    assert result.value["with_height"] == len(height)
    # Oracle: linear interpolation between cell centres of a DTM of this file alone.
    dem(src, str(tmp_path / "dtm.tif"), tile_size=10_000.0, workers=2, quiet=True)
    dtm, transform, _ = read_dem(tmp_path / "dtm.tif")
    cols = transform.c + (np.arange(dtm.shape[1]) + 0.5) * transform.a
    rows = transform.f + (np.arange(dtm.shape[0]) + 0.5) * transform.e
    x, y, z = np.asarray(tiled.x), np.asarray(tiled.y), np.asarray(tiled.z)
    inside = (x >= cols[0]) & (x <= cols[-1]) & (y <= rows[0]) & (y >= rows[-1])
    ground_z = RegularGridInterpolator((rows[::-1], cols), dtm[::-1])(np.column_stack([y[inside], x[inside]]))
    ok = np.isfinite(ground_z)
    assert ok.mean() > 0.99
    np.testing.assert_allclose(height[inside][ok], (z[inside] - ground_z)[ok], atol=2e-3)  # float32 heights
    bare = np.asarray(original.classification)[inside][ok] == 2
    assert np.percentile(np.abs(height[inside][ok][bare]), 95) < 0.2
    assert 10.0 < np.nanmax(height) <= 20.5


def test_products_from_the_command_line(sample_tiles, tmp_path):
    out = tmp_path / "density.tif"
    subprocess.run([sys.executable, "-m", "cloudbutton.core.cli", "geospatial", "density", *sample_tiles[:2],
                    "--out", str(out), "--resolution", "2", "--quiet"], check=True, capture_output=True)
    with rasterio.open(out) as src:
        assert src.transform.a == 2.0 and src.read(1).max() > 0
    plan = subprocess.run([sys.executable, "-m", "cloudbutton.core.cli", "geospatial", "chm", *sample_tiles,
                           "--out", str(tmp_path / "chm.tif"), "--plan"], check=True, capture_output=True,
                          text=True).stdout
    assert "tin" in plan and "mosaic" in plan


def test_idw_matches_a_brute_force_knn_mean():
    from cloudbutton.pipelines.geospatial.grid import GridSpec
    from cloudbutton.pipelines.geospatial.idw import IdwParams, idw_grid
    from cloudbutton.pipelines.geospatial.tin import Block

    rng = np.random.default_rng(9)
    x, y = np.round(rng.uniform(0, 30, 300), 1), np.round(rng.uniform(-20, 0, 300), 1)  # rounding makes ties
    z = rng.normal(size=300)
    grid = GridSpec(x0=0.0, y1=0.0, res=1.0, width=30, height=20)
    params = IdwParams(k=6, power=2.0, rmax=4.0)
    got = idw_grid(x, y, z, grid, Block(0, 0, 30, 20), params)
    for r in range(20):
        for c in range(30):
            d = np.hypot(x - (c + 0.5), y + (r + 0.5))
            near = d <= params.rmax
            if not near.any():
                assert np.isnan(got[r, c])
                continue
            kth = np.sort(d[near])[min(params.k, near.sum()) - 1]
            use = near & (d <= kth)
            if (d[use] == 0).any():  # a point on the centre gives its value
                expected = z[use & (d == 0)].mean()
            else:
                w = 1 / d[use] ** 2
                expected = np.sum(w * z[use]) / np.sum(w)
            assert got[r, c] == pytest.approx(expected, rel=1e-5)


def test_idw_and_max_edge_dtms_are_seamless(tmp_path):
    """A survey with a 50 m lake (no ground returns): --max-edge leaves it empty, IDW and TIN fill it;
    40 m tiles give the untiled raster bit for bit."""
    from cloudbutton.pipelines.geospatial.synthetic import ORIGIN, make_survey, write_tiles

    survey = make_survey(160, 120, seed=3)
    lake = np.hypot(survey.x - ORIGIN[0] - 80, survey.y - ORIGIN[1] - 60) < 25
    keep = ~lake
    survey = type(survey)(*(getattr(survey, f)[keep] for f in survey.__dataclass_fields__))
    paths = write_tiles(survey, str(tmp_path / "in"), 2, 1)
    runs = {}
    for label, options in (("tin", {}), ("edge", {"max_edge": 10.0}), ("idw", {"interpolation": "idw"})):
        for tile_size in (10_000.0, 40.0):
            out = tmp_path / f"{label}{int(tile_size)}.tif"
            dem(paths, str(out), ground="class", tile_size=tile_size, workers=2, quiet=True, **options)
            runs[label, tile_size] = read_dem(out)
        np.testing.assert_array_equal(runs[label, 40.0][0], runs[label, 10_000.0][0])
    tin, transform, _ = runs["tin", 40.0]
    edge, idw_ = runs["edge", 40.0][0], runs["idw", 40.0][0]
    x, y = cell_centres(transform, tin.shape)
    centre = np.hypot(x - ORIGIN[0] - 80, y - ORIGIN[1] - 60) < 15
    assert np.isfinite(tin[centre]).all() and np.isfinite(idw_[centre]).all()
    assert np.isnan(edge[centre]).all()
    dry = np.hypot(x - ORIGIN[0] - 80, y - ORIGIN[1] - 60) > 30
    np.testing.assert_array_equal(edge[dry & np.isfinite(edge)], tin[dry & np.isfinite(edge)])
    assert np.isfinite(edge[dry]).mean() > 0.85  # roofs 8-30 m wide (no ground returns) are voids too
    ground = np.isfinite(idw_) & dry
    assert np.sqrt(np.mean((idw_[ground] - surface(x, y)[ground]) ** 2)) < 0.2
    with pytest.raises(InputError, match="--interpolation"):
        dem(paths, str(tmp_path / "x.tif"), interpolation="kriging", quiet=True)
