"""Writing the terrain model: Cloud-Optimised GeoTIFF and a hillshade (PNG, or a georeferenced GeoTIFF)."""
from __future__ import annotations

import numpy as np
import rasterio
from rasterio.crs import CRS

from cloudbutton.core.storage import atomic_output

from .grid import GridSpec

NODATA = -9999.0


def write_cog(uri: str, dem: np.ndarray, grid: GridSpec, crs_wkt: str, tags: dict[str, str] | None = None) -> None:
    """Write ``dem`` (NaN = no data) as a float32 COG with overviews, the input CRS and ``tags``.

    The CRS is written from its WKT, so CRSs without an EPSG code (autzen's
    feet-based Lambert) survive unchanged. The file appears only when complete.
    """
    data = np.where(np.isfinite(dem), dem, NODATA).astype(np.float32)
    profile = dict(
        driver="COG",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype="float32",
        nodata=NODATA,
        crs=CRS.from_wkt(crs_wkt),
        transform=grid.transform,
        blocksize=256,
        compress="DEFLATE",
        predictor=3,
        overviews="AUTO",
        resampling="average",
    )
    with atomic_output(uri) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**(tags or {}))


def hillshade(dem: np.ndarray, res: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Shaded relief in 0..1 (ESRI formula; NaN where the DEM has no data)."""
    drow, dzdx = np.gradient(dem.astype(float), res)
    dzdy = -drow  # rows grow southwards
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = np.radians(90.0 - altitude)
    sun = np.radians((450.0 - azimuth) % 360.0)
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(sun - aspect)
    return np.clip(shade, 0.0, 1.0)


#: Hillshade outputs by extension: a picture, or a georeferenced GeoTIFF on the DEM's grid.
HILLSHADE_SUFFIXES = (".png", ".tif", ".tiff")


def write_hillshade(uri: str, dem: np.ndarray, grid: GridSpec, crs_wkt: str) -> None:
    """Save a grey hillshade of ``dem``: PNG (no-data transparent) or, for .tif, a uint8 COG (1-255,
    nodata 0) with the DEM's grid and CRS."""
    shade = hillshade(dem, grid.res)
    if uri.lower().endswith(".png"):
        from matplotlib.image import imsave

        with atomic_output(uri) as tmp:
            imsave(tmp, np.ma.masked_invalid(shade), cmap="gray", vmin=0, vmax=1, format="png")
        return
    data = np.where(np.isfinite(shade), 1 + np.round(np.nan_to_num(shade) * 254), 0).astype(np.uint8)
    profile = dict(driver="COG", width=grid.width, height=grid.height, count=1, dtype="uint8", nodata=0,
                   crs=CRS.from_wkt(crs_wkt), transform=grid.transform, blocksize=256, compress="DEFLATE")
    with atomic_output(uri) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
