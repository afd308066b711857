"""The DTM from LiDAR tiles under an s3:// folder prefix (real S3 server, Lithops minio storage) equals the local one."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from cloudbutton.core import storage
from cloudbutton.core.cli import main

from .geospatial_helpers import read_dem


@pytest.mark.parametrize("executor", ["threads", "lithops"])
def test_dem_from_an_s3_prefix_of_tiles_matches_the_local_dem(s3_server, sample_tiles, tmp_path, executor):
    prefix = f"geo-{uuid.uuid4().hex[:8]}/"
    tiles = s3_server.upload(Path(sample_tiles[0]).parent, prefix + "tiles")  # s3://bucket/geo-x/tiles/
    common = ["--resolution", "2", "--tile-size", "60", "--workers", "2", "--quiet"]
    assert main(["geospatial", "dem", str(Path(sample_tiles[0]).parent), "--out", str(tmp_path / "local.tif"),
                 *common]) == 0
    try:
        assert main(["geospatial", "dem", tiles, "--out", s3_server.uri(prefix + "out/dem.tif"),
                     "--executor", executor, "--lithops-config", str(s3_server.config_file), *common]) == 0
    finally:
        storage.configure(None)
    remote = s3_server.download(prefix + "out/dem.tif", tmp_path / "remote.tif")
    local_dem, remote_dem = read_dem(tmp_path / "local.tif"), read_dem(remote)
    np.testing.assert_array_equal(remote_dem[0], local_dem[0])
    assert remote_dem[1:] == local_dem[1:]
    assert not any(".tmp-" in key for key in s3_server.keys(prefix))  # published atomically, nothing left over


def test_python_api_plans_an_s3_prefix_with_the_given_lithops_config(s3_server, sample_tiles, tmp_path):
    """dem() lists the prefix and reads headers while planning: its lithops_config must apply first."""
    from cloudbutton.pipelines.geospatial import dem

    prefix = f"geo-api-{uuid.uuid4().hex[:8]}/"
    tiles = s3_server.upload(Path(sample_tiles[0]).parent, prefix + "tiles")
    storage.configure(None)  # nothing configured beforehand, as in a fresh notebook
    try:
        dem(tiles, str(tmp_path / "api.tif"), resolution=2, tile_size=60, workers=2, quiet=True,
            lithops_config=str(s3_server.config_file))
    finally:
        storage.configure(None)
    dem(str(Path(sample_tiles[0]).parent), str(tmp_path / "local.tif"), resolution=2, tile_size=60, workers=2,
        quiet=True)
    np.testing.assert_array_equal(read_dem(tmp_path / "api.tif")[0], read_dem(tmp_path / "local.tif")[0])
