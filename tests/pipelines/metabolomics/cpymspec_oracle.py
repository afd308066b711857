"""Test oracle: cpyMSpec's ``envelopeCentroids`` (ims-cpp ``ms/spectrum.cpp``) transcribed step by step.

A sequential generator walks the m/z axis with a step of FWHM/25 of the *current*
fine peak; it keeps a 15-sample window and emits a centroid at each local maximum
(>= min abundance): intensity-weighted m/z from the left minimum to before the
right rise.  Slow (plain Python), for a handful of patterns only.
"""
from __future__ import annotations

import math

import numpy as np

FWHM_TO_SIGMA = 2.3548200450309493
WIDTH = 6


class Envelope:
    """ims-cpp ``EnvelopeGenerator``: sorted queries, sigma switched at each new isotope cluster."""

    def __init__(self, masses: np.ndarray, intensities: np.ndarray, sigma_at) -> None:
        order = np.argsort(masses, kind="stable")
        self.m, self.i = list(masses[order]), list(intensities[order])
        self.sigma_at = sigma_at
        self.index, self.empty, self.last = 0, False, -math.inf
        self.sigma = sigma_at(self.m[0])

    def _value(self, mz: float) -> float:
        if self.empty:
            return 0.0
        k, n, total = self.index, len(self.m), 0.0
        while k > 0 and mz - self.m[k - 1] < WIDTH * self.sigma:
            k -= 1
        while k < n and self.m[k] - mz <= WIDTH * self.sigma:
            total += self.i[k] * math.exp(-0.5 * ((self.m[k] - mz) / self.sigma) ** 2)
            k += 1
        return total

    def __call__(self, mz: float) -> float:
        assert mz >= self.last
        if mz > self.m[self.index] + WIDTH * self.sigma:
            self.empty = True
        if self.empty and self.index + 1 < len(self.m) and mz >= self.m[self.index + 1] - WIDTH * self.sigma:
            self.empty = False
            self.index += 1
            self.sigma = self.sigma_at(self.m[self.index])
        self.last = mz
        return self._value(mz)


def _centroid(mzs: list[float], ints: list[float]) -> tuple[float, float]:
    """ims-cpp ``centroid``: from the window's centre walk left while rising, sum right until the next rise."""
    centre = len(mzs) // 2
    j = centre
    while j > 0 and ints[j - 1] < ints[j]:
        j -= 1
    mz = total = top = 0.0
    while j < len(mzs):
        if j > centre and j + 1 < len(mzs) and ints[j + 1] > ints[j]:
            break
        mz += mzs[j] * ints[j]
        total += ints[j]
        top = max(top, ints[j])
        j += 1
    return mz / total, top


def envelope_centroids(masses: np.ndarray, intensities: np.ndarray, sigma_at, min_abundance: float = 1e-4,
                       points_per_fwhm: int = 25, bins: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (m/z, intensity relative to the top, by intensity) of a fine pattern."""
    env = Envelope(masses, intensities, sigma_at)
    sigma = env.sigma
    step = sigma * FWHM_TO_SIGMA / points_per_fwhm
    start = min(masses) - WIDTH * sigma
    centre = bins // 2
    window_mz = [start + (j - centre) * step for j in range(bins)]
    window_int = [env(x) for x in window_mz]
    out_mz, out_int = [], []
    while True:
        next_mz = window_mz[-1] + step
        if next_mz > max(masses) + WIDTH * sigma:
            break
        window_mz = window_mz[1:] + [next_mz]
        window_int = window_int[1:] + [env(next_mz)]
        sigma = env.sigma
        step = sigma * FWHM_TO_SIGMA / points_per_fwhm
        c = window_int[centre]
        if not (window_int[centre - 1] < c and c >= window_int[centre + 1]) or c < min_abundance:
            continue
        m, i = _centroid(window_mz, window_int)
        out_mz.append(m)
        out_int.append(i)
    mz, it = np.array(out_mz), np.array(out_int)
    order = np.argsort(-it, kind="stable")
    mz, it = mz[order], it[order] / it.max()
    keep = it >= min_abundance
    return mz[keep], it[keep]


def metaspace_centroids(masses: np.ndarray, intensities: np.ndarray, sigma_at, n_peaks: int = 4
                        ) -> tuple[np.ndarray, np.ndarray]:
    """METASPACE ``isocalc_wrapper``: top ``n_peaks`` by intensity, re-sorted by m/z, x100, zero-padded."""
    mz, it = envelope_centroids(masses, intensities, sigma_at)
    top = np.argsort(it)[::-1][:n_peaks]
    mz, it = mz[top], it[top] * 100.0
    order = np.argsort(mz)
    out_mz, out_int = np.zeros(n_peaks), np.zeros(n_peaks)
    out_mz[:len(order)], out_int[:len(order)] = mz[order], it[order]
    return out_mz, out_int
