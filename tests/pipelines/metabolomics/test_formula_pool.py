"""The generated formula pool: valid CHNOPS formulas, realistic masses, same seed same pool."""
from __future__ import annotations

import statistics

from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool, passes_golden_rules
from cloudbutton.pipelines.metabolomics.formulas import format_formula, monoisotopic_mass, parse_formula


def test_golden_rules_reject_impossible_formulas() -> None:
    assert passes_golden_rules({"C": 6, "H": 12, "O": 6})  # glucose
    assert passes_golden_rules({"C": 42, "H": 82, "N": 1, "O": 8, "P": 1})  # PC(34:1)
    assert not passes_golden_rules({"C": 6, "H": 13, "O": 6})  # odd valence sum
    assert not passes_golden_rules({"C": 2, "H": 8})  # H/C 4 and negative RDBE
    assert not passes_golden_rules({"C": 2, "H": 2, "O": 6})  # O/C 3
    assert not passes_golden_rules({"C": 20, "H": 30, "N": 12, "O": 21, "P": 2, "S": 2})  # rule 6 (NOPS)


def test_pool_is_valid_deterministic_and_realistic() -> None:
    pool = formula_pool(2000, seed=3)
    assert len(pool) == 2000 and pool == sorted(set(pool)) and pool == formula_pool(2000, seed=3)
    assert pool != formula_pool(2000, seed=4)
    for formula in pool:
        counts = parse_formula(formula)
        assert format_formula(counts) == formula and set(counts) <= set("CHNOPS")
        assert passes_golden_rules(dict(counts))
    masses = [monoisotopic_mass(f) for f in pool]
    assert 80 <= min(masses) and max(masses) <= 1200
    assert 300 < statistics.median(masses) < 600  # small-molecule databases: median ~440 Da (HMDB)
    with_n = sum("N" in parse_formula(f) for f in pool) / len(pool)
    with_p = sum("P" in parse_formula(f) for f in pool) / len(pool)
    assert 0.3 < with_n < 0.6 and 0.05 < with_p < 0.25
