"""METASPACE's image metrics: spectral isotope-pattern match, spatial isotope correlation, chaos.

MSM = chaos × spatial × spectral.  Definitions follow pyImagingMSpec / ims-cpp
(see the research note); the chaos metric is the ims-cpp ``measureOfChaos``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

_CROSS = ndimage.generate_binary_structure(2, 1)
_SQUARE = np.ones((3, 3), dtype=bool)
# stacked level sets: no connectivity between levels
_CROSS_3D = np.stack([np.zeros((3, 3), bool), _CROSS, np.zeros((3, 3), bool)])


def spectral(totals: np.ndarray, theo_ints: np.ndarray) -> np.ndarray:
    """Isotope-pattern match of a batch of ions.

    Parameters
    ----------
    totals : (n, k) array
        Sum of isotope image ``i`` over the pixels where image 0 is positive.
    theo_ints : (n, k) array
        Theoretical intensities (zero padding included).

    Returns
    -------
    (n,) array: 1 − mean |t/‖t‖ − s/‖s‖|; exactly 1 and NaN map to 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        s = totals / np.linalg.norm(totals, axis=1, keepdims=True)
        t = theo_ints / np.linalg.norm(theo_ints, axis=1, keepdims=True)
        score = 1.0 - np.abs(t - s).mean(axis=1)
    score[~np.isfinite(score) | (score == 1.0)] = 0.0
    return score


def spatial(sums: np.ndarray, squares: np.ndarray, cross: np.ndarray, nnz0: np.ndarray,
            theo_ints: np.ndarray, n_pixels: int) -> np.ndarray:
    """Weighted mean Pearson correlation of image 0 with images 1.., clipped to [0, 1].

    Computed from sufficient statistics so sparse images cost O(non-zeros):
    ``sums``/``squares`` (n, k) are Σx and Σx² of each image, ``cross`` (n, k)
    is Σ x0·xi, over all ``n_pixels`` sample-area pixels (zeros included).
    Weights are the theoretical intensities of peaks 2..k.  0 when image 0
    has < 2 non-zero pixels (``nnz0``) or the weights sum to 0; NaN correlations count as 0.
    """
    n = float(n_pixels)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = n * squares - sums * sums
        cov = n * cross[:, 1:] - sums[:, :1] * sums[:, 1:]
        corr = cov / np.sqrt(var[:, :1] * var[:, 1:])
        corr[~np.isfinite(corr)] = 0.0
        weights = theo_ints[:, 1:]
        wsum = weights.sum(axis=1)
        score = (corr * weights).sum(axis=1) / wsum
    ok = (nnz0 >= 2) & (wsum > 0) & np.isfinite(score)
    return np.where(ok, np.clip(score, 0.0, 1.0), 0.0)


def _near_signal(mask: np.ndarray) -> np.ndarray | slice:
    """Rows (or columns) within 2 of one with signal, or all when that keeps >= 90 % (METASPACE ``chaos_metric``)."""
    keep = mask.copy()
    for shift in (1, 2):
        keep[shift:] |= mask[:-shift]
        keep[:-shift] |= mask[shift:]
    return slice(None) if np.count_nonzero(keep) >= 0.9 * len(keep) else keep


def chaos(image: np.ndarray, n_levels: int = 30) -> float:
    """METASPACE's measure of chaos of a 2-D ion image (1 = one compact object).

    As METASPACE: rows, then columns, farther than 2 from any signal are dropped
    (unless >= 90 % would stay); then ims-cpp ``measureOfChaos``: levels
    ``max·i/n_levels`` (float32), level set ``img > L``, dilated with a 4-neighbour
    cross, eroded with a 3×3 square (outside pixels ignored), 4-connected components
    counted; chaos = 1 − mean(count)/#non-zero.  A result ≈ 1 is set to 0.

    Thresholding commutes with flat dilation and erosion, so the morphology is
    done once on the grey image (max then min filter) instead of once per level.
    """
    img = np.asarray(image, dtype=np.float32)
    img = img[_near_signal(np.any(img, axis=1)), :]
    img = img[:, _near_signal(np.any(img, axis=0))]
    not_null = int(np.count_nonzero(img > 0))
    if not_null == 0:
        return 0.0
    top = img.max()
    closed = ndimage.minimum_filter(ndimage.maximum_filter(img, footprint=_CROSS, mode="nearest"),
                                    footprint=_SQUARE, mode="nearest")  # "nearest": outside pixels ignored
    base = closed > 0
    if not base.any():
        return 0.0  # every level is empty: chaos 1, which METASPACE maps to 0
    rows, cols = np.flatnonzero(base.any(axis=1)), np.flatnonzero(base.any(axis=0))
    closed = closed[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    levels = (top * np.arange(n_levels, dtype=np.float32)) / np.float32(n_levels)
    labels, _ = ndimage.label(closed[None, :, :] > levels[:, None, None], structure=_CROSS_3D)
    last = np.maximum.accumulate(labels.reshape(n_levels, -1).max(axis=1))
    counts = np.diff(np.concatenate(([0], last)))
    value = 1.0 - counts.mean() / not_null
    return 0.0 if np.isclose(value, 1.0) else float(value)
