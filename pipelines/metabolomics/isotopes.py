"""Theoretical isotope centroids of ions, as METASPACE computes them with cpyMSpec.

Fine structure comes from IsoSpecPy (relative threshold 1e-4).  Each fine peak
becomes a Gaussian; the summed envelope is sampled at 25 points per FWHM on a
grid anchored 12 sigma below the lightest peak, local maxima above 1e-4 become
centroids (m/z = intensity-weighted mean between the neighbouring minima,
at most 7 bins either side; intensity = envelope maximum).  The top ``n_peaks``
are kept, re-sorted by m/z and scaled to a maximum of 100.

The whole batch is vectorised with numpy; every reduction is sequential per
ion, so an ion's centroids do not depend on which other ions share its batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import IsoSpecPy
import numpy as np

from .formulas import ion_formula

ELECTRON_MASS = 0.00054857990946
SIGMA_TO_FWHM = 2.35482
POINTS_PER_FWHM = 25
HALF_WINDOW_BINS = 7  # a 15-bin centroid window
FINE_THRESHOLD = 1e-4
MIN_ABUNDANCE = 1e-4
ENVELOPE_SIGMAS = 5.0  # a Gaussian contributes < 4e-6 of its height beyond this
ANCHOR_SIGMAS = 12.0

#: METASPACE's resolving power (normalised to m/z 200) bins -> isocalc sigma.
RESOLVING_POWER_BINS = ((85e3, 0.002476), (120e3, 0.001733), (195e3, 0.001238), (265e3, 0.000693),
                        (390e3, 0.000619), (625e3, 0.000347), (875e3, 0.000231), (np.inf, 0.000173))
INSTRUMENTS = ("orbitrap", "fticr", "tof")


def resolving_power_at_200(instrument: str, resolving_power: float, at_mz: float = 200.0) -> float:
    """Normalise a resolving power quoted at ``at_mz`` to m/z 200 (METASPACE convention)."""
    if instrument == "orbitrap":
        return resolving_power * np.sqrt(at_mz / 200.0)
    if instrument == "fticr":
        return resolving_power * at_mz / 200.0
    if instrument == "tof":
        return resolving_power
    raise ValueError(f"unknown instrument {instrument!r} (one of {', '.join(INSTRUMENTS)})")


@dataclass(frozen=True)
class IsotopeModel:
    """How centroids are computed; also the cache key of a centroid.

    Parameters
    ----------
    instrument : str
        ``orbitrap``, ``fticr`` or ``tof``.
    resolving_power : float
        Resolving power at m/z ``at_mz``.
    at_mz : float
        The m/z at which ``resolving_power`` is quoted.
    n_peaks : int
        Centroids kept per ion.
    charge : int
        Ion charge (+1 positive mode, -1 negative mode).
    peak_model : str
        ``"v1"`` (METASPACE default): constant sigma from the resolving-power bin;
        ``"instrument"``: FWHM = m/z / RP(m/z) scaled for the instrument from
        RP(200) = 200 / (sigma * 2.35482) (METASPACE v2/v3).
    """

    instrument: str = "orbitrap"
    resolving_power: float = 140000.0
    at_mz: float = 200.0
    n_peaks: int = 4
    charge: int = 1
    peak_model: str = "v1"

    def __post_init__(self) -> None:
        resolving_power_at_200(self.instrument, 1.0)
        if self.peak_model not in ("v1", "instrument"):
            raise ValueError(f"unknown peak model {self.peak_model!r} (v1 or instrument)")
        if self.charge == 0 or self.n_peaks < 1 or self.resolving_power <= 0:
            raise ValueError("charge must be non-zero, n_peaks >= 1 and resolving power > 0")

    @property
    def sigma(self) -> float:
        """METASPACE's binned isocalc sigma for this instrument."""
        rp200 = resolving_power_at_200(self.instrument, self.resolving_power, self.at_mz)
        return next(sigma for limit, sigma in RESOLVING_POWER_BINS if rp200 < limit)

    def sigma_at(self, mz: np.ndarray) -> np.ndarray:
        """Gaussian sigma of a peak at ``mz`` under this model."""
        mz = np.asarray(mz, dtype=float)
        if self.peak_model == "v1":
            return np.full(mz.shape, self.sigma)
        rp200 = 200.0 / (self.sigma * SIGMA_TO_FWHM)  # METASPACE derives RP(200) from the binned sigma
        rp = {"orbitrap": rp200 * np.sqrt(200.0 / mz), "fticr": rp200 * 200.0 / mz,
              "tof": np.full(mz.shape, rp200)}[self.instrument]
        return mz / rp / SIGMA_TO_FWHM

    def key(self) -> str:
        """A short text identifying the settings (the centroid cache folder)."""
        return (f"{self.peak_model}-{self.instrument}-rp{self.resolving_power:g}@{self.at_mz:g}"
                f"-z{self.charge}-n{self.n_peaks}")


def fine_structure(formula: str, charge: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine isotope peaks (m/z sorted ascending, abundance relative to the top peak)."""
    dist = IsoSpecPy.IsoThreshold(formula=formula, threshold=FINE_THRESHOLD, absolute=False)
    masses = (np.asarray(dist.np_masses()) - charge * ELECTRON_MASS) / abs(charge)
    probs = np.asarray(dist.np_probs())
    order = np.argsort(masses, kind="stable")
    return masses[order], probs[order] / probs.max()


def envelope_centroids(patterns: list[tuple[np.ndarray, np.ndarray]], sigmas: np.ndarray,
                       n_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroid many fine-structure patterns at once.

    Parameters
    ----------
    patterns : list of (mz, abundance) arrays, m/z ascending
    sigmas : array
        Gaussian sigma per pattern.
    n_peaks : int

    Returns
    -------
    mzs, ints : (n, n_peaks) float64 arrays
        Centroid m/z ascending and intensities scaled to max 100; zero-padded.
    """
    n = len(patterns)
    mzs_out = np.zeros((n, n_peaks))
    ints_out = np.zeros((n, n_peaks))
    if n == 0:
        return mzs_out, ints_out
    sizes = np.array([len(m) for m, _ in patterns])
    ion = np.repeat(np.arange(n), sizes)
    fine_mz = np.concatenate([m for m, _ in patterns])
    fine_ab = np.concatenate([a for _, a in patterns])
    sigmas = np.asarray(sigmas, dtype=float)
    step = sigmas * SIGMA_TO_FWHM / POINTS_PER_FWHM
    origin = np.array([m[0] for m, _ in patterns]) - ANCHOR_SIGMAS * sigmas

    half = int(np.ceil(ENVELOPE_SIGMAS * POINTS_PER_FWHM / SIGMA_TO_FWHM))
    offsets = np.arange(-half, half + 2)
    centre = np.floor((fine_mz - origin[ion]) / step[ion]).astype(np.int64)
    # clusters: runs of fine peaks whose sampled windows overlap; each gets a dense grid
    new_cluster = np.ones(len(centre), dtype=bool)
    new_cluster[1:] = (ion[1:] != ion[:-1]) | (centre[1:] - centre[:-1] > len(offsets))
    cluster = np.cumsum(new_cluster) - 1
    starts = centre[new_cluster] - half
    lengths = np.maximum.reduceat(centre, np.flatnonzero(new_cluster)) + half + 2 - starts
    base = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    cluster_ion = ion[new_cluster]
    grid = centre[:, None] + offsets[None, :]
    grid_mz = origin[ion][:, None] + grid * step[ion][:, None]
    contrib = fine_ab[:, None] * np.exp(-0.5 * ((grid_mz - fine_mz[:, None]) / sigmas[ion][:, None]) ** 2)
    index = (base[cluster] - starts[cluster])[:, None] + grid
    env = np.bincount(index.ravel(), weights=contrib.ravel(), minlength=int(lengths.sum()))
    dense_cluster = np.repeat(np.arange(len(starts)), lengths)
    uion = cluster_ion[dense_cluster]
    ugrid = starts[dense_cluster] + np.arange(len(env)) - base[dense_cluster]

    same_as_prev = np.zeros(len(env), dtype=bool)
    same_as_prev[1:] = dense_cluster[1:] == dense_cluster[:-1]
    prev = np.where(same_as_prev, np.concatenate(([0.0], env[:-1])), 0.0)
    same_as_next = np.append(same_as_prev[1:], False)
    nxt = np.where(same_as_next, np.append(env[1:], 0.0), 0.0)
    peaks = np.flatnonzero((prev < env) & (env >= nxt) & (env >= MIN_ABUNDANCE))

    def neighbour(shift: int) -> tuple[np.ndarray, np.ndarray]:
        """Envelope ``shift`` bins away from each peak, and whether it is in the same cluster."""
        idx = np.clip(peaks + shift, 0, len(env) - 1)
        ok = (idx == peaks + shift) & (dense_cluster[idx] == dense_cluster[peaks])
        return np.where(ok, env[idx], 0.0), ok

    weight_sum = env[peaks].copy()
    mz_sum = env[peaks] * ugrid[peaks]
    for direction in (-1, 1):
        alive = np.ones(len(peaks), dtype=bool)
        inner = env[peaks]
        for d in range(1, HALF_WINDOW_BINS + 1):
            value, ok = neighbour(direction * d)
            alive &= ok & (value < inner)
            weight_sum += np.where(alive, value, 0.0)
            mz_sum += np.where(alive, value * (ugrid[peaks] + direction * d), 0.0)
            inner = value
    p_ion = uion[peaks]
    p_mz = origin[p_ion] + (mz_sum / weight_sum) * step[p_ion]
    p_int = env[peaks]

    order = np.lexsort((p_mz, -p_int, p_ion))
    p_ion, p_mz, p_int = p_ion[order], p_mz[order], p_int[order]
    first = np.searchsorted(p_ion, p_ion, side="left")
    rank = np.arange(len(p_ion)) - first
    top = p_int[first]
    keep = (rank < n_peaks) & (p_int / top >= MIN_ABUNDANCE)
    p_ion, p_mz, p_int, top = p_ion[keep], p_mz[keep], p_int[keep], top[keep]
    order = np.lexsort((p_mz, p_ion))
    p_ion, p_mz, p_int, top = p_ion[order], p_mz[order], p_int[order], top[order]
    slot = np.arange(len(p_ion)) - np.searchsorted(p_ion, p_ion, side="left")
    mzs_out[p_ion, slot] = p_mz
    ints_out[p_ion, slot] = p_int / top * 100.0
    return mzs_out, ints_out


def ion_centroids(formulas: list[str], modifiers: list[str], model: IsotopeModel
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n_peaks`` centroids of the ions ``formula + modifier`` under ``model``.

    Memory is bounded by the batch: about 150 envelope samples per fine peak.
    """
    patterns = [fine_structure(ion_formula(f, m), model.charge) for f, m in zip(formulas, modifiers)]
    first = np.array([p[0][0] for p in patterns]) if patterns else np.zeros(0)
    return envelope_centroids(patterns, model.sigma_at(first), model.n_peaks)
