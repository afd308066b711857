"""Per-cell statistics of points on the global grid: highest return (DSM) and point counts (density).

A read task reduces its points to one partial block per tile core (cells and
values); the tile's task merges the partials. Max and sum do not depend on
the order or grouping of the points, so any tiling or partitioning gives the
same raster bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import GridSpec, Tile, TileLattice, owner_tiles


@dataclass(frozen=True)
class CellPart:
    """A partial statistic over some points of one tile core: flat cell indices (row * ncols + col) and values."""

    how: str  # "max": highest z; "count": number of points
    cells: np.ndarray  # int64, unique
    values: np.ndarray  # float64


def cell_parts(x: np.ndarray, y: np.ndarray, z: np.ndarray, tiles: TileLattice, grid: GridSpec, how: str
               ) -> list[tuple[int, CellPart]]:
    """Reduce points to one :class:`CellPart` per tile whose core holds some of them.

    A point on the grid's east or south edge (the data's bounds can fall on a
    cell boundary) counts in the edge cell, as ``owner_tiles`` places it.
    """
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    col = np.clip(np.floor((x - grid.x0) / grid.res).astype(np.int64), 0, grid.width - 1)
    row = np.clip(np.floor((grid.y1 - y) / grid.res).astype(np.int64), 0, grid.height - 1)
    if not len(x):
        return []
    owner = owner_tiles(x, y, tiles, grid)
    out = []
    for t in np.unique(owner):
        mine = owner == t
        tile = tiles[t]
        flat = (row[mine] - tile.row0) * tile.ncols + (col[mine] - tile.col0)
        cells, inverse = np.unique(flat, return_inverse=True)
        values = np.zeros(len(cells)) if how == "count" else np.full(len(cells), -np.inf)
        if how == "count":
            np.add.at(values, inverse, 1.0)
        else:
            np.maximum.at(values, inverse, z[mine])
        out.append((int(t), CellPart(how, cells, values)))
    return out


def merge_parts(parts: list[CellPart], tile: Tile, how: str) -> np.ndarray:
    """The tile core's block (float32, rows x cols) from its partials: highest z (NaN where empty) or counts."""
    flat = np.zeros(tile.nrows * tile.ncols) if how == "count" else np.full(tile.nrows * tile.ncols, -np.inf)
    for part in parts:
        if part.how != how:
            continue
        if how == "count":
            np.add.at(flat, part.cells, part.values)
        else:
            np.maximum.at(flat, part.cells, part.values)
    if how == "max":
        flat[np.isinf(flat)] = np.nan
    return flat.reshape(tile.nrows, tile.ncols).astype(np.float32)
