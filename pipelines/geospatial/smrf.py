"""Simple Morphological Filter (SMRF) ground classification.

Follows Pingel, Clarke & McBride (2013, ISPRS J. 77:21-30) as PDAL's
``filters.smrf`` implements it (PDAL's defaults; each point is tested
against the provisional surface and slope of the cell it falls in), with
one change that won on every ISPRS site we hold (leave-one-site-out, see
the README): the paper's disk-shaped structuring element instead of
PDAL's diamond (``element="diamond"`` gives PDAL's). The paper's other
refinement, a cubic spline of the surface at each point, lost on one site
and is left out. The minimum-surface grid can be anchored to a global
origin so that tiles of a larger job see the same cells as an untiled run.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree


#: Horizontal lengths, vertical lengths and rise-over-run ratios among the SMRF parameters.
HORIZONTAL, VERTICAL, RATIOS = ("cell", "window"), ("threshold", "scalar"), ("slope",)
#: Structuring elements: the paper's disk, or PDAL's diamond (|dx| + |dy| <= r).
ELEMENTS = ("disk", "diamond")


@dataclass(frozen=True)
class SmrfParams:
    """SMRF parameters in map units; the defaults are PDAL's (Pingel's single set), in metres.

    Attributes
    ----------
    cell : grid cell size of the minimum surface.
    slope : terrain slope (rise over run) tolerated by the morphological filter.
    window : maximum structuring-element radius, in map units.
    threshold : elevation threshold for the final ground test (vertical unit).
    scalar : elevation added to the threshold per unit of local slope (vertical unit).
    element : structuring element, ``"disk"`` (the paper's) or ``"diamond"`` (PDAL's).
    """

    cell: float = 1.0
    slope: float = 0.15
    window: float = 18.0
    threshold: float = 0.5
    scalar: float = 1.25
    element: str = "disk"

    @classmethod
    def for_unit(cls, horizontal: float, vertical: float | None = None, **given: float | None) -> "SmrfParams":
        """The defaults converted from metres to map units, then ``given`` values (map units).

        ``horizontal`` and ``vertical`` are the metres per map unit of x/y and
        of z (``vertical`` defaults to ``horizontal``). On a CRS in feet this
        gives a 3.28 ft cell, a 59 ft window and a 1.64 ft threshold: the
        filter the defaults describe, not one 3.28 times smaller; with z in
        feet over metres the slope becomes 0.49 ft per metre.
        """
        vertical = horizontal if vertical is None else vertical
        scale = {**{n: 1 / horizontal for n in HORIZONTAL}, **{n: 1 / vertical for n in VERTICAL},
                 **{n: horizontal / vertical for n in RATIOS}}
        values = {f.name: f.default * scale[f.name] if f.name in scale else f.default for f in fields(cls)}
        values.update({name: value for name, value in given.items() if value is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("cell", "window", "threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SMRF {name} must be > 0, got {getattr(self, name)}")
        if self.slope < 0 or self.scalar < 0:
            raise ValueError("SMRF slope and scalar must be >= 0")
        if self.element not in ELEMENTS:
            raise ValueError(f"SMRF element must be one of {', '.join(ELEMENTS)}, not {self.element!r}")


#: Empty cells farther than this (in cells) from k filled ones are filled through a KD-tree.
RING_RADIUS = 8


@lru_cache(maxsize=4)
def _shells(radius: int) -> list[np.ndarray]:
    """Cell offsets (drow, dcol) within ``radius``, grouped by distance, nearest first."""
    d = np.arange(-radius, radius + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    d2 = dr * dr + dc * dc
    keep = (d2 > 0) & (d2 <= radius * radius)
    dr, dc, d2 = dr[keep], dc[keep], d2[keep]
    order = np.lexsort((dc, dr, d2))
    dr, dc, d2 = dr[order], dc[order], d2[order]
    cuts = np.flatnonzero(np.diff(d2)) + 1
    return [np.column_stack(part) for part in zip(np.split(dr, cuts), np.split(dc, cuts))]


def influence_cells(params: SmrfParams) -> int:
    """How far (in cells) a value can change SMRF's answer: two opening radii, plus the gradient and inpainting."""
    return 2 * int(np.ceil(params.window / params.cell)) + 4


def _knn_fill(grid: np.ndarray, near: np.ndarray | None = None, k: int = 8) -> np.ndarray:
    """Fill NaN cells with the mean value of their k nearest non-NaN cells.

    Empty cells outside ``near`` (too far from any point to change a
    classification) just take their nearest filled cell's value.

    Cells tied at the k-th distance are all included, so the result does not
    depend on which of several equidistant cells a search meets first (which
    would make tiles disagree with an untiled run). Neighbours are summed one
    ring of equal distance at a time, always in the same order: over the
    whole grid by shifted arrays while many cells are still open, then for
    the open cells alone; the few cells more than RING_RADIUS cells away from
    k filled ones go through a KD-tree.
    """
    out = grid.copy()
    empty = np.isnan(out)
    if not empty.any() or empty.all():
        return out
    k = min(k, int((~empty).sum()))
    todo = empty.copy()
    if near is not None and not near.all():
        from scipy import ndimage  # imported when used: a run with --ground class never needs it

        far = empty & ~near
        nearest = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
        out[far] = grid[nearest[0][far], nearest[1][far]]
        todo &= near
    rows, cols = grid.shape
    pad = RING_RADIUS
    width = cols + 2 * pad
    # Padded arrays, flat: a shift by (dr, dc) is one offset, and a sum over the grid one contiguous pass.
    values = np.pad(np.where(empty, 0.0, grid), pad).reshape(-1)
    filled = np.pad((~empty).astype(np.int32), pad).reshape(-1)
    first, last = pad * width + pad, (pad + rows - 1) * width + pad + cols  # the span from cell (0, 0) to the last
    sums, counts = np.zeros(len(values)), np.zeros(len(values), dtype=np.int32)
    total = sums.reshape(-1, width)[pad : pad + rows, pad : pad + cols]  # the grid's cells in them
    count = counts.reshape(-1, width)[pad : pad + rows, pad : pad + cols]
    shells = iter(_shells(pad))
    for shell in shells:  # whole-grid sums while many cells are open
        for dr, dc in shell:
            shift = dr * width + dc
            sums[first:last] += values[first + shift : last + shift]
            counts[first:last] += filled[first + shift : last + shift]
        hit = todo & (count >= k)
        np.divide(total, count, out=out, where=hit)
        todo &= ~hit
        if todo.sum() * 16 < todo.size:
            break
    tr, tc = np.nonzero(todo)
    total, count = total[tr, tc], count[tr, tc]
    at = (tr + pad) * width + tc + pad
    for shell in shells:  # the same sums, in the same order, for the open cells only
        if not len(tr):
            return out
        for dr, dc in shell:
            total += values[at + dr * width + dc]
            count += filled[at + dr * width + dc]
        hit = count >= k
        out[tr[hit], tc[hit]] = total[hit] / count[hit]
        tr, tc, at, total, count = tr[~hit], tc[~hit], at[~hit], total[~hit], count[~hit]
    if len(tr):
        out[tr, tc] = _knn_tree(grid, empty, np.column_stack([tr, tc]), k)
    return out


def _knn_tree(grid: np.ndarray, empty: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Tie-inclusive k-nearest mean for far-away cells, by KD-tree (values summed in sorted order)."""
    donors = np.argwhere(~empty).astype(float)
    values = grid[~empty]
    tree = cKDTree(donors, balanced_tree=False)  # faster to build; any tree finds the same neighbours
    filled = np.empty(len(targets))
    rows = np.arange(len(targets))
    for want in (2 * k, 8 * k, len(donors)):
        want = min(want, len(donors))
        dist, idx = tree.query(targets[rows].astype(float), k=want)
        dist, idx = dist.reshape(len(rows), want), idx.reshape(len(rows), want)
        use = dist <= dist[:, k - 1 : k] + 1e-9
        # A row whose every neighbour ties with the k-th may have more ties beyond: ask again.
        done = ~use[:, -1] | (want == len(donors))
        picked = np.sort(np.where(use[done], values[idx[done]], 0.0), axis=1)
        filled[rows[done]] = picked.sum(axis=1) / use[done].sum(axis=1)
        rows = rows[~done]
        if not len(rows):
            break
    return filled


def _disk_rank(grid: np.ndarray, radius: int, erode: bool) -> np.ndarray:
    """Grey erosion (or dilation) with a disk of ``radius`` cells.

    The disk is decomposed into one running min/max per row offset; the
    running min/max of width 2h+1 comes from the one of width 2h-1 by a
    min/max with its two neighbours, so the cost grows with the radius,
    not its square. Cells outside the grid are ignored. Each step runs
    over the whole grid as one flat array (one contiguous pass, ~4x faster
    than row by row); the first and last columns, which that pairs with
    the neighbouring rows, are then set from their own row.
    """
    pick = np.minimum if erode else np.maximum
    rows = grid.shape[0]
    halves = {dy: int(np.floor(np.sqrt(radius * radius - dy * dy))) for dy in range(min(radius, rows - 1) + 1)}
    wanted = set(halves.values())
    lines: dict[int, np.ndarray] = {}
    cur = np.ascontiguousarray(grid)
    for h in range(radius + 1):
        if h and grid.shape[1] > 1:
            # Window [i-h, i+h] = windows [i-h, i+h-2] and [i-h+2, i+h] (plus i itself when h = 1).
            nxt = np.empty_like(cur)
            flat, into = cur.reshape(-1), nxt.reshape(-1)
            pick(flat[:-2], flat[2:], out=into[1:-1])
            if h == 1:
                pick(into[1:-1], flat[1:-1], out=into[1:-1])
            pick(cur[:, 0], cur[:, 1], out=nxt[:, 0])
            pick(cur[:, -1], cur[:, -2], out=nxt[:, -1])
            cur = nxt
        if h in wanted:
            lines[h] = cur
    out = lines[halves[0]].copy()
    for dy in range(1, len(halves)):
        line = lines[halves[dy]]
        pick(out[: rows - dy], line[dy:], out=out[: rows - dy])
        pick(out[dy:], line[: rows - dy], out=out[dy:])
    return out


def _cross_rank(grid: np.ndarray, erode: bool) -> np.ndarray:
    """Grey erosion (or dilation) with the 5-cell cross; cells outside the grid are ignored."""
    pick = np.minimum if erode else np.maximum
    out = grid.copy()
    pick(out[1:], grid[:-1], out=out[1:])
    pick(out[:-1], grid[1:], out=out[:-1])
    pick(out[:, 1:], grid[:, :-1], out=out[:, 1:])
    pick(out[:, :-1], grid[:, 1:], out=out[:, :-1])
    return out


def _open_disk(grid: np.ndarray, radius: int) -> np.ndarray:
    return _disk_rank(_disk_rank(grid, radius, erode=True), radius, erode=False)


def _open_diamond(grid: np.ndarray, radius: int) -> np.ndarray:
    """Opening with the diamond |dx| + |dy| <= radius: ``radius`` cross erosions, then as many dilations."""
    out = grid
    for erode in (True, False):
        for _ in range(radius):
            out = _cross_rank(out, erode)
    return out


def progressive_filter(surface: np.ndarray, slope: float, cell: float, max_radius: int,
                       element: str = "disk") -> np.ndarray:
    """Flag cells removed by progressively larger openings (SMRF step 4).

    A cell is an object when an opening of radius r lowers it by more than
    ``slope * cell * r`` relative to the opening of radius r - 1.
    """
    opening = _open_disk if element == "disk" else _open_diamond
    obj = np.zeros(surface.shape, dtype=bool)
    prev = surface.astype(np.float32)  # min/max only select values: float32 halves the memory traffic
    for radius in range(1, max_radius + 1):
        cur = opening(prev, radius)
        obj |= np.abs(prev - cur) > slope * cell * radius
        prev = cur
    return obj


def smrf_ground(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    params: SmrfParams = SmrfParams(),
    origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Classify points as ground (True) or not (False) with SMRF.

    Parameters
    ----------
    x, y, z : point coordinates (the working set, e.g. last/only returns).
    params : SMRF parameters.
    origin : a point on the cell lattice; cells are aligned to it so that
        every tile of a tiled job uses the same cells as an untiled run.

    Returns
    -------
    Boolean array, True for ground.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=bool)
    c = params.cell
    ci = np.floor((np.asarray(x, float) - origin[0]) / c).astype(np.int64)
    ri = np.floor((np.asarray(y, float) - origin[1]) / c).astype(np.int64)
    c0, r0 = ci.min(), ri.min()
    ci -= c0
    ri -= r0
    rows, cols = int(ri.max()) + 1, int(ci.max()) + 1

    zmin = np.full(rows * cols, np.inf)
    np.minimum.at(zmin, ri * cols + ci, np.asarray(z, float))
    zmin[np.isinf(zmin)] = np.nan
    zmin = zmin.reshape(rows, cols)
    empty = np.isnan(zmin)
    near = _disk_rank(~empty, influence_cells(params), erode=False)  # within that many cells of a point
    zimin = _knn_fill(zmin, near)

    low = progressive_filter(-zimin, 5.0, c, 1, params.element)
    obj = progressive_filter(zimin, params.slope, c, int(np.ceil(params.window / c)), params.element)

    zipro = zimin.copy()
    zipro[low | obj | empty] = np.nan
    if np.isnan(zipro).all():
        zipro = zimin.copy()
    zipro = _knn_fill(zipro, near)

    gy, gx = np.gradient(zipro / c) if min(rows, cols) > 1 else (np.zeros_like(zipro),) * 2
    grad = np.hypot(gx, gy)
    # Each point against its own cell, as PDAL does.
    return np.abs(zipro[ri, ci] - np.asarray(z, float)) <= params.threshold + params.scalar * grad[ri, ci]
