"""Theoretical isotope centroids of ions, as METASPACE computes them with cpyMSpec.

Fine structure: IsoSpecPy (relative threshold 1e-4) over cpyMSpec's element table
(:mod:`.elements`).  Centroids follow cpyMSpec's ``envelopeCentroids``: every fine
peak is a Gaussian cut at 6 sigma, with the sigma of the instrument model at
that peak's m/z (cpyMSpec switches sigma at each isotope cluster); the summed
envelope is sampled at 25 points per FWHM on cpyMSpec's grid (starting 6 sigma
below the lightest peak, step changing with sigma); a sample is a centroid when
it is a local maximum of at least 1e-4; its m/z is the intensity-weighted mean
of the samples from the left minimum to before the right minimum, within 7
samples either side; its intensity the maximum.  The top ``n_peaks`` are kept,
re-sorted by m/z and scaled to a maximum of 100 (METASPACE ``isocalc_wrapper``).

Only the samples near each isotope cluster are computed (a sum of equal-width
Gaussians has its maxima between its first and last mean), vectorised over a
batch; every value depends on its own ion only, so an ion's centroids do not
depend on which other ions share its batch.
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import IsoSpecPy
import numpy as np

from .elements import ELECTRON_MASS, ELEMENTS
from .formulas import ion_formula, parse_formula, parse_modifiers

#: bump when centroids change for the same settings: part of the centroid-cache key
CENTROIDER_VERSION = 2
SIGMA_TO_FWHM = 2.3548200450309493
POINTS_PER_FWHM = 25
HALF_WINDOW_BINS = 7  # cpyMSpec's 15-sample centroid window
FINE_THRESHOLD = 1e-4
MIN_ABUNDANCE = 1e-4
WIDTH_SIGMAS = 6.0  # cpyMSpec cuts every Gaussian at 6 sigma
PAD_BINS = HALF_WINDOW_BINS + 2  # samples beyond a cluster's first/last peak: window + neighbour + 1
ENVELOPE_FLOOR = 0.998  # exp(-0.5 * 0.047**2) = 0.9989: a cluster's strongest sample vs its largest abundance
CLUSTER_KEY = 1e5  # > any m/z: cluster * CLUSTER_KEY + m/z orders fine peaks cluster by cluster

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

    def sigma_at(self, mz: np.ndarray, top_mz: np.ndarray) -> np.ndarray:
        """Gaussian sigma of a fine peak at ``mz`` of an ion whose most abundant fine peak is at ``top_mz``.

        v1 (cpyMSpec 0.3.5 as METASPACE v1 calls it): a TOF model with resolving power
        ``top_mz / FWHM``, so sigma grows linearly with m/z from the binned sigma at the
        top peak.  ``instrument`` (METASPACE v2/v3): RP(200) = 200 / FWHM, scaled with
        m/z as the analyser does (Orbitrap ``sqrt(200/mz)``, FTICR ``200/mz``, TOF constant).
        """
        mz = np.asarray(mz, dtype=float)
        fwhm = self.sigma * SIGMA_TO_FWHM
        if self.peak_model == "v1":
            rp = np.asarray(top_mz, dtype=float) / fwhm
        else:
            rp200 = 200.0 / fwhm
            rp = {"orbitrap": rp200 * np.sqrt(200.0 / mz), "fticr": rp200 * 200.0 / mz,
                  "tof": np.full(mz.shape, rp200)}[self.instrument]
        return mz / rp / SIGMA_TO_FWHM

    def key(self) -> str:
        """A short text identifying the settings (the centroid cache folder)."""
        return (f"c{CENTROIDER_VERSION}-{self.peak_model}-{self.instrument}-rp{self.resolving_power:g}"
                f"@{self.at_mz:g}-z{self.charge}-n{self.n_peaks}")


def _neutral_fine(counts: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Fine isotope configurations of element counts: neutral masses, probability relative to the top."""
    elements = sorted(counts)
    dist = IsoSpecPy.IsoThreshold(FINE_THRESHOLD, absolute=False, atomCounts=[counts[e] for e in elements],
                                  isotopeMasses=[ELEMENTS[e][0] for e in elements],
                                  isotopeProbabilities=[ELEMENTS[e][1] for e in elements])
    probs = np.asarray(dist.np_probs())
    return np.asarray(dist.np_masses()), probs / probs.max()


def _charged(masses: np.ndarray, abundances: np.ndarray, charge: int) -> tuple[np.ndarray, np.ndarray]:
    """m/z ascending (``charge`` electron masses removed, cpyMSpec ``addCharge``) and abundances."""
    mz = (masses - charge * ELECTRON_MASS) / abs(charge)
    order = np.argsort(mz, kind="stable")
    return mz[order], abundances[order]


def fine_structure(counts: Counter, charge: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine isotope peaks of an ion's element counts: m/z ascending, abundance relative to the top peak.

    cpyMSpec's element table; ``charge`` electron masses are removed (cpyMSpec ``addCharge``).
    """
    return _charged(*_neutral_fine(counts), charge)


def _added_atoms(formula: Counter, modifier: str) -> Counter | None:
    """Atoms a modifier only adds, when the ion's fine structure is exactly the formula's convolved with theirs.

    That holds when none of the added elements with several isotopes is in the formula: no
    isotopologue then arises from two pairs, and the thresholded pairs are exactly the
    configurations above the ion's threshold (a pair's relative probability is the product of
    its two relative probabilities, each at most 1).
    """
    added = _addition(modifier)
    if added is None or any(e in formula and len(ELEMENTS[e][0]) > 1 for e in added):
        return None
    return added


@functools.lru_cache(maxsize=4096)
def _addition(modifier: str) -> Counter | None:
    """The atoms a modifier adds, or None when it removes any (or adds nothing)."""
    added: Counter = Counter()
    for sign, atoms in parse_modifiers(modifier):
        if sign < 0:
            return None
        added.update(atoms)
    return added or None


def ion_patterns(formulas: list[str], modifiers: list[str], charge: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fine structure of every ion ``formula + modifier``; a formula's pattern is computed once and
    convolved with each added adduct (targets and decoys) where that is exact (:func:`_added_atoms`)."""
    base: dict[str, tuple[Counter, tuple[np.ndarray, np.ndarray]]] = {}
    adducts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for formula, modifier in zip(formulas, modifiers):
        if formula not in base:
            counts = parse_formula(formula)
            base[formula] = (counts, _neutral_fine(counts))
        counts, (f_mass, f_prob) = base[formula]
        added = _added_atoms(counts, modifier)
        if added is None:
            out.append(fine_structure(parse_formula(ion_formula(formula, modifier)), charge))
            continue
        if modifier not in adducts:
            adducts[modifier] = _neutral_fine(added)
        a_mass, a_prob = adducts[modifier]
        prob = (f_prob[:, None] * a_prob[None, :]).ravel()
        keep = prob >= FINE_THRESHOLD
        out.append(_charged((f_mass[:, None] + a_mass[None, :]).ravel()[keep], prob[keep], charge))
    return out


def _grid_events(ion: np.ndarray, fine_mz: np.ndarray, sigma: np.ndarray, step: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Where cpyMSpec's sampling grid switches to each fine peak, and how many samples follow.

    The grid starts ``6 sigma`` below an ion's lightest peak.  It switches from
    peak ``r-1`` to peak ``r`` (and to that peak's sigma and step) at the first
    sample past ``p[r-1] + 6 sigma`` that is also at or past ``p[r] - 6 sigma``.

    Returns
    -------
    position : m/z of the sample at which each fine peak becomes current
    n_samples : samples taken with that peak current (a large number for an ion's last peak)
    """
    position = fine_mz - WIDTH_SIGMAS * sigma
    n_samples = np.full(len(fine_mz), np.iinfo(np.int64).max // 4)
    rank = np.arange(len(ion)) - np.searchsorted(ion, ion, side="left")
    for r in range(1, int(rank.max(initial=0)) + 1):
        g = np.flatnonzero(rank == r)
        p = g - 1
        past = np.floor((fine_mz[p] + WIDTH_SIGMAS * sigma[p] - position[p]) / step[p]) + 1
        reach = np.ceil((fine_mz[g] - WIDTH_SIGMAS * sigma[p] - position[p]) / step[p])
        k = np.maximum(1, np.maximum(past, reach)).astype(np.int64)
        position[g] = position[p] + k * step[p]
        n_samples[p] = k
    return position, n_samples


def _may_reach_top(abundance: np.ndarray, first: np.ndarray, cluster_ion: np.ndarray, n_peaks: int) -> np.ndarray:
    """Clusters that can hold one of their ion's ``n_peaks`` strongest centroids.

    A cluster's envelope never exceeds the sum of its abundances, and its strongest
    sample is at least ``ENVELOPE_FLOOR`` x its largest abundance (a sample lies within
    half a step, 0.047 sigma, of that peak).  A cluster whose sum is below the
    ``n_peaks``-th largest such floor of its ion cannot reach the top ``n_peaks``.
    """
    total = np.add.reduceat(abundance, first)
    floor = np.maximum.reduceat(abundance, first) * ENVELOPE_FLOOR
    order = np.lexsort((-floor, cluster_ion))
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first)) - np.searchsorted(cluster_ion[order], cluster_ion[order], side="left")
    nth = np.full(int(cluster_ion.max(initial=-1)) + 1, 0.0)
    chosen = rank == n_peaks - 1
    nth[cluster_ion[chosen]] = floor[chosen]
    return total >= nth[cluster_ion]


def envelope_centroids(patterns: list[tuple[np.ndarray, np.ndarray]], model: IsotopeModel
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Centroid many fine-structure patterns at once (see the module docstring).

    Parameters
    ----------
    patterns : list of (mz, abundance) arrays, m/z ascending, abundance relative to the top
    model : IsotopeModel

    Returns
    -------
    mzs, ints : (n, n_peaks) float64 arrays
        Centroid m/z ascending and intensities scaled to max 100; zero-padded.
    """
    n, n_peaks = len(patterns), model.n_peaks
    mzs_out, ints_out = np.zeros((n, n_peaks)), np.zeros((n, n_peaks))
    if n == 0:
        return mzs_out, ints_out
    sizes = np.array([len(m) for m, _ in patterns])
    ion = np.repeat(np.arange(n), sizes)
    fine_mz = np.concatenate([m for m, _ in patterns])
    fine_ab = np.concatenate([a for _, a in patterns])
    top_mz = np.array([m[np.argmax(a)] for m, a in patterns])
    sigma = model.sigma_at(fine_mz, top_mz[ion])

    step = sigma * SIGMA_TO_FWHM / POINTS_PER_FWHM
    position, n_samples = _grid_events(ion, fine_mz, sigma, step)

    # clusters: runs of fine peaks whose 6-sigma reaches overlap (cpyMSpec's "empty space" between them)
    new = np.ones(len(fine_mz), dtype=bool)
    new[1:] = (ion[1:] != ion[:-1]) | (np.diff(fine_mz) > 2 * WIDTH_SIGMAS * sigma[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(fine_mz)) - 1
    cluster = np.cumsum(new) - 1
    lo = (fine_mz[first] - PAD_BINS * step[first])[cluster]
    hi = (fine_mz[last] + PAD_BINS * step[last])[cluster]
    wanted = _may_reach_top(fine_ab, first, ion[first], n_peaks)[cluster]

    # samples near each wanted cluster, per current fine peak
    j_lo = np.maximum(0, np.ceil((lo - position) / step)).astype(np.int64)
    j_hi = np.minimum(n_samples - 1, np.floor((hi - position) / step)).astype(np.int64)
    count = np.where(wanted, np.maximum(0, j_hi - j_lo + 1), 0)
    owner = np.repeat(np.arange(len(fine_mz)), count)
    pt_mz = position[owner] + (j_lo[owner] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)) \
        * step[owner]
    pt_sigma = sigma[owner]
    pt_cluster = cluster[owner]
    # envelope: the cluster's fine peaks p with -6 sigma < p - x <= 6 sigma (located on a cluster-major key)
    key = cluster * CLUSTER_KEY + fine_mz
    pt_key = pt_cluster * CLUSTER_KEY + pt_mz
    a = np.searchsorted(key, pt_key - WIDTH_SIGMAS * pt_sigma, side="right")
    n_near = np.searchsorted(key, pt_key + WIDTH_SIGMAS * pt_sigma, side="right") - a
    by_count = np.argsort(-n_near, kind="stable")  # the j-th near peak exists for a prefix of these
    active = np.searchsorted(-n_near[by_count], -np.arange(1, int(n_near.max(initial=0)) + 1), side="right")
    env_sorted = np.zeros(len(pt_mz))
    s_mz, s_sigma, s_cluster, s_a = pt_mz[by_count], pt_sigma[by_count], pt_cluster[by_count], a[by_count]
    for j, n_active in enumerate(active):  # peaks in ascending m/z: the sum runs in cpyMSpec's order
        peak = s_a[:n_active] + j
        dist = (fine_mz[peak] - s_mz[:n_active]) / s_sigma[:n_active]
        term = fine_ab[peak] * np.exp(-0.5 * dist * dist)
        ok = (dist > -WIDTH_SIGMAS) & (dist <= WIDTH_SIGMAS) & (cluster[peak] == s_cluster[:n_active])
        env_sorted[:n_active] += np.where(ok, term, 0.0)
    env = np.empty(len(pt_mz))
    env[by_count] = env_sorted
    c_ion = ion[first]

    same_prev = np.zeros(len(env), dtype=bool)
    same_prev[1:] = pt_cluster[1:] == pt_cluster[:-1]
    inner = same_prev & np.append(same_prev[1:], False)
    prev = np.concatenate(([0.0], env[:-1]))
    nxt = np.append(env[1:], 0.0)
    peaks = np.flatnonzero(inner & (prev < env) & (env >= nxt) & (env >= MIN_ABUNDANCE))
    weight, moment = env[peaks].copy(), env[peaks] * pt_mz[peaks]
    alive = np.ones(len(peaks), dtype=bool)
    for d in range(1, HALF_WINDOW_BINS + 1):  # left: while the sample before is lower
        alive &= env[peaks - d] < env[peaks - d + 1]
        weight += np.where(alive, env[peaks - d], 0.0)
        moment += np.where(alive, env[peaks - d] * pt_mz[peaks - d], 0.0)
    alive[:] = True
    for d in range(1, HALF_WINDOW_BINS + 1):  # right: up to the sample before the next rise
        if d < HALF_WINDOW_BINS:
            alive &= ~(env[peaks + d + 1] > env[peaks + d])
        weight += np.where(alive, env[peaks + d], 0.0)
        moment += np.where(alive, env[peaks + d] * pt_mz[peaks + d], 0.0)
    p_ion = c_ion[pt_cluster[peaks]]
    p_mz, p_int = moment / weight, env[peaks]

    order = np.lexsort((p_mz, -p_int, p_ion))
    p_ion, p_mz, p_int = p_ion[order], p_mz[order], p_int[order]
    first_of_ion = np.searchsorted(p_ion, p_ion, side="left")
    rank = np.arange(len(p_ion)) - first_of_ion
    top = p_int[first_of_ion]
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
    """Top-``n_peaks`` centroids of the ions ``formula + modifier`` under ``model``."""
    return envelope_centroids(ion_patterns(formulas, modifiers, model.charge), model)
