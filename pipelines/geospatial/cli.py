"""``cloudbutton geospatial dem|classify|dsm|chm|density|hag``: the CLI plugin (entry point
``cloudbutton.pipelines:geospatial``)."""
from __future__ import annotations

import argparse
import hashlib
from functools import partial

from cloudbutton.core import Job
from cloudbutton.core.cli import Command, Pipeline

from .catalog import build_index_job
from .pipeline import GROUND_MODES, INTERPOLATIONS, build_classify_job, build_dem_job
from .products import DSM_METHODS, build_chm_job, build_density_job, build_dsm_job, build_hag_job
from .report import report


def _add_smrf_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SMRF ground filter (PDAL's defaults; lengths in map units, "
                                      "defaults given in metres and converted to the CRS's unit)")
    group.add_argument("--slope", type=float, help="terrain slope, rise over run (0.15)")
    group.add_argument("--window", type=float, help="max window radius (18 m)")
    group.add_argument("--threshold", type=float, help="elevation threshold (0.5 m)")
    group.add_argument("--scalar", type=float, help="slope scaling of the threshold (1.25)")
    group.add_argument("--cell", type=float, help="SMRF cell size (1 m)")
    group.add_argument("--no-denoise", dest="denoise", action="store_false",
                       help="skip the ELM low-noise stage before SMRF (on by default; noise is labelled 7)")


def _smrf_from(args: argparse.Namespace) -> dict[str, float | None]:
    return {name: getattr(args, name) for name in ("cell", "slope", "window", "threshold", "scalar")}


def _add_grid_arguments(parser: argparse.ArgumentParser, ground: bool = True) -> None:
    """Inputs, output, grid and tiles (every raster product), and the ground filter when ``ground``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="LAS/LAZ files, folders or globs")
    parser.add_argument("--out", required=True, metavar="OUT.tif", help="output Cloud-Optimised GeoTIFF")
    parser.add_argument("--resolution", type=float, default=1.0, help="cell size in map units (1)")
    parser.add_argument("--tile-size", type=float, help="tile side in map units (250 m)")
    parser.add_argument("--crs", help="CRS to assign, e.g. EPSG:25831, to files without one")
    parser.add_argument("--force-crs", action="store_true",
                        help="assign --crs even to files whose CRS differs (no reprojection)")
    if ground:
        parser.add_argument("--buffer", type=float, help="points triangulated beyond each tile, map units (30 m)")
        _add_ground_arguments(parser)


def _add_ground_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ground", choices=GROUND_MODES, default="smrf",
                        help="smrf: classify ground; class: use existing classes 2 and 9 (smrf)")
    _add_smrf_arguments(parser)


def _grid_from(args: argparse.Namespace) -> dict:
    return {"resolution": args.resolution, "tile_size": args.tile_size, "crs": args.crs, "force_crs": args.force_crs}


def _ground_from(args: argparse.Namespace) -> dict:
    return {"buffer": args.buffer, "ground": args.ground, "smrf": _smrf_from(args), "denoise": args.denoise}


def _add_dem_arguments(parser: argparse.ArgumentParser) -> None:
    _add_grid_arguments(parser)
    parser.add_argument("--interpolation", choices=INTERPOLATIONS, default="tin",
                        help="tin: Delaunay, linear; idw: 10 nearest ground points within 50 m, power 2 (tin)")
    parser.add_argument("--max-edge", type=float,
                        help="TIN: cells under triangles with a longer edge (map units) are no data (lakes, voids)")
    parser.add_argument("--hillshade", metavar="PNG|TIF", help="also write a shaded relief: .png, or .tif georeferenced")


def _add_dsm_arguments(parser: argparse.ArgumentParser) -> None:
    _add_grid_arguments(parser)
    parser.add_argument("--method", choices=DSM_METHODS, default="max",
                        help="max: highest first/only return per cell, floored at the DTM; tin: TIN of "
                             "first/only returns (max)")


def _add_density_arguments(parser: argparse.ArgumentParser) -> None:
    _add_grid_arguments(parser, ground=False)


def _add_hag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="one LAS/LAZ file")
    parser.add_argument("--out", required=True, metavar="OUT.las|laz",
                        help="copy with a HeightAboveGround extra dimension (float32, map units)")
    parser.add_argument("--resolution", type=float, default=1.0, help="cell size of the DTM used, map units (1)")
    parser.add_argument("--tile-size", type=float, help="tile side in map units (250 m)")
    parser.add_argument("--buffer", type=float, help="points triangulated beyond each tile, map units (30 m)")
    _add_ground_arguments(parser)


def _build_dem(args: argparse.Namespace) -> Job:
    return build_dem_job(args.inputs, args.out, hillshade=args.hillshade, interpolation=args.interpolation,
                         max_edge=args.max_edge, **_grid_from(args), **_ground_from(args))


def _build_dsm(args: argparse.Namespace) -> Job:
    return build_dsm_job(args.inputs, args.out, method=args.method, **_grid_from(args), **_ground_from(args))


def _build_chm(args: argparse.Namespace) -> Job:
    return build_chm_job(args.inputs, args.out, **_grid_from(args), **_ground_from(args))


def _build_density(args: argparse.Namespace) -> Job:
    return build_density_job(args.inputs, args.out, **_grid_from(args))


def _build_hag(args: argparse.Namespace) -> Job:
    return build_hag_job(args.input, args.out, resolution=args.resolution, tile_size=args.tile_size,
                         **_ground_from(args))


def _add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="one LAS/LAZ file")
    parser.add_argument("--out", required=True, metavar="OUT.las|laz",
                        help="classified copy (2 ground, 7 noise, former ground 1; other classes kept)")
    parser.add_argument("--tile-size", type=float, help="tile side in map units (250 m)")
    _add_smrf_arguments(parser)


def _build_classify(args: argparse.Namespace) -> Job:
    return build_classify_job(args.input, args.out, smrf=_smrf_from(args), tile_size=args.tile_size,
                              denoise=args.denoise)


def _dem_fingerprint(out: str) -> str:
    """SHA-256 of the DTM's grid: values, transform and CRS (not the file's metadata or layout)."""
    import rasterio

    with rasterio.open(out) as dem:
        digest = hashlib.sha256(dem.read(1).tobytes())
        digest.update(repr((tuple(dem.transform), dem.crs.to_wkt(), dem.nodata)).encode())
    return digest.hexdigest()


def _points_fingerprint(fields: tuple[str, ...], out: str) -> str:
    """SHA-256 of the points' ``fields`` (coordinates, class or height above ground), in file order."""
    import laspy
    import numpy as np

    with laspy.open(out) as reader:
        points = reader.read()
    digest = hashlib.sha256()
    for field in fields:  # np.asarray: classification of point formats 0-5 is a bit-field view
        digest.update(np.asarray(points[field]).tobytes())
    return digest.hexdigest()


def _add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="LAS/LAZ files, folders, globs or prefixes")
    parser.add_argument("--out", required=True, metavar="CATALOG.json",
                        help="catalog file; pass it as INPUT to any command to plan without reading headers")


def _build_index(args: argparse.Namespace) -> Job:
    return build_index_job(args.inputs, args.out)


def _file_fingerprint(out: str) -> str:
    """SHA-256 of the file's bytes."""
    with open(out, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _sample(folder: str) -> list[str]:
    """Write the synthetic 2 x 2-tile survey in ``folder``; the arguments of a DTM over it."""
    from .synthetic import write_sample

    write_sample(folder)
    return ["dem", folder, "--tile-size", "100"]


pipeline = Pipeline(
    name="geospatial",
    help="LiDAR LAS/LAZ -> seamless terrain model (SMRF ground filter, TIN, buffered tiles, COG mosaic)",
    commands={
        "dem": Command(help="grid ground points into a seamless DTM GeoTIFF (COG)",
                       add_arguments=_add_dem_arguments, build=_build_dem,
                       fingerprint=_dem_fingerprint, output_name="dem.tif", report=report),
        "classify": Command(help="classify ground with SMRF after ELM noise (2 ground, 7 noise; other classes kept)",
                            add_arguments=_add_classify_arguments, build=_build_classify,
                            fingerprint=partial(_points_fingerprint, ("X", "Y", "Z", "classification")),
                            output_name="classified.laz"),
        "dsm": Command(help="surface model: highest first return per cell (floored at the DTM) or a TIN",
                       add_arguments=_add_dsm_arguments, build=_build_dsm, fingerprint=_dem_fingerprint,
                       output_name="dsm.tif"),
        "chm": Command(help="canopy height model: DSM - DTM (>= 0) in one run",
                       add_arguments=_add_grid_arguments, build=_build_chm, fingerprint=_dem_fingerprint,
                       output_name="chm.tif"),
        "density": Command(help="points (not noise) per square metre of each cell",
                           add_arguments=_add_density_arguments, build=_build_density, fingerprint=_dem_fingerprint,
                           output_name="density.tif"),
        "index": Command(help="read every header (in parallel) into a catalog file that plans skip reading",
                         add_arguments=_add_index_arguments, build=_build_index, fingerprint=_file_fingerprint,
                         output_name="catalog.json"),
        "hag": Command(help="copy of a LAS/LAZ file with a HeightAboveGround extra dimension",
                       add_arguments=_add_hag_arguments, build=_build_hag,
                       fingerprint=partial(_points_fingerprint, ("X", "Y", "Z", "HeightAboveGround")),
                       output_name="hag.laz"),
    },
    sample=_sample,
)
