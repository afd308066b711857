"""The output grid and its tiles: one global lattice shared by every task.

The grid origin is snapped to the resolution (x0 = floor(xmin/res)*res,
y1 = ceil(ymax/res)*res) so tiles from any run, with any tile size, put their
cells on the same lattice and a mosaic needs no resampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rasterio.transform import Affine, from_origin

from cloudbutton.core.errors import InputError

#: Largest output grid accepted (cells); 500 M float32 cells is a 2 GB raster.
MAX_CELLS = 500_000_000
#: Largest number of tiles (tasks) accepted for one job writing one GeoTIFF.
MAX_TILES = 100_000
#: Limits when every tile writes its own file (a VRT output): no raster is ever whole in memory.
MAX_TILED_CELLS, MAX_TILED_TILES = 10**12, 2_000_000


@dataclass(frozen=True)
class GridSpec:
    """A north-up raster lattice: top-left corner, cell size and shape."""

    x0: float
    y1: float
    res: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        """Affine transform of the whole grid (rasterio convention)."""
        return from_origin(self.x0, self.y1, self.res, self.res)


@dataclass(frozen=True)
class Tile:
    """One task's block of the grid: core cells and the buffered area it reads."""

    col0: int
    row0: int
    ncols: int
    nrows: int
    core: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax of the core cells
    read: tuple[float, float, float, float]  # core grown by the buffer


def plan_grid(bounds: tuple[float, float, float, float], res: float, max_cells: int = MAX_CELLS,
              option: str = "--resolution") -> GridSpec:
    """Snap a grid of cell size ``res`` over ``bounds`` (xmin, ymin, xmax, ymax).

    Raises InputError (naming ``option``) before any work starts when the
    grid would be absurd: fewer than 2 x 2 cells, or more than ``max_cells``.
    """
    if not (res > 0 and math.isfinite(res)):
        raise InputError(option, f"must be a positive number, got {res}")
    xmin, ymin, xmax, ymax = bounds
    x0 = math.floor(xmin / res) * res
    y1 = math.ceil(ymax / res) * res
    width = max(1, math.ceil((xmax - x0) / res))
    height = max(1, math.ceil((y1 - ymin) / res))
    if width < 2 or height < 2:
        raise InputError(option, f"{res} gives a {width} x {height} grid over {xmax - xmin:g} x {ymax - ymin:g} "
                         "map units; at least 2 x 2 cells are needed: use a finer resolution")
    if width * height > max_cells:
        raise InputError(
            option,
            f"{res} gives a {width} x {height} grid ({width * height:,} cells > {max_cells:,}); use a coarser resolution",
        )
    return GridSpec(x0=x0, y1=y1, res=res, width=width, height=height)


@dataclass(frozen=True)
class TileLattice:
    """The tiles of a grid as a few numbers: a row-major lattice of equal tiles (the last row and column
    cut by the grid's edge), each reading ``buffer`` map units around its core.

    Behaves as a sequence of :class:`Tile` (``len``, index, iteration), but a task receives these few
    numbers, not a list: with 100,000 tiles a list pickled to every task weighs megabytes.
    """

    grid: GridSpec
    step_c: int  # core columns per tile
    step_r: int  # core rows per tile
    nx: int  # tiles per row
    ny: int  # tile rows
    buffer: float

    def __len__(self) -> int:
        return self.nx * self.ny

    def __getitem__(self, index: int) -> Tile:
        if not 0 <= index < len(self):
            raise IndexError(index)
        j, i = divmod(int(index), self.nx)
        xmin, ymin, xmax, ymax = (float(v) for v in self.cores(np.array([i]), np.array([j]))[0])
        col0, row0 = i * self.step_c, j * self.step_r
        b = self.buffer
        return Tile(col0, row0, min(self.step_c, self.grid.width - col0), min(self.step_r, self.grid.height - row0),
                    (xmin, ymin, xmax, ymax), (xmin - b, ymin - b, xmax + b, ymax + b))

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def cores(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Core bounds (n, 4: xmin, ymin, xmax, ymax) of the tiles in column ``i`` and row ``j``."""
        g = self.grid
        col0, row0 = i * self.step_c, j * self.step_r
        ncols, nrows = np.minimum(self.step_c, g.width - col0), np.minimum(self.step_r, g.height - row0)
        xmin = g.x0 + col0 * g.res
        ymax = g.y1 - row0 * g.res
        return np.column_stack([xmin, ymax - nrows * g.res, xmin + ncols * g.res, ymax])


def plan_tiles(grid: GridSpec, tile_size: float, buffer: float, max_tiles: int = MAX_TILES) -> TileLattice:
    """Cut ``grid`` into tiles of about ``tile_size`` map units, row-major.

    Each axis gets round(extent / tile_size) tiles (at least one) of equal
    width, so no thin sliver tile pays a full buffer and margin for a few
    cells: sides stay within 0.75-1.5 x ``tile_size`` (smaller when the grid
    is). Each tile's core is a whole number of cells; its TIN starts from the
    points within ``buffer`` map units of the core (``read``), so that
    triangles at the core edge are the same as in an untiled run.
    """
    if not (tile_size > 0 and math.isfinite(tile_size)):
        raise InputError("--tile-size", f"must be a positive number, got {tile_size}")
    if not (buffer >= 0 and math.isfinite(buffer)):
        raise InputError("--buffer", f"must be >= 0, got {buffer}")
    cells = tile_size / grid.res
    nx, ny = min(max(1, round(grid.width / cells)), grid.width), min(max(1, round(grid.height / cells)), grid.height)
    step_c, step_r = math.ceil(grid.width / nx), math.ceil(grid.height / ny)
    nx, ny = math.ceil(grid.width / step_c), math.ceil(grid.height / step_r)
    if nx * ny > max_tiles:
        raise InputError("--tile-size", f"{tile_size} gives {nx * ny:,} tiles (> {max_tiles:,}); use larger tiles")
    return TileLattice(grid, step_c, step_r, nx, ny, float(buffer))


def owner_tiles(x: np.ndarray, y: np.ndarray, tiles: TileLattice, grid: GridSpec) -> np.ndarray:
    """Index of the tile whose core holds each point's grid cell (points outside go to the nearest cell)."""
    col = np.clip(np.floor((np.asarray(x) - grid.x0) / grid.res).astype(np.int64), 0, grid.width - 1)
    row = np.clip(np.floor((grid.y1 - np.asarray(y)) / grid.res).astype(np.int64), 0, grid.height - 1)
    return (row // tiles.step_r) * tiles.nx + col // tiles.step_c


def tiles_reaching(x: np.ndarray, y: np.ndarray, tiles: TileLattice, grid: GridSpec, reach: float
                   ) -> list[tuple[int, np.ndarray]]:
    """Which points each tile needs: those within ``reach`` of its core (bounds inclusive).

    Returns (tile index, point indices) for every tile that needs at least
    one point, in tile order; a point near a corner goes to several tiles.
    Candidate tiles come from the lattice arithmetic, so the cost follows the
    points, not the number of tiles.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not len(tiles) or not len(x):
        return []
    nx, ny = tiles.nx, tiles.ny
    span_x, span_y = tiles.step_c * grid.res, tiles.step_r * grid.res
    eps = 1e-9  # candidate tiles from the lattice, widened against rounding; the exact test below decides
    i0 = np.clip(np.floor((x - grid.x0 - reach) / span_x - eps).astype(np.int64), 0, nx - 1)
    i1 = np.clip(np.floor((x - grid.x0 + reach) / span_x + eps).astype(np.int64), 0, nx - 1)
    j0 = np.clip(np.floor((grid.y1 - y - reach) / span_y - eps).astype(np.int64), 0, ny - 1)
    j1 = np.clip(np.floor((grid.y1 - y + reach) / span_y + eps).astype(np.int64), 0, ny - 1)
    # Core edges per lattice column and per row (the same arithmetic as ``cores``, done once per tile).
    columns = tiles.cores(np.arange(nx), np.zeros(nx, dtype=np.int64))
    rows = tiles.cores(np.zeros(ny, dtype=np.int64), np.arange(ny))
    west, east, south, north = columns[:, 0] - reach, columns[:, 2] + reach, rows[:, 1] - reach, rows[:, 3] + reach
    hits_t, hits_p = [], []
    for dj in range(int((j1 - j0).max()) + 1):
        for di in range(int((i1 - i0).max()) + 1):
            i, j = i0 + di, j0 + dj
            cand = np.flatnonzero((i <= i1) & (j <= j1))
            ic, jc, xc, yc = i[cand], j[cand], x[cand], y[cand]
            ok = np.flatnonzero((xc >= west[ic]) & (xc <= east[ic]) & (yc >= south[jc]) & (yc <= north[jc]))
            hits_t.append(jc[ok] * nx + ic[ok])
            hits_p.append(cand[ok])
    tile_of, point = np.concatenate(hits_t), np.concatenate(hits_p)
    if not len(point):
        return []
    order = np.lexsort((point, tile_of))
    tile_of, point = tile_of[order], point[order]
    cuts = np.flatnonzero(np.diff(tile_of)) + 1
    return [(int(tile_of[a]), point[a:b]) for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(point)])]
