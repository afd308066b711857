"""The output grid and its tiles: one global lattice shared by every task.

The grid origin is snapped to the resolution (x0 = floor(xmin/res)*res,
y1 = ceil(ymax/res)*res) so tiles from any run, with any tile size, put their
cells on the same lattice and a mosaic needs no resampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rasterio.transform import Affine, from_origin

from cloudbutton.core.errors import InputError

#: Largest output grid accepted (cells); 500 M float32 cells is a 2 GB raster.
MAX_CELLS = 500_000_000
#: Largest number of tiles (tasks) accepted for one job.
MAX_TILES = 100_000


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


def plan_grid(bounds: tuple[float, float, float, float], res: float, max_cells: int = MAX_CELLS) -> GridSpec:
    """Snap a grid of cell size ``res`` over ``bounds`` (xmin, ymin, xmax, ymax).

    Raises InputError before any work starts when the grid would be absurd.
    """
    if not (res > 0 and math.isfinite(res)):
        raise InputError("--resolution", f"must be a positive number, got {res}")
    xmin, ymin, xmax, ymax = bounds
    x0 = math.floor(xmin / res) * res
    y1 = math.ceil(ymax / res) * res
    width = max(1, math.ceil((xmax - x0) / res))
    height = max(1, math.ceil((y1 - ymin) / res))
    if width * height > max_cells:
        raise InputError(
            "--resolution",
            f"{res} gives a {width} x {height} grid ({width * height:,} cells > {max_cells:,}); use a coarser resolution",
        )
    return GridSpec(x0=x0, y1=y1, res=res, width=width, height=height)


def plan_tiles(grid: GridSpec, tile_size: float, buffer: float) -> list[Tile]:
    """Cut ``grid`` into square tiles of about ``tile_size`` map units, row-major.

    Each tile's core is a whole number of cells; it reads ``buffer`` map units
    beyond its core so that triangles at the core edge are the same as in an
    untiled run.
    """
    if not (tile_size > 0 and math.isfinite(tile_size)):
        raise InputError("--tile-size", f"must be a positive number, got {tile_size}")
    if not (buffer >= 0 and math.isfinite(buffer)):
        raise InputError("--buffer", f"must be >= 0, got {buffer}")
    step = max(1, round(tile_size / grid.res))
    nx, ny = math.ceil(grid.width / step), math.ceil(grid.height / step)
    if nx * ny > MAX_TILES:
        raise InputError("--tile-size", f"{tile_size} gives {nx * ny:,} tiles (> {MAX_TILES:,}); use larger tiles")
    tiles = []
    for j in range(ny):
        for i in range(nx):
            col0, row0 = i * step, j * step
            ncols, nrows = min(step, grid.width - col0), min(step, grid.height - row0)
            xmin = grid.x0 + col0 * grid.res
            ymax = grid.y1 - row0 * grid.res
            core = (xmin, ymax - nrows * grid.res, xmin + ncols * grid.res, ymax)
            read = (core[0] - buffer, core[1] - buffer, core[2] + buffer, core[3] + buffer)
            tiles.append(Tile(col0, row0, ncols, nrows, core, read))
    return tiles
