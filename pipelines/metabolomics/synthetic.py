"""Synthetic centroided imzML datasets with known answers (used by tests, demo, notebook, benchmark).

A dataset holds, per pixel:

* **planted** ions: database formulas with +H/+Na/+K, correct isotope patterns at
  the given resolving power, co-localised isotope images (smooth blobs),
  per-pixel intensity noise and ppm m/z noise;
* **wrong-pattern** ions: database formulas whose isotope peaks are at the right
  m/z but with wrong ratios and only in pixels where the monoisotopic peak is
  absent (as when other molecules supply those m/z);
* **chemical noise**: the same kind of ions for formulas *not* in the database;
* **background**: uniformly random peaks.

The database written beside it holds the planted and wrong-pattern formulas
plus distractor formulas, minus any distractor whose ions come within 5 ppm
of a peak that is really there (so every annotation of a distractor is false).
"""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass

import numpy as np
from pyimzml.ImzMLWriter import ImzMLWriter

from cloudbutton.core.storage import atomic_output

from .isotopes import IsotopeModel, ion_centroids

ADDUCTS = ("+H", "+Na", "+K")
WRONG_RATIOS = np.array([100.0, 60.0, 40.0, 25.0, 15.0, 10.0])


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths and ground truth of a generated dataset."""

    imzml: str
    db: str
    truth: str  # CSV: formula, adduct, kind (planted | wrong)
    planted: frozenset[tuple[str, str]]
    wrong: frozenset[tuple[str, str]]


def _blob(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random spatial pattern in [0, 1]: 1–3 Gaussian blobs."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros(shape)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sy, sx = rng.uniform(0.1, 0.3) * h, rng.uniform(0.1, 0.3) * w
        img += rng.uniform(0.5, 1.0) * np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
    return img / img.max()


def _ion_peaks(rng: np.random.Generator, shape: tuple[int, int], mzs: np.ndarray, ints: np.ndarray,
               pattern: np.ndarray, base: float, iso_patterns: list[np.ndarray], ppm_noise: float, floor: float
               ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(pixel, m/z, intensity) arrays of one ion: isotope ``k`` follows ``iso_patterns[k]``."""
    out = []
    present = pattern > 0.05
    shift = rng.normal(0, ppm_noise, size=shape) * 1e-6
    for k, (mz, rel) in enumerate(zip(mzs, ints)):
        if rel <= 0:
            continue
        img = base * rel / 100.0 * iso_patterns[k] * rng.lognormal(0, 0.15, size=shape)
        keep = (iso_patterns[k] > 0.05) & (img >= floor) if k else present & (img >= floor)
        pix = np.flatnonzero(keep)
        jitter = rng.normal(0, ppm_noise * 0.3, size=len(pix)) * 1e-6
        out.append((pix, mz * (1 + shift.ravel()[pix] + jitter), img.ravel()[pix]))
    return out


def make_dataset(out_dir: str, formulas: list[str], *, seed: int = 0, shape: tuple[int, int] = (40, 40),
                 n_planted: int = 45, n_wrong: int = 6, n_distractors: int = 2000, n_unknown: int = 150,
                 background_peaks: int = 150, resolving_power: float = 140000.0, ppm_noise: float = 1.0,
                 name: str = "synthetic") -> SyntheticDataset:
    """Write ``name.imzML/.ibd``, ``name_db.csv`` and ``name_truth.csv`` into ``out_dir``.

    Parameters
    ----------
    formulas : list of str
        Formula pool to draw from (e.g. HMDB); distinct draws for every role.
    seed : int
        Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same bytes.
    background_peaks : int
        Mean number of random peaks per spectrum (Poisson), m/z 100–1000.
    """
    rng = np.random.default_rng(seed)
    model = IsotopeModel("orbitrap", resolving_power)
    pool = sorted(set(formulas))
    chosen = rng.choice(len(pool), size=n_planted + n_wrong + n_unknown + n_distractors, replace=False)
    roles = np.split(np.array(pool)[chosen], np.cumsum([n_planted, n_wrong, n_unknown]))
    planted_f, wrong_f, unknown_f, distractor_f = (list(r) for r in roles)
    present = [(f, str(rng.choice(ADDUCTS)), kind) for kind, group in
               (("planted", planted_f), ("wrong", wrong_f), ("unknown", unknown_f)) for f in group]
    mzs, ints = ion_centroids([p[0] for p in present], [p[1] for p in present], model)
    keep = (mzs[:, 0] > 100) & (mzs[:, -1] < 1500)  # inside the simulated instrument's range
    present = [p for p, k in zip(present, keep) if k]
    mzs, ints = mzs[keep], ints[keep]

    h, w = shape
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for (formula, adduct, kind), mz, it in zip(present, mzs, ints):
        pattern = _blob(rng, shape)
        base = 10 ** rng.uniform(3.3, 4.5)
        if kind == "wrong":  # isotopes too strong and only where the monoisotopic ion is absent
            it = np.where(it > 0, WRONG_RATIOS[:len(it)], 0.0)
            isotopes = [pattern] + [np.where(pattern <= 0.05, _blob(rng, shape), 0.0) for _ in it[1:]]
        else:
            isotopes = [pattern] * len(it)
        chunks += _ion_peaks(rng, shape, mz, it, pattern, base, isotopes, ppm_noise, floor=50.0)
    n_bg = rng.poisson(background_peaks, size=h * w)
    bg_pix = np.repeat(np.arange(h * w), n_bg)
    chunks.append((bg_pix, rng.uniform(100, 1000, size=len(bg_pix)), rng.lognormal(np.log(200), 0.7, len(bg_pix))))
    pix = np.concatenate([c[0] for c in chunks])
    mz_all = np.concatenate([c[1] for c in chunks])
    int_all = np.concatenate([c[2] for c in chunks])
    order = np.lexsort((mz_all, pix))
    pix, mz_all, int_all = pix[order], mz_all[order], int_all[order]

    real_peaks = np.sort(mzs[ints > 0])
    d_mz, _ = ion_centroids([f for f in distractor_f for _ in ADDUCTS], [a for _ in distractor_f for a in ADDUCTS],
                            model)
    clash = np.zeros(len(d_mz), dtype=bool)
    for k in range(d_mz.shape[1]):
        near = np.searchsorted(real_peaks, d_mz[:, k])
        for j in (near - 1, np.minimum(near, len(real_peaks) - 1)):
            clash |= (d_mz[:, k] > 0) & (np.abs(real_peaks[np.clip(j, 0, None)] - d_mz[:, k]) < d_mz[:, k] * 5e-6)
    bad = set(np.array([f for f in distractor_f for _ in ADDUCTS])[clash])
    db_formulas = sorted({p[0] for p in present if p[2] != "unknown"} | (set(distractor_f) - bad))

    os.makedirs(out_dir, exist_ok=True)
    imzml = os.path.join(out_dir, f"{name}.imzML")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tmp-") as tmp:
        with ImzMLWriter(os.path.join(tmp, f"{name}.imzML"), mz_dtype=np.float64, intensity_dtype=np.float32,
                         mode="processed", spec_type="centroid", polarity="positive") as writer:
            starts = np.searchsorted(pix, np.arange(h * w + 1))
            for p in range(h * w):
                a, b = starts[p], starts[p + 1]
                if b > a:
                    writer.addSpectrum(mz_all[a:b], int_all[a:b].astype(np.float32), (p % w + 1, p // w + 1))
        for ext in (".ibd", ".imzML"):  # the .ibd first: a reader never sees an imzML without it
            os.replace(os.path.join(tmp, name + ext), os.path.join(out_dir, name + ext))
    db = os.path.join(out_dir, f"{name}_db.csv")
    with atomic_output(db) as tmp, open(tmp, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([["", "sf"], *[[i, f] for i, f in enumerate(db_formulas)]])
    truth = os.path.join(out_dir, f"{name}_truth.csv")
    with atomic_output(truth) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["formula", "adduct", "kind"])
        writer.writerows(p for p in present if p[2] != "unknown")
    return SyntheticDataset(imzml, db, truth,
                            frozenset((f, a) for f, a, k in present if k == "planted"),
                            frozenset((f, a) for f, a, k in present if k == "wrong"))
