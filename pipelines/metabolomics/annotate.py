"""Ion images from m/z-sorted peaks and per-ion scoring with METASPACE's early rejection.

Peaks are split into m/z segments (with margins so every isotope window of an
ion assigned to a segment lies inside it); each segment is scored on its own.
Peaks are put in a canonical order (m/z, then spectrum order) before summing,
so scores do not depend on how the dataset or the m/z axis was partitioned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics

LOW_MARGIN_DA = 1.0  # below a segment: the ppm half-window of its lightest ion
HIGH_MARGIN_DA = 12.0  # above: the spread of an ion's top isotope peaks
IMAGE_BATCH_VALUES = 250_000  # window peaks scored at once (~30 MB of temporaries, ~120 B per value)
SCORE_COLUMNS = ("ion", "msm", "chaos", "spatial", "spectral", "mz_err_ppm", "n_pixels", "min_int", "max_int",
                 "total_int", "mz")


@dataclass(frozen=True)
class ScoringParams:
    """Settings of the scoring stage (one picklable object for every task)."""

    ppm: float
    n_levels: int
    min_px: int
    shape: tuple[int, int]


def segment_bounds(approx_mz: np.ndarray, n: int) -> np.ndarray:
    """``n`` m/z segments holding about equal numbers of ions: ``n + 1`` bounds, ±inf at the ends."""
    inner = np.quantile(np.sort(approx_mz), np.arange(1, n) / n) if n > 1 and len(approx_mz) else []
    return np.concatenate(([-np.inf], np.asarray(inner, dtype=float), [np.inf]))


def split_peaks(peaks: tuple[np.ndarray, np.ndarray, np.ndarray], bounds: np.ndarray
                ) -> list[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Emit ``(segment, (mz, intensity, pixel))`` pairs, copying peaks that fall in a neighbour's margin."""
    mz, ints, pix = peaks
    out = []
    for k in range(len(bounds) - 1):
        keep = (mz >= bounds[k] - LOW_MARGIN_DA) & (mz < bounds[k + 1] + HIGH_MARGIN_DA)
        if keep.any():
            out.append((k, (mz[keep], ints[keep].astype(np.float32), pix[keep].astype(np.int32))))
    return out


def merge_chunks(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """One segment's peaks from every dataset task, sorted by m/z.

    Chunks arrive in dataset-partition order and partitions are contiguous
    spectra ranges, so their concatenation is in spectrum order whatever the
    partition count; a stable sort by m/z then gives one canonical order.
    """
    mz = np.concatenate([c[0] for c in chunks])
    ints = np.concatenate([c[1] for c in chunks]).astype(np.float64)
    pix = np.concatenate([c[2] for c in chunks]).astype(np.int64)
    order = np.argsort(mz, kind="stable")
    return mz[order], ints[order], pix[order]


def _sparse_images(lo: np.ndarray, hi: np.ndarray, ints: np.ndarray, pos: np.ndarray, mz: np.ndarray,
                   n_area: int) -> dict[str, np.ndarray]:
    """Sparse isotope images of windows ``[lo, hi)`` (n ions × k peaks).

    Returns the non-zero pixels as parallel arrays ``image`` (ion·k + peak),
    ``pos`` and ``value`` (duplicates summed, in canonical peak order), sorted
    by (image, pos), plus the intensity-weighted window m/z ``mz_mean`` (n, k).
    """
    n, k = lo.shape
    counts = (hi - lo).ravel()
    group = np.repeat(np.arange(n * k), counts)
    idx = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo.ravel(), counts)
    keys, inverse = np.unique(group * n_area + pos[idx], return_inverse=True)
    value = np.bincount(inverse, weights=ints[idx], minlength=len(keys))
    total = np.bincount(group, weights=ints[idx], minlength=n * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mz_mean = np.bincount(group, weights=ints[idx] * mz[idx], minlength=n * k) / total
    return {"image": keys // n_area, "pos": keys % n_area, "value": value, "mz_mean": mz_mean.reshape(n, k)}


def score_segment(peaks: tuple[np.ndarray, np.ndarray, np.ndarray], ion_ids: np.ndarray,
                  theo_mz: np.ndarray, theo_ints: np.ndarray, is_target: np.ndarray, area: np.ndarray,
                  params: ScoringParams) -> dict[str, np.ndarray | list]:
    """Score every ion of a segment; keep those with MSM > 0.

    ``area`` holds the sorted pixel indices that have a spectrum (the sample area).
    Images stay sparse (cost grows with their non-zero pixels, not the image
    size); chaos builds one dense image per ion that passed spectral and spatial.
    Memory: the segment's peaks plus one batch of ``IMAGE_BATCH_VALUES`` image values.

    Returns
    -------
    dict with arrays ``ion, msm, chaos, spatial, spectral, mz_err_ppm, n_pixels, min_int, max_int,
    total_int, mz`` (one row per kept ion, in input order; intensities of the first isotope image,
    ``mz`` its first centroid) and
    ``images``: for kept targets, every isotope image as parallel arrays ``ion, peak, pos`` (area
    positions) and ``value`` (float32).
    """
    mz, ints, pix = peaks
    pos = np.searchsorted(area, pix)
    n_area, k = len(area), theo_mz.shape[1]
    half = theo_mz * params.ppm * 1e-6
    lo = np.searchsorted(mz, theo_mz - half, side="left")
    hi = np.searchsorted(mz, theo_mz + half, side="right")
    hi = np.where(theo_ints > 0, hi, lo)
    filled = hi > lo
    candidates = np.flatnonzero(filled[:, 0] & filled[:, 1:].any(axis=1))
    cum_peaks = np.cumsum((hi - lo)[candidates].sum(axis=1))
    rows: list[tuple] = []
    images_out: list[tuple[np.ndarray, ...]] = []
    height, width_px = params.shape
    start = 0
    while start < len(candidates):
        done = cum_peaks[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cum_peaks, done + IMAGE_BATCH_VALUES, side="right")))
        sel = candidates[start:stop]
        start = stop
        sp = _sparse_images(lo[sel], hi[sel], ints, pos, mz, n_area)
        img, ipos, val = sp["image"], sp["pos"], sp["value"]
        nnz = np.bincount(img, minlength=len(sel) * k)
        keep = nnz[img] >= params.min_px
        img, ipos, val = img[keep], ipos[keep], val[keep]
        nnz = np.where(nnz >= params.min_px, nnz, 0).reshape(len(sel), k)
        ion, peak = img // k, img % k
        first = peak == 0
        ion0, pos0, val0 = ion[first], ipos[first], val[first]
        key0 = ion0 * n_area + pos0
        at = np.clip(np.searchsorted(key0, ion * n_area + ipos), 0, max(len(key0) - 1, 0))
        in0 = (key0[at] == ion * n_area + ipos) if len(key0) else np.zeros(len(ion), dtype=bool)
        n_img = len(sel) * k
        totals = np.bincount(img[in0], weights=val[in0], minlength=n_img).reshape(len(sel), k)
        sums = np.bincount(img, weights=val, minlength=n_img).reshape(len(sel), k)
        squares = np.bincount(img, weights=val * val, minlength=n_img).reshape(len(sel), k)
        cross = np.bincount(img[in0], weights=val[in0] * val0[at[in0]], minlength=n_img).reshape(len(sel), k)
        complete = (nnz[:, 0] > 0) & (nnz[:, 1:] > 0).any(axis=1)
        spec = np.where(complete, metrics.spectral(totals, theo_ints[sel]), 0.0)
        spat = np.where(spec > 0, metrics.spatial(sums, squares, cross, nnz[:, 0], theo_ints[sel], n_area), 0.0)
        bounds0 = np.searchsorted(ion0, np.arange(len(sel) + 1))
        bounds_all = np.searchsorted(ion, np.arange(len(sel) + 1))
        for j in np.flatnonzero(spat > 0):
            a, b = bounds0[j], bounds0[j + 1]
            dense = np.zeros(height * width_px, dtype=np.float32)
            dense[area[pos0[a:b]]] = val0[a:b]
            chaos = metrics.chaos(dense.reshape(height, width_px), params.n_levels)
            msm = chaos * spat[j] * spec[j]
            if msm <= 0:
                continue
            i = sel[j]
            err = (sp["mz_mean"][j, 0] - theo_mz[i, 0]) / theo_mz[i, 0] * 1e6
            rows.append((ion_ids[i], msm, chaos, spat[j], spec[j], err, nnz[j, 0], val0[a:b].min(), val0[a:b].max(),
                         sums[j, 0], theo_mz[i, 0]))
            if is_target[i]:
                c, d = bounds_all[j], bounds_all[j + 1]
                images_out.append((np.full(d - c, ion_ids[i], dtype=np.int64), peak[c:d].astype(np.int8),
                                   ipos[c:d].astype(np.int32), val[c:d].astype(np.float32)))
    cols = list(zip(*rows)) if rows else [[]] * len(SCORE_COLUMNS)
    out: dict[str, np.ndarray | list] = {
        name: np.asarray(col, dtype=np.int64 if name in ("ion", "n_pixels") else np.float64)
        for name, col in zip(SCORE_COLUMNS, cols)}
    parts = list(zip(*images_out)) if images_out else [[np.zeros(0, t)] for t in (np.int64, np.int8, np.int32,
                                                                                   np.float32)]
    out["images"] = dict(zip(("ion", "peak", "pos", "value"), (np.concatenate(p) for p in parts)))
    return out
