"""Planning a geospatial job in the driver, from headers only: inputs, CRS, units, global grid and tiles.

Every raster product plans the same way, so a DSM, CHM or density raster
over the same inputs and resolution lies on the DTM's grid, cell for cell.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from cloudbutton.core import InputError, storage

from .grid import MAX_CELLS, MAX_TILED_CELLS, MAX_TILED_TILES, MAX_TILES, GridSpec, TileLattice, plan_grid, plan_tiles
from .tiled_output import is_vrt
from .catalog import is_catalog, read_catalog
from .ground import GroundFilter
from .lasio import LasSource, common_crs, expand_inputs, metres_per_unit, read_source
from .noise import ElmParams
from .smrf import SmrfParams

#: Default tile side and buffer, in metres (converted to the CRS's unit).
TILE_SIZE_M, BUFFER_M = 250.0, 30.0
#: A tile receives the ground points up to this multiple of its buffer, to
#: check (and if needed grow) the window it triangulates.
MAX_BUFFER_GROWTH = 4

SmrfOptions = SmrfParams | Mapping[str, float | None] | None


def index_inputs(inputs: str | Sequence[str]) -> list[LasSource]:
    """Expand the inputs and read every header (bounds, counts, CRS); a catalog file (.json) gives its
    sources without reading a header."""
    items = [os.fspath(i) for i in ([inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs))]
    if not items:
        raise InputError("INPUT", "no input given")
    catalogs = [i for i in items if is_catalog(i)]
    if catalogs:
        if len(catalogs) != len(items):
            raise InputError(catalogs[0], "a catalog file cannot be mixed with other inputs")
        return [s for c in catalogs for s in read_catalog(c)]
    return [read_source(uri) for uri in expand_inputs(items)]


def extent_of(sources: list[LasSource]) -> tuple[float, float, float, float]:
    """Union of the inputs' header bounds (xmin, ymin, xmax, ymax)."""
    return (
        min(s.bounds[0] for s in sources),
        min(s.bounds[1] for s in sources),
        max(s.bounds[2] for s in sources),
        max(s.bounds[3] for s in sources),
    )


def given_or_default(value: float | None, metres: float, unit: float) -> float:
    """``value`` (map units) when given, else ``metres`` converted to a map unit of ``unit`` metres."""
    return metres / unit if value is None else value


def ground_filter(units: tuple[float, float], given: SmrfOptions = None, denoise: bool = True) -> GroundFilter:
    """The ground filter for map units of (horizontal, vertical) metres: PDAL's SMRF and ELM defaults
    converted from metres, SMRF overridden by the ``given`` values (map units); a bad value is an InputError.
    ``denoise=False`` drops the ELM noise stage."""
    try:
        smrf = given if isinstance(given, SmrfParams) else SmrfParams.for_unit(*units, **dict(given or {}))
    except ValueError as exc:
        raise InputError("SMRF parameters", str(exc)) from None
    return GroundFilter(smrf, ElmParams.for_unit(*units) if denoise else None)


def check_suffix(path: str, suffixes: tuple[str, ...], what: str) -> None:
    """InputError unless ``path`` ends in one of ``suffixes`` (case-insensitive)."""
    if not os.fspath(path).lower().endswith(suffixes):
        raise InputError(os.fspath(path), f"output must be {what}")


def point_copy_input(input: str, out: str, command: str) -> tuple[list[LasSource], tuple[float, float], bool]:
    """The one LAS/LAZ file that ``command`` (classify, hag) copies into ``out`` with new point fields.

    Returns its source (a one-element list), its units (metres per map unit of x/y and
    of z; a file without a CRS counts as metres) and whether ``out`` is compressed (.laz).
    """
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".las", ".laz"):
        raise InputError(out, "output must end in .las or .laz")
    sources = index_inputs(input)
    if len(sources) != 1:
        raise InputError(input, f"{command} takes one file, got {len(sources)}")
    return sources, metres_per_unit(sources[0].crs_wkt, sources[0].uri), ext == ".laz"


@dataclass(frozen=True)
class Layout:
    """A planned raster job: inputs, CRS and units, the global grid and its buffered tiles."""

    sources: list[LasSource]
    crs_wkt: str
    units: tuple[float, float]  # metres per map unit of x/y and of z
    extent: tuple[float, float, float, float]
    grid: GridSpec
    tiles: TileLattice
    buffer: float

    @property
    def halo(self) -> float:
        """How far around its core a tile receives ground points to certify its triangles."""
        return self.buffer * MAX_BUFFER_GROWTH


def plan_layout(inputs: str | Sequence[str], out: str, *, resolution: float, tile_size: float | None,
                buffer: float | None, crs: str | None, force_crs: bool) -> Layout:
    """Index the headers and plan the grid and tiles of a raster written to ``out``: one GeoTIFF (.tif, at most
    500 M cells), or a VRT over one COG per tile (.vrt, no practical cap)."""
    check_suffix(out, (".tif", ".tiff", ".vrt"), "a GeoTIFF (.tif) or a VRT over per-tile COGs (.vrt)")
    tiled = is_vrt(out)
    if tiled and storage.is_object_uri(os.fspath(out)):
        raise InputError(os.fspath(out), "a .vrt output must be a local path (its tiles are written beside it)")
    sources = index_inputs(inputs)
    crs_wkt = common_crs(sources, crs, force_crs)
    units = metres_per_unit(crs_wkt, crs or sources[0].uri)
    tile_size = given_or_default(tile_size, TILE_SIZE_M, units[0])
    buffer = given_or_default(buffer, BUFFER_M, units[0])
    extent = extent_of(sources)
    grid = plan_grid(extent, resolution, MAX_TILED_CELLS if tiled else MAX_CELLS)
    tiles = plan_tiles(grid, tile_size, buffer, MAX_TILED_TILES if tiled else MAX_TILES)
    return Layout(sources, crs_wkt, units, extent, grid, tiles, buffer)
