"""Products beside the DTM, on the same buffered-tile graph and global grid: DSM, CHM, density, height above ground.

- ``dsm``: highest first/only return per cell, floored at the DTM of the
  same run (empty cells take the terrain, so DSM >= DTM), as ``max``; or a
  TIN of the first/only returns (``tin``, no terrain run: it can dip below a
  DTM between returns). Noise classes 7 and 18 are left out.
- ``chm``: that DSM minus the DTM (>= 0), in one run: each read task also
  reduces its first returns to per-cell maxima, carried to the tile's TIN task.
- ``density``: points (not noise) per square metre of each cell.
- ``hag``: a copy of one LAS/LAZ file with a ``HeightAboveGround`` extra
  dimension (z minus the DTM, bilinear between DTM cell centres).
"""
from __future__ import annotations

from typing import Any, Sequence

from cloudbutton.core import Graph, InputError, Job, RunResult, plan_and_run

from .grid import plan_grid, plan_tiles
from .hag import hag_tile, write_hag
from .lasio import plan_reads
from .pipeline import GROUND_MODES, output_stage, raster_summary, terrain_stages
from .plan import (BUFFER_M, MAX_BUFFER_GROWTH, TILE_SIZE_M, SmrfOptions, extent_of, given_or_default,
                   ground_filter, plan_layout, point_copy_input)
from .tasks import cells_tile, ground_and_route, read_and_route, tin_tile

DSM_METHODS = ("max", "tin")


def build_dsm_job(inputs: str | Sequence[str], out: str, *, resolution: float = 1.0, method: str = "max",
                  ground: str = "smrf", tile_size: float | None = None, buffer: float | None = None,
                  crs: str | None = None, force_crs: bool = False, smrf: SmrfOptions = None,
                  denoise: bool = True) -> Job:
    """Plan a DSM: the highest first/only return per cell floored at the DTM (``method="max"``), or a TIN of
    the first/only returns (``"tin"``, seamless as the DTM's). Other arguments as for ``build_dem_job``."""
    if method not in DSM_METHODS:
        raise InputError("--method", f"must be one of {', '.join(DSM_METHODS)}, not {method!r}")
    layout = plan_layout(inputs, out, resolution=resolution, tile_size=tile_size, buffer=buffer, crs=crs,
                         force_crs=force_crs)
    g = Graph("geospatial.dsm")
    if method == "max":
        terrain_stages(g, layout, ground, ground_filter(layout.units, smrf, denoise), cells="max")
    else:
        params = {"tiles": layout.tiles, "grid": layout.grid}
        g.map("read", read_and_route, over=plan_reads(layout.sources),
              params={**params, "reach": layout.halo, "select": "first"})
        g.shuffle("by_tile", over="read", partitions=len(layout.tiles))
        g.map("tin", tin_tile, over="by_tile", params={**params, "halo": layout.halo, "extent": layout.extent})
    output_stage(g, layout, out, "dsm", layered=method == "max")
    return Job(graph=g, output=out, summary=raster_summary, inputs=[s.uri for s in layout.sources])


def build_chm_job(inputs: str | Sequence[str], out: str, *, resolution: float = 1.0, ground: str = "smrf",
                  tile_size: float | None = None, buffer: float | None = None, crs: str | None = None,
                  force_crs: bool = False, smrf: SmrfOptions = None, denoise: bool = True) -> Job:
    """Plan a canopy height model: highest first return minus the DTM, clipped at 0, in one run.
    Arguments as for ``build_dem_job``."""
    layout = plan_layout(inputs, out, resolution=resolution, tile_size=tile_size, buffer=buffer, crs=crs,
                         force_crs=force_crs)
    g = Graph("geospatial.chm")
    terrain_stages(g, layout, ground, ground_filter(layout.units, smrf, denoise), cells="max")
    output_stage(g, layout, out, "chm", layered=True)
    return Job(graph=g, output=out, summary=raster_summary, inputs=[s.uri for s in layout.sources])


def build_density_job(inputs: str | Sequence[str], out: str, *, resolution: float = 1.0,
                      tile_size: float | None = None, crs: str | None = None, force_crs: bool = False) -> Job:
    """Plan a point-density raster: points that are not noise per square metre of each cell (0 where none)."""
    layout = plan_layout(inputs, out, resolution=resolution, tile_size=tile_size, buffer=0.0, crs=crs,
                         force_crs=force_crs)
    per_m2 = 1.0 / (resolution * layout.units[0]) ** 2
    params = {"tiles": layout.tiles, "grid": layout.grid}
    g = Graph("geospatial.density")
    g.map("read", read_and_route, over=plan_reads(layout.sources), params={**params, "reach": None, "cells": "count"})
    g.shuffle("by_tile", over="read", partitions=len(layout.tiles))
    g.map("cells", cells_tile, over="by_tile", params={**params, "how": "count", "scale": per_m2})
    output_stage(g, layout, out, "density")
    return Job(graph=g, output=out, summary=raster_summary, inputs=[s.uri for s in layout.sources])


def build_hag_job(input: str, out: str, *, resolution: float = 1.0, ground: str = "smrf",
                  tile_size: float | None = None, buffer: float | None = None, smrf: SmrfOptions = None,
                  denoise: bool = True) -> Job:
    """Plan height above ground for one LAS/LAZ file into ``out`` (.las or .laz) with a float32
    ``HeightAboveGround`` extra dimension: z minus the DTM (at ``resolution``), points in their original order."""
    if ground not in GROUND_MODES:
        raise InputError("--ground", f"must be one of {', '.join(GROUND_MODES)}, not {ground!r}")
    sources, units, compress = point_copy_input(input, out, "hag")
    flt = ground_filter(units, smrf, denoise)
    buffer = given_or_default(buffer, BUFFER_M, units[0])
    extent = extent_of(sources)
    grid = plan_grid(extent, resolution)
    tiles = plan_tiles(grid, given_or_default(tile_size, TILE_SIZE_M, units[0]), buffer)
    halo = buffer * MAX_BUFFER_GROWTH
    params = {"tiles": tiles, "grid": grid}
    g = Graph("geospatial.hag")
    if ground == "smrf":
        g.map("read", read_and_route, over=plan_reads(sources), params={**params, "reach": flt.margin})
        g.shuffle("by_tile", over="read", partitions=len(tiles))
        g.map("ground", ground_and_route, over="by_tile",
              params={**params, "flt": flt, "reach": halo, "targets": True})
        g.shuffle("ground_by_tile", over="ground", partitions=len(tiles))
    else:
        g.map("read", read_and_route, over=plan_reads(sources),
              params={**params, "reach": halo, "select": "ground", "targets": True})
        g.shuffle("ground_by_tile", over="read", partitions=len(tiles))
    g.map("hag", hag_tile, over="ground_by_tile", params={**params, "halo": halo, "extent": extent})
    g.reduce("write", write_hag, over="hag", params={"source": sources[0], "out": out, "compress": compress})
    return Job(graph=g, output=out, inputs=[sources[0].uri],
               summary=lambda v: f"{v['out']}: HeightAboveGround for {v['with_height']:,} of {v['points']:,} points")


def dsm(inputs: str | Sequence[str], out: str, *, executor: str = "threads", workers: int | None = None,
        resolution: float = 1.0, method: str = "max", ground: str = "smrf", tile_size: float | None = None,
        buffer: float | None = None, crs: str | None = None, force_crs: bool = False, smrf: SmrfOptions = None,
        denoise: bool = True, **run_options: Any) -> RunResult:
    """Write a DSM GeoTIFF (COG) on the DTM's grid; see :func:`build_dsm_job`."""
    return plan_and_run(lambda: build_dsm_job(
        inputs, out, resolution=resolution, method=method, ground=ground, tile_size=tile_size, buffer=buffer, crs=crs,
        force_crs=force_crs, smrf=smrf, denoise=denoise), executor=executor, workers=workers, **run_options)


def chm(inputs: str | Sequence[str], out: str, *, executor: str = "threads", workers: int | None = None,
        resolution: float = 1.0, ground: str = "smrf", tile_size: float | None = None, buffer: float | None = None,
        crs: str | None = None, force_crs: bool = False, smrf: SmrfOptions = None, denoise: bool = True,
        **run_options: Any) -> RunResult:
    """Write a canopy height model GeoTIFF (DSM - DTM, >= 0); see :func:`build_chm_job`."""
    return plan_and_run(lambda: build_chm_job(
        inputs, out, resolution=resolution, ground=ground, tile_size=tile_size, buffer=buffer, crs=crs,
        force_crs=force_crs, smrf=smrf, denoise=denoise), executor=executor, workers=workers, **run_options)


def density(inputs: str | Sequence[str], out: str, *, executor: str = "threads", workers: int | None = None,
            resolution: float = 1.0, tile_size: float | None = None, crs: str | None = None,
            force_crs: bool = False, **run_options: Any) -> RunResult:
    """Write a point-density GeoTIFF (points per m^2); see :func:`build_density_job`."""
    return plan_and_run(lambda: build_density_job(
        inputs, out, resolution=resolution, tile_size=tile_size, crs=crs, force_crs=force_crs), executor=executor,
        workers=workers, **run_options)


def hag(input: str, out: str, *, executor: str = "threads", workers: int | None = None, resolution: float = 1.0,
        ground: str = "smrf", tile_size: float | None = None, buffer: float | None = None, smrf: SmrfOptions = None,
        denoise: bool = True, **run_options: Any) -> RunResult:
    """Write a copy of one LAS/LAZ file with HeightAboveGround; see :func:`build_hag_job`."""
    return plan_and_run(lambda: build_hag_job(
        input, out, resolution=resolution, ground=ground, tile_size=tile_size, buffer=buffer, smrf=smrf,
        denoise=denoise), executor=executor, workers=workers, **run_options)
