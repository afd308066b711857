"""Writing the results: annotations table, all scores, and PNG ion images of confident annotations."""
from __future__ import annotations

import csv
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudbutton.core.storage import atomic_output

from .fdr import FDR_LEVELS

if TYPE_CHECKING:
    from .ions import IonTable
    from .pipeline import FdrResult

COLUMNS = ("formula", "adduct", "ion", "mz", "msm", "chaos", "spatial", "spectral", "fdr", "mz_err_ppm",
           "n_pixels")
IMAGE_FDR = 0.1
HOTSPOT_QUANTILE = 0.99


def _fmt(x: float) -> str:
    return f"{x:.8g}"


def ion_image(shape: tuple[int, int], sample_area: np.ndarray, positions: np.ndarray, values: np.ndarray
              ) -> np.ndarray:
    """Dense 2-D image (NaN outside the sample area) with 99th-percentile hot-spot clipping."""
    flat = np.full(shape[0] * shape[1], np.nan)
    flat[sample_area] = 0.0
    flat[sample_area[positions]] = values
    inside = flat[sample_area]
    return np.minimum(flat, np.quantile(inside, HOTSPOT_QUANTILE)).reshape(shape)


def _save_png(path: str, image: np.ndarray) -> None:
    """One PNG pixel per image pixel, viridis (256-entry table), transparent outside the sample area (NaN)."""
    from matplotlib import colormaps
    from PIL import Image

    table = colormaps["viridis"](np.linspace(0.0, 1.0, 256), bytes=True)
    inside = np.isfinite(image)
    top = float(image[inside].max()) if inside.any() else 0.0
    level = np.zeros(image.shape, dtype=np.uint8)
    if top > 0:
        level[inside] = np.round(image[inside] / top * 255).astype(np.uint8)
    rgba = table[level]
    rgba[~inside, 3] = 0
    Image.fromarray(rgba).save(path)


def write_outputs(result: FdrResult, *, out: str, ions: IonTable, shape: tuple[int, int],
                  sample_area: np.ndarray, centroid_mz: np.ndarray) -> dict[str, Any]:
    """Write ``annotations.csv`` (targets with FDR < 1, by MSM), ``scores.csv`` (every scored
    ion, target or decoy) and ``images/<ion>.png`` (FDR ≤ 10 %) into ``out``, atomically.
    """
    m = result.metrics
    ion_ids = m["ion"].astype(np.int64)
    fdr = result.fdr[ion_ids]
    is_target = ions.is_target[ion_ids]
    chosen = np.flatnonzero(is_target & (fdr < 1.0))
    names = np.array([ions.name(i) for i in ion_ids[chosen]]) if len(chosen) else np.zeros(0, dtype=str)
    chosen = chosen[np.lexsort((names, -m["msm"][chosen]))] if len(chosen) else chosen
    with atomic_output(out, directory=True) as tmp:
        with open(os.path.join(tmp, "annotations.csv"), "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for r in chosen:
                i = int(ion_ids[r])
                writer.writerow([ions.formula_names[ions.formula_idx[i]], ions.modifier_names[ions.modifier_idx[i]],
                                 ions.name(i), f"{centroid_mz[i]:.6f}",
                                 _fmt(m["msm"][r]), _fmt(m["chaos"][r]), _fmt(m["spatial"][r]),
                                 _fmt(m["spectral"][r]), _fmt(fdr[r]), f"{m['mz_err_ppm'][r]:.4f}",
                                 int(m["n_pixels"][r])])
        with open(os.path.join(tmp, "scores.csv"), "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("ion", "target", "msm"))
            for r, i in enumerate(ion_ids):
                writer.writerow([ions.name(int(i)), int(is_target[r]), _fmt(m["msm"][r])])
        os.makedirs(os.path.join(tmp, "images"))
        for i in sorted(result.images):
            positions, values = result.images[i]
            _save_png(os.path.join(tmp, "images", f"{ions.name(i)}.png"),
                      ion_image(shape, sample_area, positions, values))
    per_level = {level: int(np.sum(fdr[chosen] <= level)) for level in FDR_LEVELS}
    return {"annotations": int(len(chosen)), "per_level": per_level, "images": len(result.images),
            "out": out}
