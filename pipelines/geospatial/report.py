"""The DTM run's results in report.html: hillshade with the tile layout, coverage, height range, uncertain tiles.

The ``mosaic`` task stores its QA figures and the tile layout in the GeoTIFF
itself (tag ``CLOUDBUTTON_QA``, :func:`qa_tags`); the report reads them back
with the raster, so nothing is computed twice.  The picture is the hillshade
PNG the run wrote, or else the terrain drawn from the COG's overview.
"""
from __future__ import annotations

import io
import json
import os
from typing import Any, Sequence

import numpy as np

from cloudbutton.core import storage
from cloudbutton.core.report import Section, escape, facts, png_uri, table

QA_TAG = "CLOUDBUTTON_QA"
PICTURE_WIDTH = 900


def qa_tags(summary: dict[str, Any], tiles: Sequence[tuple[int, int, int, int, bool, int]],
            hillshade: str | None) -> dict[str, str]:
    """GeoTIFF tags with the run's QA summary, the tiles with data (col0, row0, ncols, nrows, uncertain,
    ground points) and the hillshade's path (relative to the DEM's folder when both are local files)."""
    out = summary["out"]
    if hillshade and not (storage.is_object_uri(hillshade) or storage.is_object_uri(out)):
        hillshade = os.path.relpath(os.path.abspath(hillshade), os.path.dirname(os.path.abspath(out)))
    qa = {"summary": {k: v for k, v in summary.items() if k != "out"},
          "tiles": [[int(c), int(r), int(w), int(h), bool(u), int(g)] for c, r, w, h, u, g in tiles],
          "hillshade": hillshade}
    return {QA_TAG: json.dumps(qa, separators=(",", ":"))}


#: Stops of matplotlib's "terrain" colours (position, red, green, blue): sea blue, green, sand, brown, snow.
TERRAIN = np.array([(0.0, 0.2, 0.2, 0.6), (0.15, 0.0, 0.6, 1.0), (0.25, 0.0, 0.8, 0.4),
                    (0.5, 1.0, 1.0, 0.6), (0.75, 0.5, 0.36, 0.33), (1.0, 1.0, 1.0, 1.0)])


def terrain_palette(levels: int = 255) -> np.ndarray:
    """``levels`` RGB colours (uint8) evenly spaced along the terrain colours, low to high."""
    at = np.linspace(0.0, 1.0, levels)
    return np.column_stack([np.interp(at, TERRAIN[:, 0], TERRAIN[:, i]) * 255 for i in (1, 2, 3)]).astype(np.uint8)


def _terrain_png(z: np.ndarray) -> bytes:
    """Elevation in terrain colours, no-data transparent (the fallback picture).

    A palette PNG (one byte per cell, index 0 transparent) drawn without
    matplotlib: importing it and encoding RGBA took a quarter of a small run's wall time.
    """
    from PIL import Image

    inside = np.isfinite(z)
    lo, hi = (float(z[inside].min()), float(z[inside].max())) if inside.any() else (0.0, 1.0)
    level = np.zeros(z.shape, dtype=np.uint8)
    level[inside] = 1 + np.round((z[inside] - lo) / max(hi - lo, 1e-9) * 254).astype(np.uint8)
    image = Image.fromarray(level, mode="P")
    image.putpalette(np.vstack([[0, 0, 0], terrain_palette()]).astype(np.uint8).tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    return buffer.getvalue()


def _hillshade_png(output: str, qa: dict[str, Any]) -> bytes | None:
    """The hillshade PNG the run wrote, if it is there."""
    hillshade = qa.get("hillshade")
    if hillshade and not storage.is_object_uri(hillshade) and not storage.is_object_uri(output):
        hillshade = os.path.join(os.path.dirname(output), hillshade)
    return storage.read_range(hillshade) if hillshade and storage.exists(hillshade) else None


def _elevation_png(dem: Any, width: int, height: int) -> bytes:
    """The elevation of an open raster, read from its overview at most PICTURE_WIDTH cells wide."""
    scale = max(1, int(np.ceil(width / PICTURE_WIDTH)))
    z = dem.read(1, masked=True, out_shape=(max(1, height // scale), max(1, width // scale)))
    return _terrain_png(np.ma.filled(z.astype(float), np.nan))


def _layout_svg(picture: bytes, width: int, height: int, tiles: list[list[Any]]) -> str:
    """The picture with one rectangle per tile core (red: uncertain), titled with its figures."""
    shown_w = min(PICTURE_WIDTH, max(width, PICTURE_WIDTH * 2 // 3))
    shown_h = height * shown_w / width
    k = shown_w / width
    parts = [f'<svg width="{shown_w}" height="{shown_h:.0f}" viewBox="0 0 {shown_w} {shown_h:.0f}" role="img" '
             f'class="layout"><title>hillshade and tiles</title>'
             f'<image href="{png_uri(picture)}" width="{shown_w}" height="{shown_h:.0f}" '
             'preserveAspectRatio="none"/>']
    for col0, row0, ncols, nrows, uncertain, ground in tiles:
        colour = "#d62728" if uncertain else "#ff7f0e"
        parts.append(f'<rect class="tile" x="{col0 * k:.1f}" y="{row0 * k:.1f}" width="{ncols * k:.1f}" '
                     f'height="{nrows * k:.1f}" fill="none" stroke="{colour}" stroke-width="1.5">'
                     f"<title>tile at column {col0}, row {row0}: {ncols} x {nrows} cells, {ground:,} ground points"
                     f"{', uncertain' if uncertain else ''}</title></rect>")
    parts.append("</svg>")
    return "".join(parts)


def report(output: str) -> list[Section]:
    """Sections of a ``dem`` output GeoTIFF: the terrain with its tiles, coverage, heights and QA."""
    import rasterio

    with storage.open_input(output) as path, rasterio.open(path) as dem:
        tags = dem.tags()
        width, height, res, crs = dem.width, dem.height, dem.res[0], dem.crs
        if QA_TAG not in tags:
            return [Section("Terrain model", f'<p class="note">{escape(output)} holds no QA tag: '
                                             "not written by this version of the pipeline.</p>")]
        qa = json.loads(tags[QA_TAG])
        picture, what = _hillshade_png(output, qa), "hillshade written by the run"
        if picture is None:  # read while the raster is open (an object is fetched once)
            picture, what = _elevation_png(dem, width, height), "elevation (the run wrote no hillshade PNG)"
    s = qa["summary"]
    z_range = f"{s['z_min']:.2f} – {s['z_max']:.2f}" if s.get("z_min") is not None else "-"
    figures = facts([("grid", f"{width} x {height} cells"), ("cell size", f"{res:g}"),
                     ("coverage", f"{s['valid_fraction']:.1%}"), ("height range", z_range),
                     ("tiles", s["tiles"]), ("tiles with ground", s["tiles_with_ground"]),
                     ("uncertain tiles", s["uncertain_tiles"]),
                     ("ground points", f"{s['ground_points_triangulated']:,}"),
                     ("largest tile (points)", f"{s['max_tile_points']:,}"),
                     ("largest buffer used", f"{s['max_buffer_used']:g}"),
                     ("CRS", crs.to_string() if crs else "-")])
    layout = _layout_svg(picture, width, height, qa["tiles"])
    note = (f'<p class="note">{escape(what)}; orange: tile cores, red: uncertain tiles (a cell may differ from an '
            "untiled run). Hover a tile for its figures.</p>")
    uncertain = [t for t in qa["tiles"] if t[4]]
    listing = (table(("column", "row", "cells", "ground points"), [(t[0], t[1], f"{t[2]} x {t[3]}", t[5])
                                                                   for t in uncertain])
               if uncertain else '<p class="note">No uncertain tile: every cell is as in an untiled run.</p>')
    return [Section("Terrain model", figures),
            Section("Tiles", note + layout + "<h3>Uncertain tiles</h3>" + listing)]
