"""Height above ground per point: z minus the DTM, bilinear between the four DTM cell centres around it.

The DTM cells are the certified TIN values of the global grid, identical in
every tile, so a point's height does not depend on the tiling. A tile grids
its core plus one ring of cells, which covers the four cells around every
point of its core.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import laspy
import numpy as np

from cloudbutton.core.storage import atomic_output, open_input

from .grid import GridSpec, TileLattice
from .lasio import CHUNK_POINTS, LAZ_BACKEND, LasSource, Points
from .tin import Block, tin_grid

#: Name of the extra dimension written (PDAL's and lidR's name).
HAG_DIMENSION = "HeightAboveGround"


@dataclass(frozen=True)
class Targets:
    """The points of one tile core whose height above ground is wanted."""

    points: Points


def bilinear(dtm: np.ndarray, block: Block, grid: GridSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DTM height at (x, y) from the four surrounding cell centres of ``dtm`` (cells ``block`` of ``grid``).

    Corners without data are left out and the weights renormalised; NaN when none has data.
    """
    fc = (np.asarray(x, float) - grid.x0) / grid.res - 0.5 - block.col0
    fr = (grid.y1 - np.asarray(y, float)) / grid.res - 0.5 - block.row0
    c0, r0 = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
    tc, tr = fc - c0, fr - r0
    total, weight = np.zeros(len(fc)), np.zeros(len(fc))
    for dr, dc, w in ((0, 0, (1 - tr) * (1 - tc)), (0, 1, (1 - tr) * tc), (1, 0, tr * (1 - tc)), (1, 1, tr * tc)):
        r, c = np.clip(r0 + dr, 0, block.nrows - 1), np.clip(c0 + dc, 0, block.ncols - 1)
        z = dtm[r, c].astype(float)
        ok = np.isfinite(z) & (r0 + dr >= 0) & (r0 + dr < block.nrows) & (c0 + dc >= 0) & (c0 + dc < block.ncols)
        total += np.where(ok, z * w, 0.0)
        weight += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan)


def hag_tile(groups: dict[int, list], *, tiles: TileLattice, grid: GridSpec, halo: float,
             extent: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """File indices and heights above ground of one tile core's points (from its ground points within ``halo``)."""
    if not groups:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    (index, items), = groups.items()
    targets = Points.concat([i.points for i in items if isinstance(i, Targets)])
    ground = Points.concat([i for i in items if isinstance(i, Points)])
    if not len(targets):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    tile = tiles[index]
    col0, row0 = max(tile.col0 - 1, 0), max(tile.row0 - 1, 0)
    block = Block(col0, row0, min(tile.col0 + tile.ncols + 1, grid.width) - col0,
                  min(tile.row0 + tile.nrows + 1, grid.height) - row0)
    pad = grid.res
    window = (tile.read[0] - pad, tile.read[1] - pad, tile.read[2] + pad, tile.read[3] + pad)
    limit = (tile.core[0] - halo, tile.core[1] - halo, tile.core[2] + halo, tile.core[3] + halo)
    dtm = tin_grid(ground.x, ground.y, ground.z, grid, block, window=window, limit=limit, extent=extent).dem
    height = targets.z - bilinear(dtm, block, grid, targets.x, targets.y)
    return targets.index, height.astype(np.float32)


def write_hag(items: list[tuple[np.ndarray, np.ndarray]], *, source: LasSource, out: str, compress: bool) -> dict:
    """Copy the input with a float32 ``HeightAboveGround`` extra dimension (NaN: withheld, or no ground under it)."""
    index = np.concatenate([i for i, _ in items]) if items else np.zeros(0, np.int64)
    height = np.concatenate([h for _, h in items]) if items else np.zeros(0, np.float32)
    order = np.argsort(index, kind="stable")
    index, height = index[order], height[order]
    with open_input(source.uri) as path, laspy.open(path, laz_backend=LAZ_BACKEND) as reader, atomic_output(out) as tmp:
        header = copy.deepcopy(reader.header)  # CRS, GUID, encoding bits and (E)VLRs as they were
        header.add_extra_dims([laspy.ExtraBytesParams(name=HAG_DIMENSION, type=np.float32)])
        with laspy.open(tmp, mode="w", header=header, do_compress=compress, laz_backend=LAZ_BACKEND) as writer:
            start = 0
            for record in reader.chunk_iterator(CHUNK_POINTS):
                n = len(record)
                points = laspy.ScaleAwarePointRecord.zeros(n, header=header)
                for name in record.point_format.dimension_names:
                    points[name] = record[name]
                values = np.full(n, np.nan, dtype=np.float32)
                lo, hi = np.searchsorted(index, [start, start + n])
                values[index[lo:hi] - start] = height[lo:hi]
                points[HAG_DIMENSION] = values
                writer.write_points(points)
                start += n
    known = np.isfinite(height)
    return {"out": out, "points": source.count, "with_height": int(known.sum()),
            "max_height": float(height[known].max()) if known.any() else None}
