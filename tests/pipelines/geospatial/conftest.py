"""Fixtures of the geospatial tests: the synthetic sample and a GeoTIFF reader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from cloudbutton.pipelines.geospatial.synthetic import make_survey, write_tiles


@pytest.fixture(scope="session")
def sample_tiles(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A small synthetic survey (160 x 120 m) as 2 x 2 tiles, LAS 1.2 and LAZ 1.4."""
    return write_tiles(make_survey(160.0, 120.0, seed=3), str(tmp_path_factory.mktemp("sample")))


def read_dem(path: str | Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.crs.CRS]:
    """The band as float64 with NaN for nodata, its transform and CRS."""
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(float).filled(np.nan), src.transform, src.crs


def cell_centres(transform: rasterio.Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of every cell centre of a north-up grid."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    return x, y
