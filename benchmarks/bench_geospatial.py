"""Geospatial benchmark: ``geospatial dem`` vs ``gdal_grid -a linear`` and an untiled scipy TIN, and the other
products (IDW DTM, DSM, CHM, density, height above ground) timed against the same gdal_grid anchor.

Inputs: Topography.laz, the 12 Catalonia tiles and autzen_trim.laz (../shared/data/geospatial), and
synthetic surveys of growing size (cloudbutton.pipelines.geospatial.synthetic,
deterministic) to show that memory per task follows the tile size, not the input.
Every measurement is a child process timed with /usr/bin/time (wall, CPU, peak RSS),
with OPENBLAS_NUM_THREADS=1; the pipeline rows run the ``cloudbutton geospatial ...``
command (the project's modules byte-compiled first, as an installed package has them).
gdal_grid gets the same ground points (classes 2 and 9, not withheld) through an OGR
VRT over CSV, on the same grid; its time excludes the CSV export. Set-up installs
Debian's gdal-bin when gdal_grid is missing.

Run: ``python benchmarks/bench_geospatial.py [--sizes 300,600,900]``; writes
``benchmarks/results/geospatial.md`` and ``geospatial.png``.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import laspy
import matplotlib
import numpy as np
import rasterio

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cloudbutton.core.machine import describe, time_command  # noqa: E402
from cloudbutton.pipelines.geospatial.grid import plan_grid  # noqa: E402
from cloudbutton.pipelines.geospatial.lasio import common_crs, expand_inputs, read_source  # noqa: E402
from cloudbutton.pipelines.geospatial.report import QA_TAG  # noqa: E402
from cloudbutton.pipelines.geospatial.synthetic import make_survey, write_tiles  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLOUDBUTTON_SHARED_DATA", ROOT.parent / "shared" / "data")) / "geospatial"
RESULTS = ROOT / "benchmarks" / "results"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

#: The ``cloudbutton`` console script of this interpreter's environment: rows time the command a user runs.
CLI = str(Path(sys.executable).with_name("cloudbutton"))


def cli_command(command: str, inputs: list[str], out: str, executor: str, options: dict, kpi: Path) -> list[str]:
    """``cloudbutton geospatial COMMAND`` on ``inputs`` (the first only for hag), 2 workers, KPIs to ``kpi``."""
    flags = [item for name, value in options.items() for item in (f"--{name.replace('_', '-')}", str(value))]
    return [CLI, "geospatial", command, *(inputs[:1] if command == "hag" else inputs), "--out", out,
            "--executor", executor, "--workers", "2", "--quiet", "--kpi", str(kpi), *flags]


def run_figures(kpi: Path, out: str) -> dict:
    """From a run's kpi.json and output: graph wall, largest task RSS and, for rasters, tiles and largest tile."""
    doc = json.loads(kpi.read_text())
    tasks = [t for t in doc["tasks"] if t["stage"] not in ("mosaic", "write") and t["status"] == "ok"]
    figures = {"graph_wall": doc["run"]["wall_s"], "task_rss": max(t["peak_rss_bytes"] for t in tasks) / 2**20}
    if out.endswith(".tif"):
        with rasterio.open(out) as raster:
            qa = json.loads(raster.tags()[QA_TAG])["summary"]
        figures.update(tiles=qa["tiles"], max_tile_points=qa["max_tile_points"])
    return figures


def compile_project() -> None:
    """Byte-compile the project's modules, as installing a package does: with PYTHONDONTWRITEBYTECODE set
    (as on this machine's sessions) an editable install would otherwise recompile them in every run."""
    import cloudbutton.core
    import cloudbutton.pipelines

    for package in (cloudbutton.core, cloudbutton.pipelines):
        for folder in package.__path__:
            compileall.compile_dir(folder, quiet=1)


#: Pipeline rows: label, command, executor, options, output suffix.
RUNS = (
    ("dem --ground class", "dem", "threads", {"ground": "class"}, "tif"),
    ("dem --ground smrf", "dem", "threads", {}, "tif"),
    ("dem --ground smrf", "dem", "processes", {}, "tif"),
    ("dem --ground class --interpolation idw", "dem", "threads", {"ground": "class", "interpolation": "idw"}, "tif"),
    ("dsm (max, smrf DTM floor)", "dsm", "threads", {}, "tif"),
    ("chm (smrf)", "chm", "threads", {}, "tif"),
    ("density", "density", "threads", {}, "tif"),
    ("hag (smrf)", "hag", "threads", {}, "laz"),
)

UNTILED = """
import sys
import laspy, numpy as np, rasterio
from rasterio.transform import from_origin
from scipy.interpolate import LinearNDInterpolator
inputs, out, x0, y1, res, width, height, crs = sys.argv[1].split(","), sys.argv[2], *map(float, sys.argv[3:6]), \
    int(sys.argv[6]), int(sys.argv[7]), open(sys.argv[8]).read()
xs, ys, zs = [], [], []
for path in inputs:
    las = laspy.read(path)
    keep = np.isin(np.asarray(las.classification), (2, 9)) & ~np.asarray(las.withheld, bool)
    xs.append(np.asarray(las.x)[keep]); ys.append(np.asarray(las.y)[keep]); zs.append(np.asarray(las.z)[keep])
x, y, z = np.concatenate(xs) - x0, np.concatenate(ys) - y1, np.concatenate(zs)
cx, cy = np.meshgrid((np.arange(width) + 0.5) * res, -(np.arange(height) + 0.5) * res)
dem = LinearNDInterpolator(np.column_stack([x, y]), z)(cx, cy).astype(np.float32)
with rasterio.open(out, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", nodata=-9999,
                   crs=crs, transform=from_origin(x0, y1, res, res), tiled=True) as dst:
    dst.write(np.where(np.isfinite(dem), dem, -9999).astype(np.float32), 1)
"""


def ensure_gdal() -> str:
    """The gdal_grid binary, installing Debian's gdal-bin first if needed."""
    if shutil.which("gdal_grid") is None:
        install = ["apt-get", "install", "-y", "gdal-bin"]
        if subprocess.run(install, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    return shutil.which("gdal_grid") or "gdal_grid"


def timed(cmd: list[str], repeat: int) -> tuple[float, float, float]:
    """Median wall, CPU and peak RSS of ``repeat`` runs of ``cmd`` (the machine is shared)."""
    runs = np.array([time_command(cmd, env=ENV) for _ in range(repeat)])
    return tuple(float(v) for v in np.median(runs, axis=0))


def bench(name: str, inputs: list[str], work: Path, repeat: int) -> list[dict]:
    """gdal_grid, untiled scipy, and the pipeline (class and SMRF ground) on one data set."""
    work.mkdir(parents=True, exist_ok=True)
    sources = [read_source(p) for p in inputs]
    extent = (min(s.bounds[0] for s in sources), min(s.bounds[1] for s in sources),
              max(s.bounds[2] for s in sources), max(s.bounds[3] for s in sources))
    grid = plan_grid(extent, 1.0)
    crs_file = work / "crs.wkt"
    crs_file.write_text(common_crs(sources))
    n_points = sum(s.count for s in sources)
    with open(work / "ground.csv", "w") as fh:
        fh.write("x,y,z\n")
        for path in inputs:
            las = laspy.read(path)
            keep = np.isin(np.asarray(las.classification), (2, 9)) & ~np.asarray(las.withheld, bool)
            np.savetxt(fh, np.column_stack([las.x[keep], las.y[keep], las.z[keep]]), fmt="%.3f", delimiter=",")
    (work / "ground.vrt").write_text(
        f'<OGRVRTDataSource><OGRVRTLayer name="ground"><SrcDataSource>{work / "ground.csv"}</SrcDataSource>'
        '<GeometryType>wkbPoint25D</GeometryType><GeometryField encoding="PointFromColumns" x="x" y="y" z="z"/>'
        "</OGRVRTLayer></OGRVRTDataSource>")
    x1, y0 = grid.x0 + grid.width * grid.res, grid.y1 - grid.height * grid.res
    gdal = [ensure_gdal(), "-q", "-l", "ground", "-zfield", "z", "-a", "linear:radius=0:nodata=-9999",
            "-txe", str(grid.x0), str(x1), "-tye", str(grid.y1), str(y0), "-outsize", str(grid.width),
            str(grid.height), "-ot", "Float32", "-a_srs", str(crs_file), str(work / "ground.vrt"), str(work / "gdal.tif")]
    rows = []
    wall, cpu, rss = timed(gdal, repeat)
    rows.append({"data": name, "tool": "gdal_grid -a linear (class ground, 1 core)", "wall": wall, "cpu": cpu,
                 "rss": rss})
    anchor = wall
    wall, cpu, rss = timed([sys.executable, "-c", UNTILED, ",".join(inputs), str(work / "scipy.tif"), str(grid.x0),
                            str(grid.y1), str(grid.res), str(grid.width), str(grid.height), str(crs_file)], repeat)
    rows.append({"data": name, "tool": "untiled scipy TIN (class ground, 1 core)", "wall": wall, "cpu": cpu,
                 "rss": rss})
    for i, (label, command, executor, options, suffix) in enumerate(RUNS):
        if command == "hag" and len(inputs) > 1:
            continue  # one file in, one file out
        out, kpi = str(work / f"run{i}.{suffix}"), work / f"run{i}.kpi.json"
        wall, cpu, rss = timed(cli_command(command, inputs, out, executor, options, kpi), repeat)
        rows.append({"data": name, "tool": f"cloudbutton {label}, {executor} x2", "wall": wall, "cpu": cpu,
                     "rss": rss, **run_figures(kpi, out)})
    for r in rows:
        r.update(anchor=anchor, points=n_points, cells=grid.width * grid.height)
    return rows


def _row_line(r: dict) -> str:
    opt = (lambda k, f: f.format(r[k]) if k in r else "")
    return (f"| {r['data']} ({r['points']:,}, {r['cells']:,}) | {r['tool']} | {r['wall']:.2f} | "
            f"{r['wall'] / r['anchor']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | {opt('graph_wall', '{:.2f}')} | "
            f"{opt('task_rss', '{:.0f}')} | {opt('tiles', '{}')} | {opt('max_tile_points', '{:,}')} |")


def _data_of(line: str) -> str:
    """The data set named in a table row ('| Catalonia 12 tiles (386,712, 377,000) | ...' -> 'Catalonia 12 tiles')."""
    return line.split("|")[1].strip().rsplit(" (", 1)[0]


def update_report(rows: list[dict], note: str) -> None:
    """Replace, in the committed table, the rows of the data sets just measured; keep every other row as it was
    and add ``note`` under the table (the PNG is left as it was)."""
    old = (RESULTS / "geospatial.md").read_text().splitlines()
    fresh = {r["data"] for r in rows}
    out, placed = [], False
    stale = tuple(f"Rows of {data} re-measured" for data in fresh)
    for line in old:
        if line.startswith(stale):
            continue
        if line.startswith("| ") and not line.startswith("| data") and _data_of(line) in fresh:
            if not placed:
                out += [_row_line(r) for r in rows]
                placed = True
            continue
        out.append(line)
    if not placed:
        table_end = max(i for i, line in enumerate(out) if line.startswith("|")) + 1
        out[table_end:table_end] = [_row_line(r) for r in rows]
    (RESULTS / "geospatial.md").write_text("\n".join(out).rstrip("\n") + "\n\n" + note + "\n")


def write_report(rows: list[dict], header: str) -> None:
    """Markdown table + PNG under benchmarks/results/."""
    lines = [
        "# Geospatial benchmark: LiDAR -> DTM", "",
        f"{header} Measured by `python benchmarks/bench_geospatial.py`: each row on the real data "
        "sets is the median of several runs (`--repeat`), each synthetic row one run; the machine is shared, "
        "so compare within a data set.", "",
        "Wall, CPU and RSS are /usr/bin/time of the whole child process (imports, reading, writing); the "
        "pipeline rows run the `cloudbutton geospatial ...` command (report.html, kpi.json, timeline, trace "
        "included); "
        "'graph' is the pipeline's own kpi.json wall; 'task RSS' is the largest peak RSS of a read, SMRF or TIN "
        "task (on threads that is the whole process); 'max ground/tile' the most ground points one TIN task "
        "triangulated. Ratio = wall / gdal_grid wall in the same run. "
        "gdal_grid and untiled scipy grid the existing ground classes; `--ground smrf` also classifies "
        "ground itself (the full pipeline: read, ELM noise, SMRF, TIN, COG). The product rows (IDW, DSM, CHM, "
        "density, HAG) have no direct anchor here and are quoted against the same gdal_grid run as the unit.", "",
        "| data (points, cells) | tool | wall s | x gdal_grid | CPU s | peak RSS MB | graph s | task RSS MB | "
        "tiles | max ground/tile |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row_line(r) for r in rows]
    (RESULTS / "geospatial.md").write_text("\n".join(lines) + "\n")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        walls = [next((r["wall"] for r in rows if r["data"] == d and r["tool"] == tool), 0) for d in datasets]
        ax1.bar(np.arange(len(datasets)) + i * width, walls, width, label=tool)
    ax1.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets, rotation=15, fontsize=8)
    ax1.set_ylabel("wall s")
    ax1.set_title("Wall time per data set")
    ax1.legend(fontsize=7)
    synth = [r for r in rows if r["data"].startswith("synthetic")]
    for tool, key, style in (("untiled scipy TIN (class ground, 1 core)", "rss", "o-"),
                             ("gdal_grid -a linear (class ground, 1 core)", "rss", "s-"),
                             ("cloudbutton dem --ground smrf, processes x2", "task_rss", "^-")):
        pts = [(r["points"], r[key]) for r in synth if r["tool"] == tool]
        if pts:
            ax2.plot(*zip(*pts), style, label=f"{tool} ({'per task' if key == 'task_rss' else 'process'})")
    ax2.set_xlabel("input points")
    ax2.set_ylabel("peak RSS MB")
    ax2.set_title("Memory vs input size (synthetic, 250 m tiles)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "geospatial.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300,600,900", help="synthetic survey sides in metres ('' for none)")
    parser.add_argument("--real", default="topography,catalonia,autzen", help="real data sets to run ('' for none)")
    parser.add_argument("--update", action="store_true",
                        help="replace only the rows of the data sets run in the committed table (noted under it)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row on the real data sets (median)")
    args = parser.parse_args()
    header = describe(("cloudbutton", "laspy", "scipy", "rasterio", "lithops", "pyspark"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    compile_project()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-geo-") as tmp:
        work = Path(tmp)
        real = {"topography": ("Topography", [str(SHARED / "Topography.laz")]),
                "catalonia": ("Catalonia 12 tiles", expand_inputs([str(SHARED / "catalonia-tiles")])),
                "autzen": ("autzen_trim (feet)", [str(SHARED / "autzen_trim.laz")])}
        for key in filter(None, args.real.split(",")):
            name, inputs = real[key]
            rows += bench(name, inputs, work / key, args.repeat)
        for side in (float(s) for s in filter(None, args.sizes.split(","))):
            paths = write_tiles(make_survey(side, side, seed=1), str(work / f"syn{side:.0f}"), 2, 2)
            rows += bench(f"synthetic {side:.0f} m", paths, work / f"syn{side:.0f}-run", 1)
            print(f"synthetic {side:.0f} m done", file=sys.stderr)
    if args.update:
        update_report(rows, f"Rows of {', '.join(dict.fromkeys(r['data'] for r in rows))} re-measured "
                            f"separately ({header}), the pipeline rows as the `cloudbutton geospatial` command.")
    else:
        write_report(rows, header)
    print((RESULTS / "geospatial.md").read_text())


if __name__ == "__main__":
    main()
