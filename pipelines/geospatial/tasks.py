"""Task functions of the geospatial stage graphs (module-level, pure, picklable).

``dem_tile`` and ``classify_tile`` run once per tile on any executor;
``mosaic`` and ``write_classes`` are the reduce steps that assemble the outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import laspy
import numpy as np

from cloudbutton.core.storage import atomic_output, open_input

from .grid import GridSpec, Tile
from .lasio import CHUNK_POINTS, LAZ_BACKEND, LasSource, Points, read_points
from .raster import write_cog, write_hillshade_png
from .smrf import SmrfParams, smrf_ground
from .tin import tin_block

#: Classes used as ground by ``ground="class"`` (ground, water), as lidR does.
GROUND_CLASSES = (2, 9)
#: Classes never used by SMRF (ASPRS low and high noise).
NOISE_CLASSES = (7, 18)


#: A tile whose TIN is not certified against its window re-reads a larger
#: window, up to this multiple of the requested buffer.
MAX_BUFFER_GROWTH = 4


@dataclass(frozen=True)
class TileDem:
    """The core cells of one tile and a few QA counts."""

    col0: int
    row0: int
    dem: np.ndarray  # float32 (nrows, ncols), NaN = no data
    points: int
    ground: int
    buffer: float  # largest distance read beyond the core
    uncertain: bool  # some core cell could still differ from an untiled run


def _read_tile(window: tuple[float, float, float, float], sources: list[LasSource]) -> Points:
    return Points.concat([read_points(src, window, i) for i, src in enumerate(sources)])


def ground_mask(pts: Points, ground: str, smrf: SmrfParams, grid: GridSpec) -> np.ndarray:
    """Which points are ground: existing classes 2/9, or SMRF on last/only returns.

    SMRF cells are aligned to the global grid origin so tiles agree with each other.
    """
    if ground == "class":
        return np.isin(pts.classification, GROUND_CLASSES)
    work = pts.last & ~np.isin(pts.classification, NOISE_CLASSES)
    mask = np.zeros(len(pts.x), dtype=bool)
    mask[work] = smrf_ground(pts.x[work], pts.y[work], pts.z[work], smrf, origin=(grid.x0, grid.y1))
    return mask


def smrf_margin(smrf: SmrfParams) -> float:
    """Extra distance read around a window so SMRF sees what an untiled run sees there.

    An opening of radius W reaches 2 W; a few more cells cover the inpainting
    and the spline used for the final test.
    """
    return 2 * smrf.window + 4 * smrf.cell


def _grow(bounds: tuple[float, float, float, float], by: float) -> tuple[float, float, float, float]:
    return (bounds[0] - by, bounds[1] - by, bounds[2] + by, bounds[3] + by)


def dem_tile(
    tile: Tile,
    *,
    sources: list[LasSource],
    grid: GridSpec,
    ground: str,
    smrf: SmrfParams,
    extent: tuple[float, float, float, float],
) -> TileDem:
    """Read tile + buffer, find ground, triangulate, keep the core cells.

    When a core cell lies in a triangle whose circumcircle reaches beyond the
    points read (so an untiled run could triangulate differently), the tile
    is redone once with the window grown to cover those circles, up to
    MAX_BUFFER_GROWTH times the requested buffer. A zero buffer is never grown.
    """
    buffer = tile.core[0] - tile.read[0]
    window, limit = tile.read, _grow(tile.core, buffer * MAX_BUFFER_GROWTH)
    while True:
        pts = _read_tile(_grow(window, smrf_margin(smrf) if ground == "smrf" else 0.0), sources)
        mask = ground_mask(pts, ground, smrf, grid)
        mask &= (pts.x >= window[0]) & (pts.x <= window[2]) & (pts.y >= window[1]) & (pts.y <= window[3])
        block, need = tin_block(
            pts.x[mask], pts.y[mask], pts.z[mask], grid, tile.col0, tile.row0, tile.ncols, tile.nrows, window, extent
        )
        grown = window if need is None or buffer <= 0 else (
            max(min(window[0], need[0]), limit[0]), max(min(window[1], need[1]), limit[1]),
            min(max(window[2], need[2]), limit[2]), min(max(window[3], need[3]), limit[3]),
        )
        if grown == window:
            used = max(tile.core[0] - window[0], tile.core[1] - window[1], window[2] - tile.core[2],
                       window[3] - tile.core[3])
            return TileDem(tile.col0, tile.row0, block, int(len(pts.x)), int(mask.sum()), used, need is not None)
        window = grown


def assemble(items: list[TileDem], grid: GridSpec) -> np.ndarray:
    """Place tile cores onto the full grid (NaN where nothing was computed)."""
    dem = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    for item in items:
        nrows, ncols = item.dem.shape
        dem[item.row0 : item.row0 + nrows, item.col0 : item.col0 + ncols] = item.dem
    return dem


def mosaic(items: list[TileDem], *, grid: GridSpec, crs_wkt: str, out: str, hillshade: str | None) -> dict:
    """Write the assembled DEM as a COG (and optional hillshade PNG); return a summary."""
    dem = assemble(items, grid)
    write_cog(out, dem, grid, crs_wkt)
    if hillshade:
        write_hillshade_png(hillshade, dem, grid.res)
    valid = np.isfinite(dem)
    return {
        "out": out,
        "width": grid.width,
        "height": grid.height,
        "resolution": grid.res,
        "tiles": len(items),
        "points_read": sum(i.points for i in items),
        "max_tile_points": max((i.points for i in items), default=0),
        "max_buffer_used": max((i.buffer for i in items), default=0.0),
        "uncertain_tiles": sum(i.uncertain for i in items),
        "ground_points_read": sum(i.ground for i in items),
        "valid_fraction": float(valid.mean()),
        "z_min": float(np.nanmin(dem)) if valid.any() else None,
        "z_max": float(np.nanmax(dem)) if valid.any() else None,
    }


def classify_tile(tile: Tile, *, sources: list[LasSource], grid: GridSpec, smrf: SmrfParams) -> np.ndarray:
    """Indices (in the file) of the ground points whose cell lies in this tile's core.

    Every point belongs to exactly one core (by its grid cell), so the tiles'
    answers together cover the file once.
    """
    pts = _read_tile(tile.read, sources)
    mask = ground_mask(pts, "smrf", smrf, grid)
    col = np.clip(np.floor((pts.x - grid.x0) / grid.res).astype(np.int64), 0, grid.width - 1)
    row = np.clip(np.floor((grid.y1 - pts.y) / grid.res).astype(np.int64), 0, grid.height - 1)
    core = (col >= tile.col0) & (col < tile.col0 + tile.ncols) & (row >= tile.row0) & (row < tile.row0 + tile.nrows)
    return np.sort(pts.index[mask & core])


def write_classes(items: list[np.ndarray], *, source: LasSource, out: str, compress: bool) -> dict:
    """Copy the input with classification 2 (ground) or 1 (other), points in their original order."""
    ground = np.unique(np.concatenate(items)) if items else np.zeros(0, np.int64)
    with open_input(source.uri) as path, laspy.open(path, laz_backend=LAZ_BACKEND) as reader, atomic_output(out) as tmp:
        with laspy.open(tmp, mode="w", header=reader.header, do_compress=compress, laz_backend=LAZ_BACKEND) as writer:
            start = 0
            for record in reader.chunk_iterator(CHUNK_POINTS):
                n = len(record)
                cls = np.ones(n, dtype=np.uint8)
                lo, hi = np.searchsorted(ground, [start, start + n])
                cls[ground[lo:hi] - start] = 2
                record.classification = cls
                writer.write_points(record)
                start += n
    return {"out": out, "points": source.count, "ground": int(ground.size)}
