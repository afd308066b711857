"""Ion images from m/z-sorted peaks and per-ion scoring with METASPACE's early rejection.

Peaks are split into m/z segments (with margins so every isotope window of an
ion assigned to a segment lies inside it); each segment is scored on its own.
Peaks are put in a canonical order (m/z, pixel, intensity) before summing, so
scores do not depend on how the dataset or the m/z axis was partitioned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics

LOW_MARGIN_DA = 1.0  # below a segment: the ppm half-window of its lightest ion
HIGH_MARGIN_DA = 12.0  # above: the spread of an ion's top isotope peaks
IMAGE_BATCH_VALUES = 2_000_000  # isotope-image values scored at once (16 MB of float64)


@dataclass(frozen=True)
class ScoringParams:
    """Settings of the scoring stage (one picklable object for every task)."""

    ppm: float
    n_levels: int
    min_px: int
    shape: tuple[int, int]
    sample_area: np.ndarray  # sorted pixel indices with a spectrum


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


def _merge(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    mz = np.concatenate([c[0] for c in chunks])
    ints = np.concatenate([c[1] for c in chunks]).astype(np.float64)
    pix = np.concatenate([c[2] for c in chunks]).astype(np.int64)
    order = np.lexsort((ints, pix, mz))
    return mz[order], ints[order], pix[order]


def _images(lo: np.ndarray, hi: np.ndarray, ints: np.ndarray, pos: np.ndarray, mz: np.ndarray,
            n_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Isotope images (n, k, n_area) and intensity-weighted window m/z (n, k) for windows [lo, hi)."""
    n, k = lo.shape
    counts = (hi - lo).ravel()
    group = np.repeat(np.arange(n * k), counts)
    idx = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo.ravel(), counts)
    images = np.bincount(group * n_area + pos[idx], weights=ints[idx], minlength=n * k * n_area)
    total = np.bincount(group, weights=ints[idx], minlength=n * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mz_mean = np.bincount(group, weights=ints[idx] * mz[idx], minlength=n * k) / total
    return images.reshape(n, k, n_area), mz_mean.reshape(n, k)


def score_segment(peaks: tuple[np.ndarray, np.ndarray, np.ndarray], ion_ids: np.ndarray,
                  theo_mz: np.ndarray, theo_ints: np.ndarray, is_target: np.ndarray,
                  params: ScoringParams) -> dict[str, np.ndarray | list]:
    """Score every ion of a segment; keep those with MSM > 0.

    Memory: the segment's peaks plus one batch of ``IMAGE_BATCH_VALUES`` image values.

    Returns
    -------
    dict with arrays ``ion, msm, chaos, spatial, spectral, mz_err_ppm, n_pixels``
    (one row per kept ion, in input order) and ``images``: for kept targets,
    ``(ion, area positions, float32 values)`` of the first isotope image.
    """
    mz, ints, pix = peaks
    area = params.sample_area
    pos = np.searchsorted(area, pix)
    n_area = len(area)
    half = theo_mz * params.ppm * 1e-6
    lo = np.searchsorted(mz, theo_mz - half, side="left")
    hi = np.searchsorted(mz, theo_mz + half, side="right")
    hi = np.where(theo_ints > 0, hi, lo)
    filled = hi > lo
    candidates = np.flatnonzero(filled[:, 0] & filled[:, 1:].any(axis=1))
    rows: list[tuple] = []
    images_out: list[tuple[int, np.ndarray, np.ndarray]] = []
    batch = max(1, IMAGE_BATCH_VALUES // (theo_mz.shape[1] * n_area))
    height, width = params.shape
    for start in range(0, len(candidates), batch):
        sel = candidates[start:start + batch]
        imgs, mz_mean = _images(lo[sel], hi[sel], ints, pos, mz, n_area)
        nnz = np.count_nonzero(imgs, axis=2)
        imgs[nnz < params.min_px] = 0.0
        complete = (nnz[:, 0] >= params.min_px) & (nnz[:, 1:] >= params.min_px).any(axis=1)
        spec = np.where(complete, metrics.spectral(imgs, theo_ints[sel]), 0.0)
        spat = np.zeros(len(sel))
        go = spec > 0
        spat[go] = metrics.spatial(imgs[go], theo_ints[sel][go])
        for j in np.flatnonzero(spat > 0):
            dense = np.zeros(height * width, dtype=np.float32)
            dense[area] = imgs[j, 0]
            chaos = metrics.chaos(dense.reshape(height, width), params.n_levels)
            msm = chaos * spat[j] * spec[j]
            if msm <= 0:
                continue
            i = sel[j]
            err = (mz_mean[j, 0] - theo_mz[i, 0]) / theo_mz[i, 0] * 1e6
            rows.append((ion_ids[i], msm, chaos, spat[j], spec[j], err, nnz[j, 0]))
            if is_target[i]:
                keep = np.flatnonzero(imgs[j, 0])
                images_out.append((int(ion_ids[i]), keep.astype(np.int32), imgs[j, 0, keep].astype(np.float32)))
    cols = list(zip(*rows)) if rows else [[]] * 7
    names = ("ion", "msm", "chaos", "spatial", "spectral", "mz_err_ppm", "n_pixels")
    out: dict[str, np.ndarray | list] = {
        name: np.asarray(col, dtype=np.int64 if name in ("ion", "n_pixels") else np.float64)
        for name, col in zip(names, cols)}
    out["images"] = images_out
    return out
