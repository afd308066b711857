"""TIN (Delaunay, linear) gridding of ground points onto a block of the global grid.

A Delaunay triangulation is not unique where four or more points lie on one
circle, which LiDAR scan lines and quantised coordinates make common. Qhull
then picks a diagonal depending on which other points it was given, so two
tiles (or a tile and an untiled run) could disagree on a breakline. Here
ties are broken by the points themselves: the triangulation is the lower
convex hull of the points lifted to the paraboloid z = x^2 + y^2 plus a tiny
weight hashed from each point's own coordinates (a weighted Delaunay
triangulation with generic weights, hence unique). Any subset that holds all
points within a triangle's circumcircle then yields that same triangle.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from .grid import GridSpec

#: Size of the tie-breaking lift weights (map units squared).
TIE_WEIGHT = 1e-5
#: Candidate (triangle, cell) pairs handled per batch while rasterising.
BATCH = 2_000_000


def _tie_weights(pts: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random weight in [0, TIE_WEIGHT) per point, from its coordinates."""
    bits = np.column_stack([pts, z]).astype(np.float64).view(np.uint64)
    h = np.full(len(pts), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(3):
            h = (h ^ bits[:, k]) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(29)
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53 * TIE_WEIGHT


def delaunay_triangles(pts: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Triangles (index triples) of the tie-broken Delaunay triangulation of ``pts``.

    Returns an empty (0, 3) array when the points span no triangle.
    """
    if len(pts) < 3:
        return np.zeros((0, 3), dtype=np.int64)
    # Lift relative to a whole-unit centre: rounding stays far below the weights.
    centre = np.round((pts.min(axis=0) + pts.max(axis=0)) / 2)
    p = pts - centre
    lifted = np.column_stack([p, (p * p).sum(axis=1) + _tie_weights(pts, z)])
    try:
        hull = ConvexHull(lifted)
    except QhullError:  # fewer than three non-collinear points
        return np.zeros((0, 3), dtype=np.int64)
    tris = hull.simplices[hull.equations[:, 2] < -1e-12].astype(np.int64)
    a, b, c = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return tris[np.abs(area2) > 1e-12]


def _circle_boxes(tx: np.ndarray, ty: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Bounding boxes (xmin, ymin, xmax, ymax) of the triangles' circumcircles, clipped to ``extent``.

    A triangle whose box lies inside the read window is certified: every
    point that could fall in its circumcircle was read, so it is also a
    triangle of the triangulation of the whole data set.
    """
    ax, ay = tx[:, 0], ty[:, 0]
    bx, by = tx[:, 1] - ax, ty[:, 1] - ay
    cx, cy = tx[:, 2] - ax, ty[:, 2] - ay
    d = 2.0 * (bx * cy - by * cx)
    b2, c2 = bx * bx + by * by, cx * cx + cy * cy
    ux = ax + (cy * b2 - by * c2) / d
    uy = ay + (bx * c2 - cx * b2) / d
    r = np.hypot(ux - ax, uy - ay)
    return np.column_stack([
        np.maximum(ux - r, extent[0]), np.maximum(uy - r, extent[1]),
        np.minimum(ux + r, extent[2]), np.minimum(uy + r, extent[3]),
    ])


def tin_block(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    grid: GridSpec,
    col0: int,
    row0: int,
    ncols: int,
    nrows: int,
    window: tuple[float, float, float, float] | None = None,
    extent: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Interpolate z linearly inside the triangulation at the block's cell centres.

    Coordinates are shifted by the grid origin (x0, y1), one offset shared by
    every tile. Cells outside the convex hull, or all cells when the points
    span no triangle, are NaN.

    Parameters
    ----------
    window : bounds the points were read from (None: all points were read).
    extent : bounds of all the data (where any point can be).

    Returns
    -------
    (float32 array of shape (nrows, ncols), row 0 at the top;
     None when every filled cell lies in a triangle certified identical to
     the whole-data triangulation (always when ``window`` is None), else the
     map bounds that must be read to certify them all).
    """
    out = np.full((nrows, ncols), np.nan, dtype=np.float32)
    pts = np.column_stack([np.asarray(x, float) - grid.x0, np.asarray(y, float) - grid.y1])
    z = np.asarray(z, float)
    tris = delaunay_triangles(pts, z)
    if len(tris) == 0:
        return out, None
    res = grid.res
    # Cell (row, col) has its centre at ((col + 0.5) res, -(row + 0.5) res) in shifted coordinates.
    tx, ty = pts[tris, 0], pts[tris, 1]
    cmin = np.maximum(np.ceil(tx.min(1) / res - 0.5), col0).astype(np.int64)
    cmax = np.minimum(np.floor(tx.max(1) / res - 0.5), col0 + ncols - 1).astype(np.int64)
    rmin = np.maximum(np.ceil(-ty.max(1) / res - 0.5), row0).astype(np.int64)
    rmax = np.minimum(np.floor(-ty.min(1) / res - 0.5), row0 + nrows - 1).astype(np.int64)
    w, h = cmax - cmin + 1, rmax - rmin + 1
    keep = (w > 0) & (h > 0)
    tris, tx, ty, cmin, rmin, w, h = tris[keep], tx[keep], ty[keep], cmin[keep], rmin[keep], w[keep], h[keep]
    shift = np.array([grid.x0, grid.y1, grid.x0, grid.y1])
    if window is None or extent is None:
        good = np.ones(len(tris), dtype=bool)
    else:
        boxes = _circle_boxes(tx, ty, np.asarray(extent) - shift)
        win = np.asarray(window) - shift
        good = (boxes[:, 0] >= win[0]) & (boxes[:, 1] >= win[1]) & (boxes[:, 2] <= win[2]) & (boxes[:, 3] <= win[3])
    used = np.zeros(len(tris), dtype=bool)
    counts = w * h
    ends = np.cumsum(counts)
    start = 0
    while start < len(tris):
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + BATCH, side="right")), start + 1)
        n = counts[start:stop]
        t = np.repeat(np.arange(start, stop), n)
        offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        col = cmin[t] + offs % w[t]
        row = rmin[t] + offs // w[t]
        x0, y0 = tx[t, 0], ty[t, 0]
        d1x, d1y = tx[t, 1] - x0, ty[t, 1] - y0
        d2x, d2y = tx[t, 2] - x0, ty[t, 2] - y0
        qx, qy = (col + 0.5) * res - x0, -(row + 0.5) * res - y0
        det = d1x * d2y - d1y * d2x
        l1 = (qx * d2y - qy * d2x) / det
        l2 = (d1x * qy - d1y * qx) / det
        l0 = 1.0 - l1 - l2
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        zt = z[tris[t[inside]]]
        r, c = row[inside] - row0, col[inside] - col0
        out[r, c] = l0[inside] * zt[:, 0] + l1[inside] * zt[:, 1] + l2[inside] * zt[:, 2]
        used[t[inside]] = True
        start = stop
    bad = used & ~good
    if not bad.any():
        return out, None
    need = boxes[bad]
    lo, hi = need[:, :2].min(axis=0), need[:, 2:].max(axis=0)
    return out, tuple(float(v) for v in np.concatenate([lo, hi]) + shift)
