"""Inverse-distance weighting of ground points at cell centres (lidR's ``knnidw``: k 10, power 2, rmax 50 m).

Each cell takes the k nearest ground points within ``rmax`` (every point tied
at the k-th distance included, so the choice does not depend on which points
a tile was given), weighted by 1 / d^power and summed in a fixed order
(distance, then x, y, z), so a tile holding every ground point within
``rmax`` of its core reproduces an untiled run bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .grid import GridSpec
from .tin import Block


@dataclass(frozen=True)
class IdwParams:
    """IDW parameters: neighbours, power and search radius (map units; default 50 m)."""

    k: int = 10
    power: float = 2.0
    rmax: float = 50.0

    def __post_init__(self) -> None:
        if self.k < 1 or not self.power > 0 or not self.rmax > 0:
            raise ValueError(f"IDW needs k >= 1, power > 0 and rmax > 0, got {self.k}, {self.power}, {self.rmax}")


def idw_grid(x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: GridSpec, block: Block,
             params: IdwParams = IdwParams()) -> np.ndarray:
    """The block's cells (float32, NaN where no point lies within ``rmax``) by IDW of the given points."""
    out = np.full((block.nrows, block.ncols), np.nan, dtype=np.float32)
    if not len(x):
        return out
    pts = np.column_stack([np.asarray(x, float) - grid.x0, np.asarray(y, float) - grid.y1])
    z = np.asarray(z, float)
    rows, cols = np.mgrid[block.row0 : block.row0 + block.nrows, block.col0 : block.col0 + block.ncols]
    centres = np.column_stack([((cols + 0.5) * grid.res).ravel(), (-(rows + 0.5) * grid.res).ravel()])
    tree = cKDTree(pts)
    values = np.concatenate([_cells(tree, centres[i : i + CHUNK_CELLS], pts, z, params)
                             for i in range(0, len(centres), CHUNK_CELLS)])
    out[:] = values.reshape(block.nrows, block.ncols)
    return out


#: Cells interpolated at once (bounds the neighbour arrays: a few tens of MB).
CHUNK_CELLS = 65_536


def _cells(tree: cKDTree, centres: np.ndarray, pts: np.ndarray, z: np.ndarray, params: IdwParams) -> np.ndarray:
    """IDW values at ``centres`` (NaN where no point lies within rmax)."""
    k = min(params.k, len(pts))
    todo = np.arange(len(centres))
    values = np.full(len(centres), np.nan)
    want = min(2 * k, len(pts))
    while len(todo):
        dist, idx = tree.query(centres[todo], k=want, distance_upper_bound=params.rmax)
        dist, idx = dist.reshape(len(todo), want), idx.reshape(len(todo), want)
        kth = dist[:, k - 1 : k]
        use = np.isfinite(dist) & (dist <= kth)
        use |= np.isfinite(dist) & np.isinf(kth)  # fewer than k points within rmax: all of them
        more = use[:, -1] & (want < len(pts))  # ties may continue past the last column asked for
        done = ~more
        values[todo[done]] = _weighted(dist[done], idx[done], use[done], pts, z, params.power)
        todo = todo[more]
        want = min(2 * want, len(pts))
    return values


def _weighted(dist: np.ndarray, idx: np.ndarray, use: np.ndarray, pts: np.ndarray, z: np.ndarray, power: float
              ) -> np.ndarray:
    """Per row: the IDW value of its used neighbours, summed in (distance, x, y, z) order; NaN when none."""
    safe = np.where(use, idx, 0)
    px, py, pz = pts[safe, 0], pts[safe, 1], z[safe]
    d = np.where(use, dist, np.inf)
    order = np.lexsort((pz, py, px, d), axis=1) if d.shape[1] else np.zeros(d.shape, int)
    d, pz, use = (np.take_along_axis(a, order, axis=1) for a in (d, pz, use))
    exact = use & (d == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(use, 1.0 / np.where(d > 0, d, 1.0) ** power, 0.0)
        value = np.cumsum(w * np.where(use, pz, 0.0), axis=1)[:, -1] / np.cumsum(w, axis=1)[:, -1]
        at_point = np.cumsum(np.where(exact, pz, 0.0), axis=1)[:, -1] / exact.sum(axis=1)
    value = np.where(exact.any(axis=1), at_point, value)
    return np.where(use.any(axis=1), value, np.nan)
