"""Stage graphs and the Python API: ``dem`` (LiDAR tiles -> seamless DTM COG) and ``classify`` (SMRF).

Index and plan run in the driver from headers only, so a bad input or an
absurd grid fails before any task starts; the graph is then
``read`` (map, one task per range of points: every point decoded once and
sent to the tiles that need it) -> shuffle by tile -> ``ground`` (map, SMRF
per tile) -> shuffle by tile -> ``tin`` (map) -> ``mosaic`` (reduce).
``--ground class`` skips the SMRF stage; ``classify`` ends in ``write``.
"""
from __future__ import annotations

from typing import Any, Sequence

from cloudbutton.core import Graph, InputError, Job, RunResult, plan_and_run

from .grid import plan_grid, plan_tiles
from .idw import IdwParams
from .ground import GroundFilter
from .lasio import plan_reads
from .plan import (TILE_SIZE_M, Layout, SmrfOptions, check_suffix, extent_of, given_or_default, ground_filter,
                   plan_layout, point_copy_input)
from .raster import HILLSHADE_SUFFIXES
from .tasks import TileWriter, classify_tile, ground_and_route, mosaic, read_and_route, tin_tile, write_classes
from .tiled_output import is_vrt, tile_folder, write_vrt

GROUND_MODES = ("smrf", "class")
INTERPOLATIONS = ("tin", "idw")


def terrain_stages(g: Graph, layout: Layout, ground: str, flt: GroundFilter, cells: str | None = None,
                   interpolation: str = "tin", max_edge: float | None = None) -> None:
    """Add the DTM stages to ``g``: read -> [SMRF per tile] -> TIN (or IDW) per tile (stage ``tin``).

    ``cells="max"`` also carries each tile core's highest first returns to its ``tin`` task (DSM, CHM).
    """
    if ground not in GROUND_MODES:
        raise InputError("--ground", f"must be one of {', '.join(GROUND_MODES)}, not {ground!r}")
    if interpolation not in INTERPOLATIONS:
        raise InputError("--interpolation", f"must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}")
    if max_edge is not None and not max_edge > 0:
        raise InputError("--max-edge", f"must be > 0, got {max_edge}")
    idw = IdwParams(rmax=IdwParams.rmax / layout.units[0]) if interpolation == "idw" else None
    reach = max(layout.halo, idw.rmax) if idw else layout.halo
    params = {"tiles": layout.tiles, "grid": layout.grid}
    parts = len(layout.tiles)
    if ground == "smrf":
        g.map("read", read_and_route, over=plan_reads(layout.sources),
              params={**params, "reach": flt.margin, "select": "all", "cells": cells})
        g.shuffle("by_tile", over="read", partitions=parts)
        g.map("ground", ground_and_route, over="by_tile", params={**params, "flt": flt, "reach": reach})
        g.shuffle("ground_by_tile", over="ground", partitions=parts)
    else:
        g.map("read", read_and_route, over=plan_reads(layout.sources),
              params={**params, "reach": reach, "select": "ground", "cells": cells})
        g.shuffle("ground_by_tile", over="read", partitions=parts)
    g.map("tin", tin_tile, over="ground_by_tile",
          params={**params, "halo": layout.halo, "extent": layout.extent, "max_edge": max_edge, "idw": idw})


def output_stage(g: Graph, layout: Layout, out: str, product: str, *, layered: bool = False,
                 hillshade: str | None = None) -> None:
    """End ``g`` (whose last stage holds the tiles' blocks) with its output: one COG written by the
    ``mosaic`` reduce, or, for a .vrt, one COG per tile written by the tile tasks and a VRT over them.

    ``layered`` tiles carry the highest return per cell next to the terrain (DSM, CHM).
    """
    last = list(g.stages)[-1]
    if is_vrt(out):
        if hillshade:
            raise InputError("--hillshade", "needs a .tif output (a .vrt output is never whole in one process)")
        g.stages[last].params["writer"] = TileWriter(tile_folder(out), layout.crs_wkt, product, layered)
        g.reduce("vrt", write_vrt, over=last, params={"grid": layout.grid, "crs_wkt": layout.crs_wkt, "out": out,
                                                     "tiles": len(layout.tiles), "product": product})
        return
    g.reduce("mosaic", mosaic, over=last, params={"grid": layout.grid, "crs_wkt": layout.crs_wkt, "out": out,
                                                 "hillshade": hillshade, "tiles": len(layout.tiles),
                                                 "product": product, "layered": layered})


def build_dem_job(
    inputs: str | Sequence[str],
    out: str,
    *,
    resolution: float = 1.0,
    tile_size: float | None = None,
    buffer: float | None = None,
    ground: str = "smrf",
    crs: str | None = None,
    force_crs: bool = False,
    hillshade: str | None = None,
    smrf: SmrfOptions = None,
    denoise: bool = True,
    interpolation: str = "tin",
    max_edge: float | None = None,
) -> Job:
    """Plan the DTM job: index headers, snap the global grid, cut buffered tiles.

    Parameters
    ----------
    inputs : LAS/LAZ files, folders or globs (all in one CRS unless ``crs`` is given).
    out : output GeoTIFF (Cloud-Optimised, float32, nodata -9999).
    resolution : cell size in map units (1 ft on a CRS in feet: the output keeps the input's units).
    tile_size, buffer : tile side and buffer in map units; by default 250 m and 30 m in the CRS's unit.
    ground : ``"smrf"`` to classify ground, ``"class"`` to use classes 2 and 9.
    crs : CRS to assign (e.g. ``"EPSG:25831"``) to files without one; a file whose CRS differs is an
        error unless ``force_crs`` (then ``crs`` is assigned to every file, not reprojected to).
    hillshade : optional shaded relief: a .png picture or a georeferenced .tif on the DTM's grid.
    smrf : SMRF parameters (used when ``ground="smrf"``): SmrfParams in map units, or a mapping of the
        ones to change; by default PDAL's, in metres converted to the CRS's units (z in the vertical CRS's).
    denoise : label low noise with ELM (PDAL's defaults) before SMRF; such points are never ground.
    interpolation : ``"tin"`` (Delaunay, linear) or ``"idw"`` (10 nearest ground points within 50 m, power 2).
    max_edge : TIN only: cells under triangles with an edge longer than this (map units) are no data.
    """
    if hillshade:
        check_suffix(hillshade, HILLSHADE_SUFFIXES, "a .png picture or a .tif GeoTIFF")
    layout = plan_layout(inputs, out, resolution=resolution, tile_size=tile_size, buffer=buffer, crs=crs,
                         force_crs=force_crs)
    g = Graph("geospatial.dem")
    terrain_stages(g, layout, ground, ground_filter(layout.units, smrf, denoise), interpolation=interpolation,
                   max_edge=max_edge)
    output_stage(g, layout, out, "dtm", hillshade=hillshade)
    return Job(graph=g, output=out, summary=raster_summary, inputs=[s.uri for s in layout.sources])


def raster_summary(value: dict[str, Any]) -> str:
    """The run's summary line: product, grid, coverage, tiles, and the uncertain tiles' cores."""
    line = (f"{value.get('product', 'dtm').upper()} {value['out']}: {value['width']} x {value['height']} cells "
            f"at {value['resolution']}, {value['valid_fraction']:.1%} valid, {value['tiles']} tile{'s' if value['tiles'] != 1 else ''}")
    cores = value.get("uncertain_cores", [])
    if cores:
        shown = "; ".join("x {:.0f}-{:.0f} y {:.0f}-{:.0f}".format(c[0], c[2], c[1], c[3]) for c in cores[:5])
        line += (f"; {len(cores)} uncertain tile{'s' if len(cores) != 1 else ''} (a hole wider than the halo: "
                 f"cells may differ from an untiled run; a larger --buffer checks them): {shown}"
                 f"{' ...' if len(cores) > 5 else ''}")
    return line


def dem(
    inputs: str | Sequence[str],
    out: str,
    *,
    resolution: float = 1.0,
    tile_size: float | None = None,
    buffer: float | None = None,
    ground: str = "smrf",
    crs: str | None = None,
    force_crs: bool = False,
    hillshade: str | None = None,
    smrf: SmrfOptions = None,
    denoise: bool = True,
    interpolation: str = "tin",
    max_edge: float | None = None,
    executor: str = "threads",
    workers: int | None = None,
    **run_options: Any,
) -> RunResult:
    """Build a seamless terrain model (DTM GeoTIFF) from LAS/LAZ tiles; see :func:`build_dem_job`.

    ``executor``/``workers`` and any other RunOptions field choose where it runs;
    the result's ``value`` is a summary dict and ``kpi`` the run's KPIs.
    """
    return plan_and_run(lambda: build_dem_job(
        inputs, out, resolution=resolution, tile_size=tile_size, buffer=buffer, ground=ground, crs=crs,
        force_crs=force_crs, hillshade=hillshade, smrf=smrf, denoise=denoise, interpolation=interpolation,
        max_edge=max_edge), executor=executor, workers=workers, **run_options)


def build_classify_job(input: str, out: str, *, smrf: SmrfOptions = None, tile_size: float | None = None,
                       denoise: bool = True) -> Job:
    """Plan ground (and noise) classification of one LAS/LAZ file into ``out`` (.las or .laz).

    Only decided classes change: ground -> 2, noise found -> 7, former ground that is not -> 1.
    Tiles are aligned to the SMRF cells and read a margin wide enough for the
    filters, so the result does not depend on ``tile_size``. ``smrf``,
    ``tile_size`` and ``denoise`` as for :func:`build_dem_job` (a file without a CRS counts as metres).
    """
    sources, units, compress = point_copy_input(input, out, "classify")
    flt = ground_filter(units, smrf, denoise)
    tile_size = given_or_default(tile_size, TILE_SIZE_M, units[0])
    grid = plan_grid(extent_of(sources), flt.smrf.cell, option="--cell")
    tiles = plan_tiles(grid, tile_size, flt.margin)
    layout = {"tiles": tiles, "grid": grid}
    g = Graph("geospatial.classify")
    g.map("read", read_and_route, over=plan_reads(sources),
          params={**layout, "reach": flt.margin, "select": "all"})
    g.shuffle("by_tile", over="read", partitions=len(tiles))
    g.map("ground", classify_tile, over="by_tile", params={**layout, "flt": flt})
    g.reduce("write", write_classes, over="ground",
             params={"source": sources[0], "out": out, "compress": compress})
    return Job(graph=g, output=out, inputs=[sources[0].uri],
               summary=lambda v: f"{v['out']}: {v['ground']:,} of {v['points']:,} points ground, {v['noise']:,} noise")


def classify(
    input: str,
    out: str,
    *,
    slope: float | None = None,
    window: float | None = None,
    threshold: float | None = None,
    scalar: float | None = None,
    cell: float | None = None,
    tile_size: float | None = None,
    denoise: bool = True,
    executor: str = "threads",
    workers: int | None = None,
    **run_options: Any,
) -> RunResult:
    """Classify ground (2) with SMRF after ELM noise (7); other points keep their class, in order.

    SMRF values are in map units; those left out are PDAL's defaults (slope 0.15, window 18 m,
    threshold 0.5 m, scalar 1.25, cell 1 m) converted to the file's units.
    """
    given = {"cell": cell, "slope": slope, "window": window, "threshold": threshold, "scalar": scalar}
    return plan_and_run(lambda: build_classify_job(input, out, smrf=given, tile_size=tile_size, denoise=denoise),
                        executor=executor, workers=workers, **run_options)
