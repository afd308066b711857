"""Raster helpers shared by the geospatial tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


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
