"""Task functions of the geospatial stage graphs (module-level, pure, picklable).

Points are decoded once (``read_and_route``) and sent to every tile that
needs them, or reduced to per-cell partials (highest return, counts);
``ground_and_route`` classifies a tile's own points with SMRF and sends its
ground points on; ``tin_tile`` grids a tile, ``cells_tile`` merges a tile's
partials; ``mosaic`` and ``write_classes`` assemble the outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import laspy
import numpy as np

from cloudbutton.core.storage import atomic_output, open_input

from .cells import CellPart, cell_parts, merge_parts
from .grid import GridSpec, TileLattice, owner_tiles, tiles_reaching
from .lasio import CHUNK_POINTS, LAZ_BACKEND, LasSource, Points, ReadPart, read_part
from .raster import write_cog, write_hillshade
from .report import qa_tags
from .ground import NOISE_CLASSES, GroundFilter, decide
from .hag import Targets
from .noise import NOISE_CLASS
from .idw import IdwParams, idw_grid
from .tiled_output import TileFile, write_tile
from .tin import Block, tin_grid

#: Classes used as ground by ``ground="class"`` (ground, water), as lidR does.
GROUND_CLASSES = (2, 9)


@dataclass(frozen=True)
class TileDem:
    """The core cells of one tile and a few QA counts."""

    col0: int
    row0: int
    dem: np.ndarray  # float32 (nrows, ncols), NaN = no data
    ground: int  # ground points triangulated
    buffer: float  # largest distance triangulated beyond the core
    uncertain: bool  # some core cell could still differ from an untiled run
    surface: np.ndarray | None = None  # float32 highest first return per core cell (CHM runs)


Routed = Points | CellPart | Targets


def _tile_items(groups: dict[int, list[Routed]]) -> tuple[int, Points, list[CellPart]] | None:
    """The one tile of a shuffle bucket (one bucket per tile), its points and its cell partials; None when empty."""
    if not groups:
        return None
    (tile, items), = groups.items()
    return tile, Points.concat([i for i in items if isinstance(i, Points)]), [i for i in items if isinstance(i, CellPart)]


def _route(pts: Points, tiles: TileLattice, grid: GridSpec, reach: float) -> list[tuple[int, Routed]]:
    return [(tile, pts.take(idx)) for tile, idx in tiles_reaching(pts.x, pts.y, tiles, grid, reach)]


def _select(pts: Points, which: str) -> Points:
    if which == "ground":
        return pts.take(np.isin(pts.classification, GROUND_CLASSES))
    if which == "first":
        return pts.take(pts.first & ~np.isin(pts.classification, NOISE_CLASSES))
    return pts


def _own(pts: Points, tiles: TileLattice, grid: GridSpec, tile: int | None = None) -> list[tuple[int, Routed]]:
    """The points as Targets of the tile whose core holds each (only ``tile``'s when given)."""
    owner = owner_tiles(pts.x, pts.y, tiles, grid)
    keys = [tile] if tile is not None else np.unique(owner).tolist()
    return [(int(t), Targets(pts.take(owner == t))) for t in keys if (owner == t).any()]


def read_and_route(part: ReadPart, *, tiles: TileLattice, grid: GridSpec, reach: float | None, select: str = "all",
                   cells: str | None = None, targets: bool = False) -> list[tuple[int, Routed]]:
    """Decode one range of points and send each selected point to every tile within ``reach`` of it.

    ``select`` is ``"all"``, ``"ground"`` (classes 2 and 9, for ``--ground
    class``) or ``"first"`` (first/only returns that are not noise); ``reach=None`` sends no points. ``cells`` also sends
    each tile core a partial statistic of its cells: ``"max"`` (highest
    first/only return that is not noise) or ``"count"`` (points that are not noise).
    ``targets`` sends every point to its own tile as a height-above-ground target.
    """
    pts = read_part(part)
    out = [] if reach is None else _route(_select(pts, select), tiles, grid, reach)
    if targets:
        out += _own(pts, tiles, grid)
    if cells is not None:
        top = _select(pts, "first") if cells == "max" else pts.take(~np.isin(pts.classification, NOISE_CLASSES))
        out += cell_parts(top.x, top.y, top.z, tiles, grid, cells)
    return out


def own_decisions(tile: int, pts: Points, *, tiles: TileLattice, grid: GridSpec, flt: GroundFilter
                  ) -> tuple[Points, Points]:
    """Noise and ground over a tile's points (core + margin): the ground and the noise points of its core.

    The cells of ELM and SMRF are aligned to the global grid origin so tiles
    agree with each other; a point belongs to the tile whose core holds its cell.
    """
    found = decide(pts.x, pts.y, pts.z, pts.classification, pts.last, flt, origin=(grid.x0, grid.y1))
    own = owner_tiles(pts.x, pts.y, tiles, grid) == tile
    return pts.take(found.ground & own), pts.take(found.noise & own)


def ground_and_route(groups: dict[int, list[Routed]], *, tiles: TileLattice, grid: GridSpec, flt: GroundFilter,
                     reach: float, targets: bool = False) -> list[tuple[int, Routed]]:
    """Classify one tile's points and send its ground points to every tile within ``reach``
    (its cell partials go on to the same tile; with ``targets``, its own points too)."""
    found = _tile_items(groups)
    if found is None:
        return []
    tile, pts, parts = found
    ground, _ = own_decisions(tile, pts, tiles=tiles, grid=grid, flt=flt)
    own = _own(pts, tiles, grid, tile) if targets else []
    return _route(ground, tiles, grid, reach) + [(tile, p) for p in parts] + own


@dataclass(frozen=True)
class TileWriter:
    """Where a tile task writes its core (``--out x.vrt``) instead of returning it: folder, CRS, product."""

    folder: str
    crs_wkt: str
    product: str
    layered: bool

    def write(self, item: TileDem, grid: GridSpec) -> TileFile:
        block = product_block(item.dem, item.surface, self.product, self.layered)
        return write_tile(block, item.col0, item.row0, grid, self.crs_wkt, self.folder, item.ground, item.buffer,
                          item.uncertain)


def _finish(item: TileDem, grid: GridSpec, writer: TileWriter | None) -> TileDem | TileFile:
    return writer.write(item, grid) if writer else item


def tin_tile(groups: dict[int, list[Routed]], *, tiles: TileLattice, grid: GridSpec, halo: float,
             extent: tuple[float, float, float, float], max_edge: float | None = None,
             idw: IdwParams | None = None, writer: TileWriter | None = None) -> TileDem | TileFile | None:
    """Grid a tile's ground points onto its core cells: TIN (core + buffer), or IDW when ``idw`` is given.

    The tile holds every ground point within ``halo`` of its core, so each
    triangle a core cell uses is checked against them (see ``tin_grid``);
    ``max_edge`` leaves cells under longer triangles empty. For IDW the tile
    holds every point within ``idw.rmax``. Highest-return partials, when
    sent (DSM, CHM), become the tile's ``surface``. With a ``writer`` the
    tile's product is written to its own file and only its figures return.
    """
    found = _tile_items(groups)
    if found is None:
        return None
    index, pts, parts = found
    tile = tiles[index]
    surface = merge_parts(parts, tile, "max") if parts else None
    block = Block(tile.col0, tile.row0, tile.ncols, tile.nrows)
    if idw is not None:
        return _finish(TileDem(tile.col0, tile.row0, idw_grid(pts.x, pts.y, pts.z, grid, block, idw), len(pts),
                               idw.rmax, False, surface), grid, writer)
    limit = (tile.core[0] - halo, tile.core[1] - halo, tile.core[2] + halo, tile.core[3] + halo)
    result = tin_grid(pts.x, pts.y, pts.z, grid, block, window=tile.read, limit=limit, extent=extent,
                      max_edge=max_edge)
    w = result.window
    used = max(tile.core[0] - w[0], tile.core[1] - w[1], w[2] - tile.core[2], w[3] - tile.core[3])
    inside = ((pts.x >= w[0]) & (pts.x <= w[2]) & (pts.y >= w[1]) & (pts.y <= w[3])).sum()
    return _finish(TileDem(tile.col0, tile.row0, result.dem, int(inside), float(used), result.uncertain, surface),
                   grid, writer)


def cells_tile(groups: dict[int, list[Routed]], *, tiles: TileLattice, grid: GridSpec, how: str, scale: float = 1.0,
               writer: TileWriter | None = None) -> TileDem | TileFile | None:
    """Merge a tile core's cell partials into its block (highest return, or count times ``scale``)."""
    found = _tile_items(groups)
    if found is None:
        return None
    index, _, parts = found
    tile = tiles[index]
    block = merge_parts(parts, tile, how)
    if how == "count":
        block = (block * np.float32(scale)).astype(np.float32)
    return _finish(TileDem(tile.col0, tile.row0, block, 0, 0.0, False), grid, writer)


def assemble(items: list[TileDem | None], grid: GridSpec, layer: str = "dem") -> np.ndarray:
    """Place tile cores' ``layer`` (``"dem"`` or ``"surface"``) onto the full grid (NaN where nothing was computed)."""
    dem = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    for item in filter(None, items):
        block = getattr(item, layer)
        if block is None:
            continue
        nrows, ncols = block.shape
        dem[item.row0 : item.row0 + nrows, item.col0 : item.col0 + ncols] = block
    return dem


def product_block(dem: np.ndarray, surface: np.ndarray | None, product: str, layered: bool) -> np.ndarray:
    """The cells of ``product`` from a block; ``layered`` runs carry the highest return per cell (``surface``,
    None when a tile has none) next to the terrain (``dem``).

    Layered, the DSM is the surface floored at the terrain (empty cells take
    the terrain, so DSM >= DTM everywhere) and the CHM is that DSM minus the
    terrain; otherwise the block itself is the product.
    """
    if not layered:
        return dem
    top = dem if surface is None else np.fmax(surface, dem)
    return top if product == "dsm" else (top - dem).astype(np.float32)


def product_raster(items: list[TileDem | None], grid: GridSpec, product: str, layered: bool) -> np.ndarray:
    """The whole raster of ``product`` from the tiles' blocks (see :func:`product_block`)."""
    return product_block(assemble(items, grid), assemble(items, grid, "surface"), product, layered)


def mosaic(items: list[TileDem | None], *, grid: GridSpec, crs_wkt: str, out: str, hillshade: str | None,
           tiles: int, product: str = "dtm", layered: bool = False) -> dict:
    """Write the assembled raster as a COG (and optional hillshade); return a summary.

    ``product`` names the raster: ``"dtm"``, ``"density"``, ``"dsm"`` or ``"chm"``
    (see :func:`product_raster`).
    """
    dem = product_raster(items, grid, product, layered)
    done = [i for i in items if i is not None]
    valid = np.isfinite(dem)
    summary = {
        "product": product,
        "out": out,
        "width": grid.width,
        "height": grid.height,
        "resolution": grid.res,
        "tiles": tiles,
        "tiles_with_ground": len(done),
        "ground_points_triangulated": sum(i.ground for i in done),
        "max_tile_points": max((i.ground for i in done), default=0),
        "max_buffer_used": max((i.buffer for i in done), default=0.0),
        "uncertain_tiles": sum(i.uncertain for i in done),
        "uncertain_cores": [_core_bounds(i, grid) for i in done if i.uncertain],
        "valid_fraction": float(valid.mean()),
        "z_min": float(np.nanmin(dem)) if valid.any() else None,
        "z_max": float(np.nanmax(dem)) if valid.any() else None,
    }
    layout = [(i.col0, i.row0, i.dem.shape[1], i.dem.shape[0], i.uncertain, i.ground) for i in done]
    picture = hillshade if hillshade and hillshade.lower().endswith(".png") else None  # what the report shows
    write_cog(out, dem, grid, crs_wkt, tags=qa_tags(summary, layout, picture))
    if hillshade:
        write_hillshade(hillshade, dem, grid, crs_wkt)
    return summary


def _core_bounds(item: TileDem, grid: GridSpec) -> tuple[float, float, float, float]:
    """Map bounds (xmin, ymin, xmax, ymax) of a tile's core cells."""
    nrows, ncols = item.dem.shape
    xmin, ymax = grid.x0 + item.col0 * grid.res, grid.y1 - item.row0 * grid.res
    return (xmin, ymax - nrows * grid.res, xmin + ncols * grid.res, ymax)


def classify_tile(groups: dict[int, list[Routed]], *, tiles: TileLattice, grid: GridSpec, flt: GroundFilter
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (in the file) of the ground and of the noise points whose cell lies in this tile's core.

    Every point belongs to exactly one core (by its grid cell), so the tiles'
    answers together cover the file once.
    """
    found = _tile_items(groups)
    if found is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tile, pts, _ = found
    ground, noise = own_decisions(tile, pts, tiles=tiles, grid=grid, flt=flt)
    return np.sort(ground.index), np.sort(noise.index)


def _indices(items: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(items)) if items else np.zeros(0, np.int64)


def _mark(cls: np.ndarray, which: np.ndarray, start: int, value: int) -> None:
    """Set ``cls[i - start] = value`` for the sorted file indices ``which`` inside this chunk."""
    lo, hi = np.searchsorted(which, [start, start + len(cls)])
    cls[which[lo:hi] - start] = value


def write_classes(items: list[tuple[np.ndarray, np.ndarray]], *, source: LasSource, out: str, compress: bool
                  ) -> dict:
    """Copy the input, changing only the classes the filter decided; points in their original order.

    Ground becomes 2, noise found 7, a point that was 2 and is not ground 1;
    every other point keeps its class (buildings, water, overlap, ...).
    """
    ground = _indices([g for g, _ in items])
    noise = _indices([n for _, n in items])
    with open_input(source.uri) as path, laspy.open(path, laz_backend=LAZ_BACKEND) as reader, atomic_output(out) as tmp:
        with laspy.open(tmp, mode="w", header=reader.header, do_compress=compress, laz_backend=LAZ_BACKEND) as writer:
            start = 0
            for record in reader.chunk_iterator(CHUNK_POINTS):
                cls = np.asarray(record.classification).astype(np.uint8)
                cls[(cls == 2) & ~np.asarray(record.withheld, bool)] = 1  # withheld points are not decided
                _mark(cls, noise, start, NOISE_CLASS)
                _mark(cls, ground, start, 2)
                record.classification = cls
                writer.write_points(record)
                start += len(record)
    return {"out": out, "points": source.count, "ground": int(ground.size), "noise": int(noise.size)}
