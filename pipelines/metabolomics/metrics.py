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
_SQUARE_3D = np.stack([np.zeros((3, 3), bool), _SQUARE, np.zeros((3, 3), bool)])


def spectral(images: np.ndarray, theo_ints: np.ndarray) -> np.ndarray:
    """Isotope-pattern match of a batch.

    Parameters
    ----------
    images : (n, k, pixels) array
        Isotope images over the sample area.
    theo_ints : (n, k) array
        Theoretical intensities (zero padding included).

    Returns
    -------
    (n,) array: 1 − mean |t/‖t‖ − s/‖s‖|, with s the isotope totals over the
    pixels where image 0 is positive; exactly 1 and NaN map to 0.
    """
    mask = images[:, 0, :] > 0
    totals = np.zeros(images.shape[:2])
    for k in range(images.shape[1]):
        totals[:, k] = np.where(mask, images[:, k, :], 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = totals / np.linalg.norm(totals, axis=1, keepdims=True)
        t = theo_ints / np.linalg.norm(theo_ints, axis=1, keepdims=True)
        score = 1.0 - np.abs(t - s).mean(axis=1)
    score[~np.isfinite(score) | (score == 1.0)] = 0.0
    return score


def spatial(images: np.ndarray, theo_ints: np.ndarray) -> np.ndarray:
    """Weighted mean Pearson correlation of image 0 with images 1.., clipped to [0, 1].

    Correlations run over all sample-area pixels, zeros included; weights are
    the theoretical intensities of peaks 2..k.  0 when image 0 has < 2 non-zero
    pixels or the weights sum to 0; NaN correlations count as 0.
    """
    centred = images - images.mean(axis=2, keepdims=True)
    cov0 = (centred[:, :1, :] * centred).sum(axis=2)
    var = (centred * centred).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov0[:, 1:] / np.sqrt(var[:, :1] * var[:, 1:])
    corr[~np.isfinite(corr)] = 0.0
    weights = theo_ints[:, 1:]
    wsum = weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (corr * weights).sum(axis=1) / wsum
    ok = (np.count_nonzero(images[:, 0, :], axis=1) >= 2) & (wsum > 0) & np.isfinite(score)
    return np.where(ok, np.clip(score, 0.0, 1.0), 0.0)


def _crop(image: np.ndarray, pad: int = 2) -> np.ndarray:
    """The bounding box of the non-zero pixels plus ``pad`` (enough for dilate-then-erode)."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return image[max(rows[0] - pad, 0):rows[-1] + pad + 1, max(cols[0] - pad, 0):cols[-1] + pad + 1]


def chaos(image: np.ndarray, n_levels: int = 30) -> float:
    """ims-cpp's measure of chaos of a 2-D ion image (1 = one compact object).

    Levels ``max·i/(n_levels−1)`` (float32, as ims-cpp), level set ``img > L``,
    dilated with a 4-neighbour cross, eroded with a 3×3 square (outside pixels
    ignored), 4-connected components counted; chaos = 1 − mean(count)/#non-zero.
    A result ≈ 1 is set to 0, as METASPACE does.
    """
    img = np.asarray(image, dtype=np.float32)
    not_null = int(np.count_nonzero(img > 0))
    if not_null == 0:
        return 0.0
    img = _crop(img)
    levels = (np.float32(img.max()) * np.arange(n_levels, dtype=np.float32)) / np.float32(n_levels - 1)
    sets = img[None, :, :] > levels[:, None, None]
    dilated = ndimage.binary_dilation(sets, structure=_CROSS_3D)
    eroded = ndimage.binary_erosion(dilated, structure=_SQUARE_3D, border_value=1)
    labels, _ = ndimage.label(eroded, structure=_CROSS_3D)
    top = np.maximum.accumulate(labels.reshape(n_levels, -1).max(axis=1))
    counts = np.diff(np.concatenate(([0], top)))
    value = 1.0 - counts.mean() / not_null
    return 0.0 if np.isclose(value, 1.0) else float(value)
