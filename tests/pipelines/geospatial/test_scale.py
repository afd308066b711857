"""Catalogs of many tiles: the header index as a catalog file, tiles as a lattice, outputs without a size cap."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import rasterio
from pyproj import CRS

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.geospatial import build_dem_job, chm, dem, density, index
from cloudbutton.pipelines.geospatial.catalog import catalog_document, read_catalog
from cloudbutton.pipelines.geospatial.lasio import LasSource, read_source

from .geospatial_helpers import read_dem


def test_a_catalog_file_plans_without_reading_headers(sample_tiles, tmp_path, monkeypatch):
    result = index(sample_tiles, str(tmp_path / "catalog.json"), workers=2, quiet=True)
    assert result.value["files"] == len(sample_tiles)
    assert read_catalog(str(tmp_path / "catalog.json")) == [read_source(p) for p in sample_tiles]
    dem(sample_tiles, str(tmp_path / "files.tif"), ground="class", tile_size=60, workers=2, quiet=True)

    def no_headers(uri):
        raise AssertionError(f"header of {uri} read")

    monkeypatch.setattr("cloudbutton.pipelines.geospatial.plan.read_source", no_headers)
    dem(str(tmp_path / "catalog.json"), str(tmp_path / "catalog.tif"), ground="class", tile_size=60, workers=2,
        quiet=True)
    np.testing.assert_array_equal(read_dem(tmp_path / "catalog.tif")[0], read_dem(tmp_path / "files.tif")[0])
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="bad.json: not a readable geospatial catalog"):
        dem(str(tmp_path / "bad.json"), str(tmp_path / "x.tif"), quiet=True)


@pytest.mark.parametrize("product", ["dtm", "chm", "density"])
def test_vrt_output_of_per_tile_cogs_equals_the_single_geotiff(sample_tiles, tmp_path, product):
    run = {"dtm": dem, "chm": chm, "density": density}[product]
    run(sample_tiles, str(tmp_path / "one.tif"), tile_size=40, workers=2, quiet=True)
    result = run(sample_tiles, str(tmp_path / "many.vrt"), tile_size=40, workers=2, quiet=True)
    files = sorted((tmp_path / "many_tiles").glob("*.tif"))
    assert len(files) == result.value["tiles"] == 12
    single, transform, crs = read_dem(tmp_path / "one.tif")
    with rasterio.open(tmp_path / "many.vrt") as vrt:
        assert (vrt.transform, vrt.crs, vrt.shape, vrt.nodata) == (transform, crs, single.shape, -9999)
        tiled = vrt.read(1, masked=True).astype(float).filled(np.nan)
    np.testing.assert_array_equal(tiled, single)
    assert result.value["valid_fraction"] == pytest.approx(np.isfinite(single).mean())


def _catalog(path, files_per_side: int = 100, side: float = 1000.0) -> str:
    """A catalog of files_per_side^2 tiles of side x side m (1.2 M points each), as an index stage writes it."""
    wkt = CRS.from_epsg(25831).to_wkt()
    x0, y0 = 400_000.0, 4_500_000.0
    sources = [LasSource(uri=f"s3://survey/tiles/{i:03d}_{j:03d}.laz",
                         bounds=(x0 + i * side, y0 + j * side, x0 + (i + 1) * side, y0 + (j + 1) * side),
                         count=1_200_000, crs_wkt=wkt, point_format=6, version="1.4")
               for j in range(files_per_side) for i in range(files_per_side)]
    path.write_text(json.dumps(catalog_document(sources)))
    return str(path)


def test_a_10000_file_100km_catalog_plans_at_1m(tmp_path):
    """10^10 cells: refused as one GeoTIFF, planned as per-tile COGs + VRT; tasks get a few numbers, not a
    tile list (plan time and driver memory: benchmarks/results/geospatial.md)."""
    catalog = _catalog(tmp_path / "catalog.json")
    with pytest.raises(InputError, match="--resolution: 1.0 gives a 100000 x 100000 grid"):
        build_dem_job(catalog, str(tmp_path / "dtm.tif"))
    job = build_dem_job(catalog, str(tmp_path / "dtm.vrt"))
    counts = job.graph.partition_counts()
    assert counts["read"] == 10_000 and counts["tin"] == 400 * 400
    for stage in ("read", "ground", "tin"):
        assert len(pickle.dumps(job.graph.stages[stage].params)) < 20_000  # the whole plan, not per tile
    assert "vrt" in job.graph.stages


def test_per_tile_outputs_are_identical_on_lithops(sample_tiles, tmp_path):
    """A synthetic catalog end to end on Lithops (processes: test_executors.py): tile tasks write their COGs
    from worker processes; the VRT equals the one-tile GeoTIFF."""
    catalog = str(tmp_path / "catalog.json")
    index(sample_tiles[:2], catalog, quiet=True)
    chm(catalog, str(tmp_path / "one.tif"), tile_size=10_000.0, resolution=2.0, quiet=True)
    reference = read_dem(tmp_path / "one.tif")[0]
    assert np.nanmax(reference) > 5
    result = chm(catalog, str(tmp_path / "lithops.vrt"), tile_size=40.0, resolution=2.0, executor="lithops",
                 workers=2, quiet=True)
    assert result.kpi["run"]["executor"] == "lithops" and result.value["tiles"] > 1
    np.testing.assert_array_equal(read_dem(tmp_path / "lithops.vrt")[0], reference)
