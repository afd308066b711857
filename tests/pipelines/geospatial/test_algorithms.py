"""Unit tests of the geospatial algorithms against independent oracles."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.geospatial.grid import GridSpec, owner_tiles, plan_grid, plan_tiles, tiles_reaching
from cloudbutton.pipelines.geospatial.metrics import dem_errors, filter_scores
from cloudbutton.pipelines.geospatial.raster import hillshade, write_cog
from cloudbutton.pipelines.geospatial.smrf import SmrfParams, _disk_rank, _knn_fill, _open_diamond, _open_disk, smrf_ground
from cloudbutton.pipelines.geospatial.tin import Block, _by_key, disk_in_box, tin_grid


def _disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r


@pytest.mark.parametrize("radius", [1, 3, 7, 18])
def test_disk_opening_matches_scipy_footprint(radius):
    z = np.random.default_rng(radius).normal(size=(23, 31)).cumsum(axis=1)
    fp = _disk(radius)
    ero = ndimage.grey_erosion(z, footprint=fp, mode="constant", cval=np.inf)
    expected = ndimage.grey_dilation(ero, footprint=fp, mode="constant", cval=-np.inf)
    np.testing.assert_allclose(_open_disk(z, radius), expected)


@pytest.mark.parametrize("radius", [1, 4, 9])
def test_diamond_opening_matches_scipy_footprint(radius):
    z = np.random.default_rng(radius).normal(size=(23, 31)).cumsum(axis=0)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    fp = np.abs(xx) + np.abs(yy) <= radius
    ero = ndimage.grey_erosion(z, footprint=fp, mode="constant", cval=np.inf)
    expected = ndimage.grey_dilation(ero, footprint=fp, mode="constant", cval=-np.inf)
    np.testing.assert_allclose(_open_diamond(z, radius), expected)


def test_knn_fill_uses_all_cells_tied_at_kth_distance():
    grid = np.full((5, 5), np.nan)
    grid[0, 2], grid[4, 2], grid[2, 0], grid[2, 4] = 1.0, 2.0, 3.0, 4.0  # all at distance 2 from the centre
    grid[0, 0] = 100.0  # farther: sqrt(8)
    filled = _knn_fill(grid, k=2)
    assert filled[2, 2] == pytest.approx(2.5)  # the four tied donors, not two of them


@pytest.mark.parametrize("seed", [0, 1])
def test_knn_fill_matches_a_brute_force_tie_inclusive_mean(seed):
    """Small gaps (ring sums) and a hole wider than the ring radius (KD-tree) against every distance."""
    rng = np.random.default_rng(seed)
    grid = rng.normal(size=(60, 70)).cumsum(axis=0)
    grid[rng.random(grid.shape) < 0.5] = np.nan
    grid[10:45, 20:55] = np.nan
    filled = _knn_fill(grid, k=8)
    donors = np.argwhere(~np.isnan(grid))
    values = grid[~np.isnan(grid)]
    for r, c in np.argwhere(np.isnan(grid)):
        d = np.hypot(*(donors - (r, c)).T)
        kth = np.sort(d)[7]
        assert filled[r, c] == pytest.approx(values[d <= kth + 1e-9].mean(), abs=1e-9)


def test_knn_fill_far_from_the_points_takes_the_nearest_value():
    grid = np.full((40, 40), np.nan)
    grid[:5, :5] = np.arange(25.0).reshape(5, 5)
    near = np.zeros(grid.shape, bool)
    near[:12, :12] = True
    filled = _knn_fill(grid, near)
    np.testing.assert_array_equal(filled[20:, 20:], grid[4, 4])  # nearest filled cell of the far corner
    exact = _knn_fill(grid)
    np.testing.assert_array_equal(filled[near], exact[near])  # cells near the points are untouched by this


def test_filter_scores_by_hand():
    truth = np.array([1, 1, 1, 0, 0], bool)
    pred = np.array([1, 0, 1, 1, 0], bool)
    s = filter_scores(truth, pred)
    assert (s.type1, s.type2, s.total) == pytest.approx((1 / 3, 1 / 2, 2 / 5))
    assert s.kappa == pytest.approx((0.6 - 0.52) / 0.48)


def test_dem_errors_ignores_nodata():
    e = dem_errors(np.array([1.0, 2.0, np.nan]), np.array([1.5, 2.5, 3.0]))
    assert e == pytest.approx({"rmse": 0.5, "mae": 0.5, "bias": -0.5, "max_abs": 0.5, "cells": 2})


def test_smrf_separates_boxes_from_sloping_ground():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 100, 20000), rng.uniform(0, 100, 20000)
    z = 0.1 * x + rng.normal(0, 0.02, x.size)
    house = (np.abs(x - 50) < 8) & (np.abs(y - 50) < 6)
    z[house] += 8.0
    ground = smrf_ground(x, y, z, SmrfParams())
    assert ground[~house].mean() > 0.99
    assert ground[house].mean() < 0.01


def test_smrf_rejects_bad_parameters():
    with pytest.raises(ValueError, match="cell"):
        SmrfParams(cell=0)


def _grid() -> GridSpec:
    return GridSpec(x0=1000.0, y1=2000.0, res=1.0, width=40, height=30)


def test_tin_matches_scipy_linear_interpolation():
    rng = np.random.default_rng(7)
    g = _grid()
    x, y = rng.uniform(1000, 1040, 600), rng.uniform(1970, 2000, 600)
    z = np.sin(x / 5) + 0.1 * y
    result = tin_grid(x, y, z, g, Block(0, 0, g.width, g.height))
    cx, cy = np.meshgrid(g.x0 + np.arange(40) + 0.5, g.y1 - np.arange(30) - 0.5)
    oracle = LinearNDInterpolator(np.column_stack([x - g.x0, y - g.y1]), z)(cx - g.x0, cy - g.y1)
    assert not result.uncertain
    np.testing.assert_array_equal(np.isnan(result.dem), np.isnan(oracle))
    np.testing.assert_allclose(result.dem[~np.isnan(result.dem)], oracle[~np.isnan(oracle)], atol=1e-5)


@pytest.mark.parametrize("n", [0, 2])
def test_tin_with_too_few_points_is_nodata(n):
    g = _grid()
    result = tin_grid(np.arange(n) + 1001.0, np.full(n, 1990.0), np.ones(n), g, Block(0, 0, 5, 5))
    assert np.isnan(result.dem).all()


def test_tin_with_collinear_points_fills_only_cells_on_the_line():
    g = _grid()
    x = 1000.0 + np.arange(10)
    result = tin_grid(x, 2000.0 - np.arange(10), x - 1000.0, g, Block(0, 0, 10, 10))
    rows, cols = np.nonzero(~np.isnan(result.dem))
    assert (rows == cols).all()  # cell centres (c + 0.5, -(r + 0.5)) on the line x - 1000 = 2000 - y
    np.testing.assert_allclose(result.dem[rows, cols], cols + 0.5, atol=1e-5)


def _within(x, y, box):
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def test_tin_ties_on_a_lattice_resolve_the_same_in_any_window():
    """Lattice points are all cocircular; a window's cells must equal the full run's."""
    g = GridSpec(x0=0.0, y1=60.0, res=0.5, width=120, height=120)
    xx, yy = np.meshgrid(np.arange(0, 60.0, 1.5), np.arange(0, 60.0, 1.5))
    x, y = xx.ravel(), yy.ravel()
    z = np.random.default_rng(0).normal(size=x.size)
    full = tin_grid(x, y, z, g, Block(0, 0, g.width, g.height)).dem
    window, limit = (15.0, 15.0, 50.0, 50.0), (10.0, 10.0, 55.0, 55.0)
    sel = _within(x, y, limit)
    part = tin_grid(x[sel], y[sel], z[sel], g, Block(50, 50, 30, 30), window, limit, (0.0, 0.0, 60.0, 60.0))
    assert not part.uncertain
    np.testing.assert_array_equal(part.dem, full[50:80, 50:80])


def test_a_conflicting_point_outside_the_window_grows_it():
    g = _grid()
    rng = np.random.default_rng(2)
    x, y = rng.uniform(1000, 1040, 50), rng.uniform(1970, 2000, 50)
    z = rng.normal(size=50)
    window, extent = (1015.0, 1980.0, 1025.0, 1990.0), (1000.0, 1970.0, 1040.0, 2000.0)
    block = Block(15, 10, 10, 10)
    full = tin_grid(x, y, z, g, Block(0, 0, g.width, g.height)).dem
    grown = tin_grid(x, y, z, g, block, window, extent, extent)
    assert grown.window != window and not grown.uncertain
    np.testing.assert_array_equal(grown.dem, full[10:20, 15:25])
    # Given only the window's points, the same triangles cannot be checked: flagged, not silently wrong.
    sel = _within(x, y, window)
    alone = tin_grid(x[sel], y[sel], z[sel], g, block, window, window, extent)
    assert alone.uncertain


@pytest.mark.parametrize("tile_size", [7, 13, 40])
@pytest.mark.parametrize("halo", [12.0, 80.0])
def test_tiles_reproduce_the_untiled_tin_exactly(tile_size, halo):
    """Points with holes and straight data edges: every tile size gives the untiled raster, coverage
    at the data's outer edge included. With a halo smaller than the holes, only tiles that say they
    are uncertain may differ."""
    rng = np.random.default_rng(tile_size)
    n = 3000
    x, y = rng.uniform(0, 60, n), rng.uniform(0, 45, n)
    keep = (np.hypot(x - 20, y - 20) > 8) & ~((x > 35) & (x < 50) & (y > 5) & (y < 12))
    x, y = x[keep], y[keep]
    z = np.cos(x / 7) * 3 + y / 5
    g = plan_grid((x.min(), y.min(), x.max(), y.max()), 0.5)
    extent = (x.min(), y.min(), x.max(), y.max())
    full = tin_grid(x, y, z, g, Block(0, 0, g.width, g.height)).dem
    tiles = plan_tiles(g, tile_size, 3.0)
    mosaic, checked = np.full_like(full, np.nan), np.zeros(full.shape, bool)
    for index, idx in tiles_reaching(x, y, tiles, g, halo):
        t = tiles[index]
        limit = (t.core[0] - halo, t.core[1] - halo, t.core[2] + halo, t.core[3] + halo)
        part = tin_grid(x[idx], y[idx], z[idx], g, Block(t.col0, t.row0, t.ncols, t.nrows), t.read, limit, extent)
        mosaic[t.row0 : t.row0 + t.nrows, t.col0 : t.col0 + t.ncols] = part.dem
        checked[t.row0 : t.row0 + t.nrows, t.col0 : t.col0 + t.ncols] = not part.uncertain
    if halo > 60:
        assert checked.all()
    np.testing.assert_array_equal(mosaic[checked], full[checked])


def test_disk_in_box_bounds_the_part_of_each_disk_inside_the_box():
    rng = np.random.default_rng(4)
    centre, radius = rng.uniform(-30, 40, (200, 2)), rng.uniform(0.5, 40, 200)
    box = np.array([0.0, 0.0, 10.0, 6.0])
    got = disk_in_box(centre, radius, box)
    angle, frac = np.meshgrid(np.linspace(0, 2 * np.pi, 721), np.sqrt(np.linspace(0, 1, 400)))
    for (cx, cy), r, b in zip(centre, radius, got):
        px, py = cx + r * frac * np.cos(angle), cy + r * frac * np.sin(angle)
        inside = (px >= 0) & (px <= 10) & (py >= 0) & (py <= 6)
        if not inside.any():
            assert b[0] > b[2] or r < 1.0  # empty (or too thin for the samples to see)
            continue
        assert b[0] <= px[inside].min() + 1e-9 and b[2] >= px[inside].max() - 1e-9
        assert b[1] <= py[inside].min() + 1e-9 and b[3] >= py[inside].max() - 1e-9
        assert b[2] - b[0] <= px[inside].max() - px[inside].min() + 0.1 * r + 1e-6  # and not much larger
        assert b[3] - b[1] <= py[inside].max() - py[inside].min() + 0.1 * r + 1e-6


def test_points_reach_exactly_the_tiles_around_them():
    g = plan_grid((0, 0, 103, 57), 1.0)
    tiles = plan_tiles(g, 25, 5)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 104, 4000), rng.uniform(-1, 58, 4000)
    x[:50], y[:50] = 25.0, 32.0  # exactly on tile corners
    routed = dict((t, set(idx.tolist())) for t, idx in tiles_reaching(x, y, tiles, g, 7.5))
    for i, t in enumerate(tiles):
        lo, hi = np.array(t.core[:2]) - 7.5, np.array(t.core[2:]) + 7.5
        expected = set(np.flatnonzero((x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1])).tolist())
        assert routed.get(i, set()) == expected
    owners = owner_tiles(x, y, tiles, g)
    col = np.clip(np.floor(x - g.x0), 0, g.width - 1)
    row = np.clip(np.floor(g.y1 - y), 0, g.height - 1)
    for i, t in enumerate(tiles):
        mine = (col >= t.col0) & (col < t.col0 + t.ncols) & (row >= t.row0) & (row < t.row0 + t.nrows)
        np.testing.assert_array_equal(owners == i, mine)


def test_plan_grid_snaps_origin_and_covers_bounds():
    g = plan_grid((10.3, 20.7, 50.2, 41.1), 2.0)
    assert (g.x0, g.y1) == (10.0, 42.0)
    assert g.x0 + g.width * g.res >= 50.2 and g.y1 - g.height * g.res <= 20.7


def test_tiles_cover_every_cell_once():
    g = plan_grid((0, 0, 103, 57), 1.0)
    seen = np.zeros((g.height, g.width), int)
    for t in plan_tiles(g, 25, 5):
        seen[t.row0 : t.row0 + t.nrows, t.col0 : t.col0 + t.ncols] += 1
        assert t.read == (t.core[0] - 5, t.core[1] - 5, t.core[2] + 5, t.core[3] + 5)
    assert (seen == 1).all()


@pytest.mark.parametrize("res", [0.0, -1.0, float("nan"), 1e-5])
def test_absurd_resolution_is_an_input_error(res):
    with pytest.raises(InputError, match="--resolution"):
        plan_grid((0, 0, 1000, 1000), res)


def test_hillshade_of_a_plane():
    flat = hillshade(np.zeros((5, 5)), 1.0)
    assert flat == pytest.approx(np.full((5, 5), np.sin(np.radians(45))))
    cols = np.arange(20.0)[None, :].repeat(20, 0)
    # Rising eastwards faces west: lit by a north-west sun more than ground rising westwards.
    assert hillshade(cols, 1.0).mean() > hillshade(-cols, 1.0).mean()


def test_cog_has_overviews_nodata_and_keeps_a_wkt_only_crs(tmp_path):
    wkt = CRS.from_proj4("+proj=lcc +lat_1=43 +lat_2=45.5 +lat_0=41.75 +lon_0=-120.5 +x_0=400000 "
                         "+y_0=0 +ellps=GRS80 +units=us-ft +no_defs").to_wkt()
    g = GridSpec(x0=100.0, y1=900.0, res=1.0, width=700, height=600)
    z = np.random.default_rng(0).normal(size=(600, 700)).astype(np.float32)
    z[:10, :10] = np.nan
    write_cog(str(tmp_path / "x.tif"), z, g, wkt)
    with rasterio.open(tmp_path / "x.tif") as src:
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert CRS.from_wkt(src.crs.to_wkt()) == CRS.from_wkt(wkt)
        assert src.crs.linear_units.lower().startswith("us survey foot")
        back = src.read(1, masked=True)
    assert back.mask[:10, :10].all() and not back.mask[10:, 10:].any()
    np.testing.assert_array_equal(back.data[10:, 10:], z[10:, 10:])


def test_vertex_order_is_a_stable_sort_of_each_triangle():
    """Rasterising takes each triangle's vertices by x, ties in their given order, as a stable argsort does."""
    rng = np.random.default_rng(5)
    tris = rng.integers(0, 1000, (5000, 3))
    x = rng.integers(0, 3, (5000, 3)).astype(float)  # many ties
    expected = np.take_along_axis(tris, np.argsort(x, axis=1, kind="stable"), axis=1)
    np.testing.assert_array_equal(_by_key(tris, x), expected)


@pytest.mark.parametrize("radius", [1, 6, 40])
def test_cells_near_a_point_by_disk_dilation_are_those_within_the_euclidean_distance(radius):
    """SMRF's reach mask (a disk dilation of the cells holding points) equals the distance transform's test."""
    filled = np.random.default_rng(radius).random((90, 130)) < 0.002
    filled[0, 0] = True
    np.testing.assert_array_equal(_disk_rank(filled, radius, erode=False),
                                  ndimage.distance_transform_edt(~filled) <= radius)
