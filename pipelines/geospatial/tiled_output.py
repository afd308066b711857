"""Rasters without a size cap: each tile task writes its core as a small COG, the reduce writes a VRT over them.

With ``--out name.vrt`` no process ever holds the whole grid: a tile task
writes ``name_tiles/r<row0>_c<col0>.tif`` (its core cells, on the global
grid) and returns a few numbers; the reduce lists the files in a GDAL VRT
(readable by rasterio/GDAL as one raster). A 100 km x 100 km grid at 1 m
(10 billion cells) is 160,000 tile files of 250 x 250 cells.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from cloudbutton.core.storage import atomic_output

from .grid import GridSpec
from .raster import NODATA, write_cog

VRT_SUFFIX = ".vrt"


@dataclass(frozen=True)
class TileFile:
    """One written tile core: where it lies on the grid, its file and a few QA figures."""

    col0: int
    row0: int
    ncols: int
    nrows: int
    name: str  # file name inside the tiles folder
    valid: int  # cells with data
    z_min: float | None
    z_max: float | None
    ground: int
    buffer: float
    uncertain: bool


def tile_folder(out: str) -> str:
    """The folder beside a VRT output that holds its tiles (``dtm.vrt`` -> ``dtm_tiles``)."""
    return os.path.splitext(os.fspath(out))[0] + "_tiles"


def write_tile(block: np.ndarray, col0: int, row0: int, grid: GridSpec, crs_wkt: str, folder: str, ground: int,
               buffer: float, uncertain: bool) -> TileFile:
    """Write one core block (float32, NaN = no data) as a COG in ``folder``; its :class:`TileFile`."""
    nrows, ncols = block.shape
    name = f"r{row0:07d}_c{col0:07d}.tif"
    sub = GridSpec(x0=grid.x0 + col0 * grid.res, y1=grid.y1 - row0 * grid.res, res=grid.res, width=ncols,
                   height=nrows)
    write_cog(f"{folder}/{name}", block, sub, crs_wkt)
    valid = np.isfinite(block)
    return TileFile(col0, row0, ncols, nrows, name, int(valid.sum()),
                    float(block[valid].min()) if valid.any() else None,
                    float(block[valid].max()) if valid.any() else None, ground, buffer, uncertain)


def vrt_document(items: list[TileFile], grid: GridSpec, crs_wkt: str, folder_name: str) -> str:
    """GDAL VRT XML placing every tile file on the grid (paths relative to the VRT)."""
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(folder_name)}/{t.name}</SourceFilename>'
        f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{t.ncols}" ySize="{t.nrows}"/>'
        f'<DstRect xOff="{t.col0}" yOff="{t.row0}" xSize="{t.ncols}" ySize="{t.nrows}"/></SimpleSource>'
        for t in items)
    return (f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
            f"<SRS>{escape(crs_wkt)}</SRS>"
            f"<GeoTransform>{grid.x0!r}, {grid.res!r}, 0.0, {grid.y1!r}, 0.0, {-grid.res!r}</GeoTransform>"
            f'<VRTRasterBand dataType="Float32" band="1"><NoDataValue>{NODATA}</NoDataValue>{sources}'
            "</VRTRasterBand></VRTDataset>\n")


def write_vrt(items: list[TileFile | None], *, grid: GridSpec, crs_wkt: str, out: str, tiles: int,
              product: str) -> dict:
    """Reduce: the VRT over the tiles written (tiles with no data have no file); the run's summary."""
    done = sorted(filter(None, items), key=lambda t: (t.row0, t.col0))
    folder = tile_folder(out)
    with atomic_output(out) as tmp:
        with open(tmp, "w") as fh:
            fh.write(vrt_document(done, grid, crs_wkt, os.path.basename(folder)))
    lows = [t.z_min for t in done if t.z_min is not None]
    highs = [t.z_max for t in done if t.z_max is not None]
    uncertain = [t for t in done if t.uncertain]
    res = grid.res
    return {
        "product": product, "out": out, "tiles_folder": folder, "width": grid.width, "height": grid.height,
        "resolution": res, "tiles": tiles, "tiles_with_ground": len(done),
        "ground_points_triangulated": sum(t.ground for t in done),
        "max_tile_points": max((t.ground for t in done), default=0),
        "max_buffer_used": max((t.buffer for t in done), default=0.0),
        "uncertain_tiles": len(uncertain),
        "uncertain_cores": [(grid.x0 + t.col0 * res, grid.y1 - (t.row0 + t.nrows) * res,
                             grid.x0 + (t.col0 + t.ncols) * res, grid.y1 - t.row0 * res) for t in uncertain],
        "valid_fraction": sum(t.valid for t in done) / (grid.width * grid.height),
        "z_min": min(lows) if lows else None, "z_max": max(highs) if highs else None,
    }


def is_vrt(out: str) -> bool:
    """Whether ``out`` asks for per-tile files and a VRT."""
    return os.fspath(out).lower().endswith(VRT_SUFFIX)
