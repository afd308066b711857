"""The ion table: target ions of a database and their seeded decoys (METASPACE ``fdr.py``).

Decoys are the target formula with an implausible single-element adduct.  Their
MSM distribution estimates how often a wrong ion scores as well as a target.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from .formulas import ion_formula

#: METASPACE's 80 single-element decoy adducts, in METASPACE's order (the draw depends on it).
DECOY_ADDUCTS: tuple[str, ...] = tuple("+" + el for el in (
    "He Li Be B C N O F Ne Mg Al Si P S Cl Ar Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Sm Eu Gd Tb "
    "Dy Ho Ir Th Pt Os Yb Lu Bi Pb Re Tl Tm U W Au Er Hf Hg Ta").split())

DEFAULT_ADDUCTS = {"positive": ("+H", "+Na", "+K"), "negative": ("-H", "+Cl")}
DECOY_SEED = 42


@dataclass(frozen=True)
class IonTable:
    """Every ion to score, with the target/decoy bookkeeping the FDR needs.

    Compact (indices into sorted name lists, ~10 B per ion) because every
    remote task that needs it loads it.

    Attributes
    ----------
    formula_names, modifier_names : numpy str arrays
        Sorted unique formulas and modifiers.
    formula_idx, modifier_idx : int32 arrays
        Ion ``i`` is ``formula_names[formula_idx[i]] + modifier_names[modifier_idx[i]]``;
        ions are unique and sorted by (formula, modifier).
    is_target : numpy bool array
    target_modifiers : tuple of str
        The target modifiers (chemical modification + neutral loss + adduct), one FDR ranking group each.
    modifier_parts : dict
        ``target_modifier -> (chem_mod, neutral_loss, adduct)``.
    targets : dict
        ``target_modifier -> int32 array`` of target ion ids, one per database formula
        (-1 when the ion cannot exist, e.g. a loss of an absent element).
    decoys : dict
        ``target_modifier -> (n_formulas, n_decoys) int32 array`` of decoy ion ids;
        column ``j`` is the ``j``-th ranking (v1) or part of the single ranking (v3).
    """

    formula_names: np.ndarray
    modifier_names: np.ndarray
    formula_idx: np.ndarray
    modifier_idx: np.ndarray
    is_target: np.ndarray
    target_modifiers: tuple[str, ...]
    modifier_parts: dict[str, tuple[str, str, str]]
    targets: dict[str, np.ndarray]
    decoys: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.formula_idx)

    @property
    def formulas(self) -> np.ndarray:
        """Formula of every ion."""
        return self.formula_names[self.formula_idx]

    @property
    def modifiers(self) -> np.ndarray:
        """Modifier (neutral loss + adduct) of every ion."""
        return self.modifier_names[self.modifier_idx]

    def name(self, i: int) -> str:
        """Ion name, e.g. ``C6H12O6+H``."""
        return f"{self.formula_names[self.formula_idx[i]]}{self.modifier_names[self.modifier_idx[i]]}"


def _exists(formula: str, modifier: str) -> bool:
    """Whether the ion can exist (only a loss can drive an element count negative)."""
    return "-" not in modifier or ion_formula(formula, modifier) is not None


def build_ion_table(formulas: list[str], adducts: tuple[str, ...], neutral_losses: tuple[str, ...] = (),
                    n_decoys: int = 20, fdr_mode: str = "v1", chem_mods: tuple[str, ...] = (),
                    groups: tuple[int, ...] | None = None) -> IonTable:
    """Targets (formula × chemical modification × neutral loss × adduct) and seeded decoys.

    A decoy keeps its target's chemical modification and neutral loss and takes an
    implausible element as adduct.  v1 draws ``n_decoys`` decoy adducts per
    (formula, target modifier); v3 draws them once per formula and shares them
    across modifiers.  The draw uses its own ``RandomState(42)`` in METASPACE's
    generation order, so it is repeatable.

    ``groups`` splits ``formulas`` into consecutive databases (their sizes): each is
    drawn from a fresh ``RandomState(42)``, as METASPACE draws per database, so a
    database's decoys do not depend on the others.  Rows of ``targets``/``decoys``
    follow ``formulas`` (a formula in two databases has two rows); ions are shared.
    """
    if fdr_mode not in ("v1", "v3"):
        raise ValueError(f"unknown FDR mode {fdr_mode!r} (v1 or v3)")
    modifiers = list(product(("", *chem_mods), ("", *neutral_losses), adducts))
    target_mods = tuple(cm + nl + ad for cm, nl, ad in modifiers)
    excluded = set(adducts) | set(neutral_losses) | set(chem_mods)
    candidates = [d for d in DECOY_ADDUCTS if d not in excluded]
    n_decoys = min(n_decoys, len(candidates))
    group_starts = set(np.cumsum((0, *(groups or (len(formulas),))))[:-1].tolist())
    rng = np.random.RandomState(DECOY_SEED)

    def draw() -> list[str]:
        pool = list(candidates)
        rng.shuffle(pool)
        return pool[:n_decoys]

    pairs: list[tuple[int, str, str, list[str]]] = []  # (row, formula, target modifier, decoy modifiers)
    for r, formula in enumerate(formulas):
        if r in group_starts:
            rng = np.random.RandomState(DECOY_SEED)
        shared = draw() if fdr_mode == "v3" else None
        for cm, nl, ad in modifiers:
            chosen = shared if shared is not None else draw()
            pairs.append((r, formula, cm + nl + ad, [cm + nl + d for d in chosen]))

    ions: dict[tuple[str, str], bool] = {}
    for _, formula, tm, dms in pairs:
        if _exists(formula, tm):
            ions[(formula, tm)] = True
    for _, formula, tm, dms in pairs:
        if (formula, tm) in ions:
            for dm in dms:
                if _exists(formula, dm):
                    ions.setdefault((formula, dm), False)
    keys = sorted(ions)
    index = {key: i for i, key in enumerate(keys)}
    targets = {tm: np.full(len(formulas), -1, dtype=np.int32) for tm in target_mods}
    decoys = {tm: np.full((len(formulas), n_decoys), -1, dtype=np.int32) for tm in target_mods}
    for r, formula, tm, dms in pairs:
        targets[tm][r] = index.get((formula, tm), -1)
        if targets[tm][r] >= 0:
            decoys[tm][r] = [index.get((formula, dm), -1) for dm in dms]
    formula_names = np.array(sorted({k[0] for k in keys}))
    modifier_names = np.array(sorted({k[1] for k in keys}))
    f_index = {f: i for i, f in enumerate(formula_names)}
    m_index = {m: i for i, m in enumerate(modifier_names)}
    return IonTable(
        formula_names=formula_names, modifier_names=modifier_names,
        formula_idx=np.array([f_index[k[0]] for k in keys], dtype=np.int32),
        modifier_idx=np.array([m_index[k[1]] for k in keys], dtype=np.int32),
        is_target=np.array([ions[k] for k in keys], dtype=bool),
        target_modifiers=target_mods,
        modifier_parts={cm + nl + ad: (cm, nl, ad) for cm, nl, ad in modifiers},
        targets=targets,
        decoys=decoys,
    )
