"""Writing the results: annotations (ours and METASPACE's export format), all scores, ion images.

The annotate tasks stage the isotope images of their scored targets (one file per
m/z segment, beside the output folder); the export renders PNGs of the
annotations at the image FDR level from those files, one segment at a time, and
removes them.
"""
from __future__ import annotations

import csv
import functools
import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudbutton.core import storage
from cloudbutton.core.storage import atomic_output

from .fdr import FDR_LEVELS

if TYPE_CHECKING:
    from .pipeline import FdrResult, Setup

COLUMNS = ("database", "formula", "chem_mod", "neutral_loss", "adduct", "ion", "mz", "msm", "chaos", "spatial",
           "spectral", "fdr", "mz_err_ppm", "n_pixels", "min_intensity", "max_intensity", "total_intensity",
           "n_isomers", "molecule_ids", "molecule_names", "isobars")
#: METASPACE's annotation-table CSV export (webapp), same meaning, same names
METASPACE_COLUMNS = ("datasetName", "database", "formula", "adduct", "chemMod", "neutralLoss", "ion", "mz", "msm",
                     "fdr", "rhoSpatial", "rhoSpectral", "rhoChaos", "moleculeNames", "moleculeIds", "minIntensity",
                     "maxIntensity", "totalIntensity", "isomers", "isobars")
HOTSPOT_QUANTILE = 0.99
IMAGE_FDR = 0.1  # default: ion images of the annotations at FDR <= 10 %


def _fmt(x: float) -> str:
    return f"{x:.8g}"


def staging_folder(out: str) -> str:
    """Where the annotate tasks stage ion images: beside ``out``, never inside someone's folder."""
    return out.rstrip("/") + ".images-staging"


PIXEL = np.dtype([("pos", "<i4"), ("value", "<f4")])  # one staged image pixel


def staging_uri(staging: str, segment: int) -> str:
    """Stem of a segment's staged images: ``<stem>.bin`` (pixels) and ``<stem>.npz`` (index)."""
    return f"{staging}/segment-{segment:05d}"


def save_images(images: dict[str, np.ndarray], uri: str) -> None:
    """Stage one segment's target isotope images (parallel arrays ``ion, peak, pos, value``, sorted by ion
    and peak) as 8-byte pixels plus an index of (ion, peak, first pixel, pixel count), so the export reads
    back only the images it draws."""
    keys = images["ion"] * 16 + images["peak"]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=np.int64)
    pixels = np.empty(len(keys), dtype=PIXEL)
    pixels["pos"], pixels["value"] = images["pos"], images["value"]
    with atomic_output(uri + ".bin") as tmp, open(tmp, "wb") as handle:
        handle.write(pixels.tobytes())
    buffer = io.BytesIO()
    np.savez(buffer, ion=images["ion"][starts], peak=images["peak"][starts], start=starts,
             count=np.diff(np.r_[starts, len(keys)]))
    with atomic_output(uri + ".npz") as tmp, open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())


def ion_image(shape: tuple[int, int], sample_area: np.ndarray, positions: np.ndarray, values: np.ndarray
              ) -> np.ndarray:
    """Dense 2-D image (NaN outside the sample area), clipped at the 99th percentile of the pixels with signal."""
    flat = np.full(shape[0] * shape[1], np.nan)
    flat[sample_area] = 0.0
    flat[sample_area[positions]] = values
    top = np.quantile(values, HOTSPOT_QUANTILE) if len(values) else 0.0
    return np.minimum(flat, top).reshape(shape)


@functools.lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    """The 256-entry viridis table as RGBA bytes."""
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.0, 1.0, 256), bytes=True)


def _save_png(path: str, image: np.ndarray) -> None:
    """One PNG pixel per image pixel, viridis (256-entry table), transparent outside the sample area (NaN).

    zlib level 1: PNG is lossless, so only the file size changes (the default level took most of the export).
    """
    from PIL import Image

    table = _viridis()
    inside = np.isfinite(image)
    top = float(image[inside].max()) if inside.any() else 0.0
    level = np.zeros(image.shape, dtype=np.uint8)
    if top > 0:
        level[inside] = np.round(image[inside] / top * 255).astype(np.uint8)
    rgba = table[level]
    rgba[~inside, 3] = 0
    Image.fromarray(rgba).save(path, compress_level=1)


def _isobars(mz: np.ndarray, ppm: float) -> list[list[int]]:
    """For each ion (by position), the others whose first-peak ± ppm windows overlap its own."""
    order = np.argsort(mz, kind="stable")
    sorted_mz = mz[order]
    lo = np.searchsorted(sorted_mz, mz * (1 - 2 * ppm * 1e-6), side="left")
    hi = np.searchsorted(sorted_mz, mz * (1 + 2 * ppm * 1e-6), side="right")
    return [[int(order[j]) for j in range(a, b) if order[j] != i] for i, (a, b) in enumerate(zip(lo, hi))]


def _rows(result: FdrResult, setup: Setup, ppm: float) -> list[dict[str, Any]]:
    """Annotation rows: per database, its targets with FDR < 1, by MSM (ties by ion name)."""
    ions, m = setup.ions, result.metrics
    scored = m["ion"].astype(np.int64)
    rows: list[dict[str, Any]] = []
    for k, db in enumerate(setup.databases):
        fdr = result.fdr[k][scored]
        chosen = np.flatnonzero(ions.is_target[scored] & (fdr < 1.0))
        names = [ions.name(int(scored[r])) for r in chosen]
        chosen = chosen[np.lexsort((names, -m["msm"][chosen]))] if len(chosen) else chosen
        ids = scored[chosen]
        isobars = [[int(ids[j]) for j in near] for near in _isobars(m["mz"][chosen], ppm)]
        for r, ion, near in zip(chosen, ids, isobars):
            formula = str(ions.formula_names[ions.formula_idx[ion]])
            chem_mod, loss, adduct = ions.modifier_parts[str(ions.modifier_names[ions.modifier_idx[ion]])]
            molecules = db.molecules.get(formula, ())
            rows.append({
                "database": db.name, "formula": formula, "chem_mod": chem_mod, "neutral_loss": loss,
                "adduct": adduct, "ion": ions.name(int(ion)), "ion_id": int(ion), "mz": float(m["mz"][r]),
                "msm": m["msm"][r], "chaos": m["chaos"][r], "spatial": m["spatial"][r],
                "spectral": m["spectral"][r], "fdr": fdr[r], "mz_err_ppm": m["mz_err_ppm"][r],
                "n_pixels": int(m["n_pixels"][r]), "min_intensity": m["min_int"][r],
                "max_intensity": m["max_int"][r], "total_intensity": m["total_int"][r],
                "n_isomers": len(molecules), "molecule_ids": [i for i, _ in molecules],
                "molecule_names": [n for _, n in molecules], "isobars": [ions.name(i) for i in near]})
    return rows


def _write_tables(tmp: str, rows: list[dict[str, Any]], result: FdrResult, setup: Setup, dataset_name: str,
                  charge: int) -> None:
    with open(os.path.join(tmp, "annotations.csv"), "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row["database"], row["formula"], row["chem_mod"], row["neutral_loss"], row["adduct"],
                             row["ion"], f"{row['mz']:.6f}", *(_fmt(row[c]) for c in ("msm", "chaos", "spatial",
                                                                                      "spectral", "fdr")),
                             f"{row['mz_err_ppm']:.4f}", row["n_pixels"],
                             *(_fmt(row[c]) for c in ("min_intensity", "max_intensity", "total_intensity")),
                             row["n_isomers"], ";".join(row["molecule_ids"]), ";".join(row["molecule_names"]),
                             ";".join(row["isobars"])])
    sign = "+" if charge > 0 else "-"
    with open(os.path.join(tmp, "metaspace_annotations.csv"), "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(METASPACE_COLUMNS)
        for row in rows:
            writer.writerow([dataset_name, row["database"], row["formula"], row["adduct"], row["chem_mod"],
                             row["neutral_loss"], row["ion"] + sign, f"{row['mz']:.6f}", _fmt(row["msm"]),
                             _fmt(row["fdr"]), _fmt(row["spatial"]), _fmt(row["spectral"]), _fmt(row["chaos"]),
                             ", ".join(row["molecule_names"]), ", ".join(row["molecule_ids"]),
                             _fmt(row["min_intensity"]), _fmt(row["max_intensity"]),
                             _fmt(row["total_intensity"]), row["n_isomers"], len(row["isobars"])])
    m, ions = result.metrics, setup.ions
    with open(os.path.join(tmp, "scores.csv"), "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("ion", "target", "msm"))
        for ion, msm in zip(m["ion"].astype(np.int64), m["msm"]):
            writer.writerow([ions.name(int(ion)), int(ions.is_target[ion]), _fmt(msm)])


def _write_images(folder: str, wanted: set[int], setup: Setup, shape: tuple[int, int], staging: str,
                  n_segments: int) -> int:
    """PNG of every isotope image of the ``wanted`` ions: ``<ion>.png`` (first isotope) and
    ``isotopes/<ion>.isotope<k>.png`` (k = 1, 2, …)."""
    written = 0
    for segment in range(n_segments):
        uri = staging_uri(staging, segment)
        if not storage.exists(uri + ".npz"):
            continue
        with np.load(io.BytesIO(storage.read_range(uri + ".npz"))) as index:
            ion, peak, start, count = index["ion"], index["peak"], index["start"], index["count"]
        rows = np.flatnonzero(np.isin(ion, list(wanted)))
        for group in np.split(rows, np.flatnonzero(np.diff(ion[rows])) + 1) if len(rows) else []:
            first = int(start[group[0]])  # an ion's images are contiguous: one read each
            block = np.frombuffer(storage.read_range(uri + ".bin", first * PIXEL.itemsize,
                                                     int(start[group[-1]] + count[group[-1]]) * PIXEL.itemsize),
                                  dtype=PIXEL)
            name = setup.ions.name(int(ion[group[0]]))
            for r in group:
                pixels = block[int(start[r]) - first:int(start[r] + count[r]) - first]
                path = os.path.join(folder, f"{name}.png") if peak[r] == 0 else \
                    os.path.join(folder, "isotopes", f"{name}.isotope{int(peak[r])}.png")
                _save_png(path, ion_image(shape, setup.sample_area, pixels["pos"], pixels["value"]))
                written += 1
    return written


def write_outputs(result: FdrResult, *, out: str, setup: Setup, shape: tuple[int, int], staging: str,
                  n_segments: int, ppm: float, image_fdr: float, dataset_name: str, charge: int) -> dict[str, Any]:
    """Write ``annotations.csv``, ``metaspace_annotations.csv``, ``scores.csv`` and ``images/`` into ``out``,
    atomically; then remove the staging folder (staged images and centroid segments).
    """
    rows = _rows(result, setup, ppm)
    wanted = {row["ion_id"] for row in rows if row["fdr"] <= image_fdr}
    with atomic_output(out, directory=True) as tmp:
        _write_tables(tmp, rows, result, setup, dataset_name, charge)
        os.makedirs(os.path.join(tmp, "images", "isotopes"))
        n_images = _write_images(os.path.join(tmp, "images"), wanted, setup, shape, staging, n_segments)
    storage.delete_prefix(staging)
    per_level = {level: int(sum(row["fdr"] <= level for row in rows)) for level in FDR_LEVELS}
    return {"annotations": len(rows), "per_level": per_level, "images": n_images, "out": out,
            "databases": [db.name for db in setup.databases]}
