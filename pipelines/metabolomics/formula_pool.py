"""A generated pool of plausible metabolite sum formulas (CHNOPS), so samples need no outside database.

Formulas are drawn element by element with ratios to carbon spread like those
of small-molecule databases (most H/C between 1 and 2, O/C below 1, N, P and S
in a minority of formulas), then kept only when they pass the element-count and
ratio rules of Kind & Fiehn (2007), "Seven Golden Rules for heuristic filtering
of molecular formulas obtained by accurate mass spectrometry", BMC
Bioinformatics 8:105:

1. element counts below the limits for the formula's mass range;
3. LEWIS and SENIOR: an even sum of valences and a non-negative ring-plus-
   double-bond equivalent (RDBE);
4. H/C between 0.2 and 3.1;
5. N/C <= 1.3, O/C <= 1.2, P/C <= 0.3, S/C <= 0.8;
6. the multi-element count limits (e.g. N, O, P and S all above 1: N < 10,
   O < 20, P < 4, S < 3).

(Rule 2, isotope patterns, and rule 7, TMS derivatives, concern measured
spectra, not a formula list.)  Same seed and size, same pool.
"""
from __future__ import annotations

import numpy as np

from .formulas import monoisotopic_mass

ELEMENTS = ("C", "H", "N", "O", "P", "S")
#: Rule 1 limits (C, H, N, O, P, S) below 500, 1000 and 2000 Da.
MASS_LIMITS = ((500.0, (39, 72, 20, 20, 9, 10)), (1000.0, (78, 126, 25, 27, 9, 14)),
               (2000.0, (156, 236, 32, 63, 9, 14)))
#: Rule 6: when every listed element exceeds ``above``, each must stay below its limit.
MULTI_ELEMENT = (({"N": 10, "O": 20, "P": 4, "S": 3}, 1), ({"N": 11, "O": 22, "P": 6}, 3),
                 ({"O": 14, "P": 3, "S": 3}, 1), ({"P": 3, "S": 3, "N": 4}, 1), ({"N": 19, "O": 14, "S": 8}, 6))
#: How often each heteroatom appears, and the mean of its ratio to carbon when it does.
PRESENCE = {"N": 0.45, "O": 0.95, "P": 0.12, "S": 0.15}
MEAN_RATIO = {"N": 0.15, "O": 0.35, "P": 0.04, "S": 0.06}
MASSES = {el: monoisotopic_mass(el) for el in ELEMENTS}


def passes_golden_rules(counts: dict[str, int]) -> bool:
    """True when CHNOPS element ``counts`` pass rules 1 and 3-6 of Kind & Fiehn (2007)."""
    c, h, n, o, p, s = (counts.get(el, 0) for el in ELEMENTS)
    if c < 1 or h < 1:
        return False
    mass = sum(MASSES[el] * k for el, k in counts.items())
    limits = next((lim for top, lim in MASS_LIMITS if mass < top), None)
    if limits is None or any(k > top for k, top in zip((c, h, n, o, p, s), limits)):
        return False
    if (h + n + p) % 2 or c - h / 2 + (n + p) / 2 + 1 < 0:  # LEWIS/SENIOR with N and P trivalent
        return False
    if not (0.2 <= h / c <= 3.1) or n / c > 1.3 or o / c > 1.2 or p / c > 0.3 or s / c > 0.8:
        return False
    return not any(all(counts.get(el, 0) > above for el in rule)
                   and any(counts.get(el, 0) >= top for el, top in rule.items())
                   for rule, above in MULTI_ELEMENT)


def _draw(rng: np.random.Generator) -> dict[str, int]:
    """One candidate: carbon count log-normal around 22, other elements as ratios to it."""
    c = int(np.clip(np.round(rng.lognormal(np.log(22), 0.6)), 2, 90))
    counts = {"C": c, "H": int(np.round(c * rng.uniform(0.8, 2.1)))}
    for element, share in PRESENCE.items():
        present = rng.random() < share
        counts[element] = max(1, int(np.round(c * rng.exponential(MEAN_RATIO[element])))) if present else 0
    if (counts["H"] + counts["N"] + counts["P"]) % 2:  # valences must sum to an even number
        counts["H"] += 1
    return counts


def formula_pool(size: int = 5000, *, seed: int = 0, mass_range: tuple[float, float] = (80.0, 1200.0)
                 ) -> list[str]:
    """``size`` distinct CHNOPS formulas passing the golden rules, sorted.

    Parameters
    ----------
    size : int
        Number of formulas.
    seed : int
        Seed of ``numpy.random.default_rng``: same seed and size, same pool.
    mass_range : (float, float)
        Monoisotopic masses kept (Da).
    """
    rng = np.random.default_rng(seed)
    pool: set[str] = set()
    while len(pool) < size:
        counts = _draw(rng)
        if not passes_golden_rules(counts):
            continue
        if mass_range[0] <= sum(MASSES[el] * k for el, k in counts.items()) <= mass_range[1]:
            pool.add("".join(f"{el}{k if k > 1 else ''}" for el, k in counts.items() if k))
    return sorted(pool)
