"""Synthetic LiDAR survey over a known terrain: buildings, trees, several LAS/LAZ tiles.

The bare-earth surface is an analytic function, so the DTM error can be
measured exactly, and every point carries its true class (2 ground, 5 high
vegetation, 6 building), so ground filters can be scored. Output is
deterministic for a given seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import laspy
import numpy as np
from pyproj import CRS

SAMPLE_CRS = "EPSG:25831"
ORIGIN = (431_000.0, 4_582_000.0)  # ETRS89 / UTM 31N, near Barcelona


def surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true bare-earth elevation at (x, y) in map coordinates."""
    u, v = np.asarray(x) - ORIGIN[0], np.asarray(y) - ORIGIN[1]
    hill = 12.0 * np.exp(-((u - 150.0) ** 2 + (v - 90.0) ** 2) / (2 * 60.0**2))
    return 120.0 + 0.04 * u - 0.02 * v + 3.0 * np.sin(u / 35.0) * np.cos(v / 45.0) + hill


@dataclass(frozen=True)
class Survey:
    """All points of a synthetic survey, with their true class and returns."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    classification: np.ndarray
    return_number: np.ndarray
    number_of_returns: np.ndarray


def make_survey(width: float = 300.0, height: float = 200.0, density: float = 2.0, seed: int = 0) -> Survey:
    """Simulate pulses over ``width`` x ``height`` m at ``density`` pulses per m^2.

    Box buildings (5-15 m high, 8-30 m wide) return single roof echoes; round
    tree crowns return a canopy echo and, for most pulses, a last echo on the
    ground beneath.
    """
    rng = np.random.default_rng(seed)
    n = int(width * height * density)
    u, v = rng.uniform(0, width, n), rng.uniform(0, height, n)
    ground = surface(u + ORIGIN[0], v + ORIGIN[1]) + rng.normal(0, 0.03, n)

    roof = np.full(n, np.nan)
    for _ in range(max(1, round(width * height / 4000))):
        cu, cv = rng.uniform(20, width - 20), rng.uniform(20, height - 20)
        hw, hh = rng.uniform(4, 15, 2)
        top = surface(cu + ORIGIN[0], cv + ORIGIN[1]) + rng.uniform(5, 15)
        inside = (np.abs(u - cu) <= hw) & (np.abs(v - cv) <= hh)
        roof[inside] = np.fmax(roof[inside], top)

    canopy = np.full(n, np.nan)
    for _ in range(max(1, round(width * height / 600))):
        cu, cv = rng.uniform(0, width), rng.uniform(0, height)
        radius, tall = rng.uniform(2, 6), rng.uniform(6, 20)
        d2 = (u - cu) ** 2 + (v - cv) ** 2
        inside = (d2 <= radius**2) & np.isnan(roof)
        crown = ground[inside] + tall * (1 - 0.5 * d2[inside] / radius**2)
        canopy[inside] = np.fmax(canopy[inside], crown)

    is_roof = np.isfinite(roof)
    is_tree = np.isfinite(canopy)
    reaches_ground = is_tree & (rng.random(n) < 0.7)
    # Single echoes: bare ground, roofs, trees whose pulse stops in the crown.
    xs = [u, u[reaches_ground]]
    ys = [v, v[reaches_ground]]
    zs = [np.where(is_roof, roof, np.where(is_tree, canopy, ground)), ground[reaches_ground]]
    cls = [np.where(is_roof, 6, np.where(is_tree, 5, 2)), np.full(reaches_ground.sum(), 2)]
    nret = np.where(reaches_ground, 2, 1)
    rets = [np.ones(n), np.full(reaches_ground.sum(), 2)]
    nrets = [nret, np.full(reaches_ground.sum(), 2)]
    order = np.argsort(np.concatenate([np.arange(n), np.flatnonzero(reaches_ground)]), kind="stable")
    return Survey(
        x=np.concatenate(xs)[order] + ORIGIN[0],
        y=np.concatenate(ys)[order] + ORIGIN[1],
        z=np.concatenate(zs)[order],
        classification=np.concatenate(cls)[order].astype(np.uint8),
        return_number=np.concatenate(rets)[order].astype(np.uint8),
        number_of_returns=np.concatenate(nrets)[order].astype(np.uint8),
    )


def write_tiles(survey: Survey, out_dir: str, nx: int = 2, ny: int = 2, crs: str | None = SAMPLE_CRS) -> list[str]:
    """Split ``survey`` into nx x ny files; even tiles LAS 1.2 format 3, odd ones LAZ 1.4 format 6.

    Returns the file paths in row-major order. ``crs=None`` writes no CRS.
    """
    os.makedirs(out_dir, exist_ok=True)
    xmin, ymin = survey.x.min(), survey.y.min()
    xs = np.minimum(((survey.x - xmin) / (np.ptp(survey.x) + 1e-9) * nx).astype(int), nx - 1)
    ys = np.minimum(((survey.y - ymin) / (np.ptp(survey.y) + 1e-9) * ny).astype(int), ny - 1)
    paths = []
    for k in range(nx * ny):
        sel = (ys * nx + xs) == k
        laz = k % 2 == 1
        header = laspy.LasHeader(point_format=6 if laz else 3, version="1.4" if laz else "1.2")
        header.offsets = [ORIGIN[0], ORIGIN[1], 0.0]
        header.scales = [0.01, 0.01, 0.01]
        if crs is not None:
            header.add_crs(CRS.from_user_input(crs))
        las = laspy.LasData(header)
        las.x, las.y, las.z = survey.x[sel], survey.y[sel], survey.z[sel]
        las.classification = survey.classification[sel]
        las.return_number = survey.return_number[sel]
        las.number_of_returns = survey.number_of_returns[sel]
        path = os.path.join(out_dir, f"tile_{k:02d}.{'laz' if laz else 'las'}")
        las.write(path)
        paths.append(path)
    return paths


def write_sample(out_dir: str, seed: int = 0, width: float = 300.0, height: float = 200.0) -> list[str]:
    """The demo/test sample: a 300 x 200 m survey written as 2 x 2 tiles in ``out_dir``."""
    return write_tiles(make_survey(width, height, seed=seed), out_dir)
