"""Identical rasters on threads, processes, lithops and spark, for any tile count."""
from __future__ import annotations

import numpy as np

from cloudbutton.pipelines.geospatial import dem

from .geospatial_helpers import read_dem


def test_same_raster_on_every_executor_and_tiling(sample_tiles, tmp_path):
    tiles = sample_tiles[:2]  # the smallest input that still spans two files and several tiles
    runs = {}
    for executor, tile_size in (("threads", 10_000.0), ("threads", 40.0), ("processes", 60.0),
                                ("lithops", 60.0), ("spark", 60.0)):
        out = tmp_path / f"{executor}{int(tile_size)}.tif"
        result = dem(tiles, str(out), tile_size=tile_size, resolution=2.0, executor=executor, workers=2, quiet=True)
        assert result.kpi["run"]["executor"] == executor
        runs[(executor, tile_size)] = read_dem(out)[0]
    stages = {s["name"]: s["partitions"] for s in result.kpi["stages"]}
    assert stages == {"read": 2, "ground": result.value["tiles"], "tin": result.value["tiles"], "mosaic": 1}
    assert result.value["tiles"] >= 3
    reference = runs[("threads", 10_000.0)]
    assert np.isfinite(reference).mean() > 0.9
    for key, z in runs.items():
        np.testing.assert_array_equal(z, reference, err_msg=str(key))
