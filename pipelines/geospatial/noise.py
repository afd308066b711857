"""Low-noise detection before the ground filter: the Extended Local Minimum (ELM).

Chen, Devereux, Gao & Amable (2012, ISPRS J. 72:121-130), as PDAL's
``filters.elm`` applies it: the points of each grid cell are taken from the
lowest up; while a point lies at least ``threshold`` below the next one, it
is noise. A lone return far below the ground (multipath, a bird's shadow)
would otherwise pull the minimum surface SMRF starts from down into a pit.
Cells are aligned to a global origin, so a tile that holds all points of a
cell labels them as an untiled run does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ASPRS class of low noise, given to the points ELM rejects.
NOISE_CLASS = 7


@dataclass(frozen=True)
class ElmParams:
    """ELM parameters in map units; the defaults are PDAL's (cell 10 m, threshold 1 m).

    Attributes
    ----------
    cell : side of the cells whose lowest points are tested (horizontal unit).
    threshold : gap to the next point up that makes a point noise (vertical unit).
    """

    cell: float = 10.0
    threshold: float = 1.0

    @classmethod
    def for_unit(cls, horizontal: float, vertical: float | None = None) -> "ElmParams":
        """The defaults converted from metres to map units of ``horizontal`` / ``vertical`` metres."""
        vertical = horizontal if vertical is None else vertical
        return cls(cls.cell / horizontal, cls.threshold / vertical)

    def __post_init__(self) -> None:
        if not (self.cell > 0 and self.threshold > 0):
            raise ValueError(f"ELM cell and threshold must be > 0, got {self.cell} and {self.threshold}")


def elm_noise(x: np.ndarray, y: np.ndarray, z: np.ndarray, params: ElmParams = ElmParams(),
              origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Flag low outliers (True) cell by cell.

    Parameters
    ----------
    x, y, z : point coordinates.
    params : ELM cell and threshold.
    origin : a point on the cell lattice (the global grid origin in a tiled job).

    Returns
    -------
    Boolean array, True for noise. Within a cell, the points below the first
    gap smaller than ``threshold`` (counting from the lowest) are noise; the
    highest point of a cell never is.
    """
    noise = np.zeros(len(x), dtype=bool)
    if len(x) < 2:
        return noise
    col = np.floor((np.asarray(x, float) - origin[0]) / params.cell).astype(np.int64)
    row = np.floor((np.asarray(y, float) - origin[1]) / params.cell).astype(np.int64)
    zs = np.asarray(z, float)
    cell = (col - col.min()) * (row.max() - row.min() + 1) + (row - row.min())  # ordered as (col, row)
    order = np.lexsort((zs, cell))
    cell, zs = cell[order], zs[order]
    same_cell = cell[1:] == cell[:-1]
    # Point i is noise when no gap from its cell's lowest point up to i is narrow (a cell's top always is).
    narrow = np.r_[~(same_cell & (zs[1:] - zs[:-1] >= params.threshold)), True]
    seen = np.cumsum(narrow)
    first = np.r_[True, ~same_cell]
    before_cell = np.r_[0, seen][np.flatnonzero(first)][np.cumsum(first) - 1]
    noise[order] = seen == before_cell
    return noise
