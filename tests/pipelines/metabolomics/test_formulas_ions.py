"""Formulas, databases and the target/decoy ion table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.metabolomics.formulas import (ion_formula, load_database, load_molecules,
                                                          normalise_adduct, parse_formula)
from cloudbutton.pipelines.metabolomics.ions import DECOY_ADDUCTS, build_ion_table


def test_parse_and_modify() -> None:
    assert parse_formula("C6H12O6") == {"C": 6, "H": 12, "O": 6}
    assert ion_formula("C6H12O6", "+H") == "C6H13O6"
    assert ion_formula("C6H12O6", "-H2O+Na") == "C6H10NaO5"
    assert ion_formula("CH4", "-H2O+H") is None  # no oxygen to lose
    for bad in ("C6H12O6)", "Xx2", "c6", ""):
        with pytest.raises(ValueError):
            parse_formula(bad)


def test_shared_databases_load(shared_data: Path) -> None:
    dbs = shared_data / "metabolomics" / "moldbs"
    assert len(load_database(str(dbs / "small.csv"))) == 388
    assert len(load_database(str(dbs / "hmdb.csv"))) > 11000
    assert len(load_database(str(dbs / "lipidmaps.csv"))) > 7000


def test_formula_column_and_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id,formula,name\n1,C6H12O6,glucose\n2,C6H12O6,fructose\n")
    assert load_database(str(good)) == ["C6H12O6"]
    bad = tmp_path / "bad.csv"
    bad.write_text("sf\nC6H12O6\nC5H(\n")
    with pytest.raises(InputError, match=r"bad.csv: line 3: "):
        load_database(str(bad))
    none = tmp_path / "none.csv"
    none.write_text("name\nglucose\n")
    with pytest.raises(InputError, match="no 'sf' or 'formula' column"):
        load_database(str(none))


def test_decoys_seeded_and_excluded() -> None:
    formulas = ["C6H12O6", "C5H5N5", "C42H82NO8P"]
    a = build_ion_table(formulas, ("+H", "+Na", "+K"), n_decoys=20)
    b = build_ion_table(formulas, ("+H", "+Na", "+K"), n_decoys=20)
    assert np.array_equal(a.modifiers, b.modifiers) and a.decoys["+H"].tolist() == b.decoys["+H"].tolist()
    assert len(DECOY_ADDUCTS) == 80
    assert a.is_target.sum() == 9
    for tm in a.target_modifiers:
        ids = a.decoys[tm]
        assert ids.shape == (3, 20) and (ids >= 0).all()
        for row in ids:
            mods = set(a.modifiers[row])
            assert len(mods) == 20 and not mods & {"+H", "+Na", "+K"}
            assert not a.is_target[row].any()
    # v1 draws per (formula, adduct); v3 shares one draw per formula across adducts
    v3 = build_ion_table(formulas, ("+H", "+Na", "+K"), fdr_mode="v3")
    assert (v3.decoys["+H"] == v3.decoys["+Na"]).all()
    assert not (a.decoys["+H"] == a.decoys["+Na"]).all()


def test_chemical_modifications_and_metaspace_adducts() -> None:
    assert [normalise_adduct(a) for a in ("[M+H]+", "[M-H]-", "[M+NH4]+", "[M-H2O+Na]+", "+K")] == [
        "+H", "-H", "+NH4", "-H2O+Na", "+K"]
    table = build_ion_table(["C6H12O6"], ("+H",), neutral_losses=("-H2O",), chem_mods=("-CO2+CO",), n_decoys=3)
    assert set(table.target_modifiers) == {"+H", "-H2O+H", "-CO2+CO+H", "-CO2+CO-H2O+H"}
    assert table.modifier_parts["-CO2+CO-H2O+H"] == ("-CO2+CO", "-H2O", "+H")
    decoys = table.modifiers[table.decoys["-CO2+CO-H2O+H"][0]]
    assert all(d.startswith("-CO2+CO-H2O+") and d not in ("-CO2+CO-H2O+H",) for d in decoys)
    assert ion_formula("C6H12O6", "-CO2+CO-H2O+H") == "C6H11O4"


def test_decoys_drawn_per_database() -> None:
    """Each database's decoys come from a fresh RandomState(42), so adding a database changes nothing."""
    a = ["C6H12O6", "C5H5N5"]
    alone = build_ion_table(a, ("+H",), n_decoys=5)
    both = build_ion_table(["C42H82NO8P", *a], ("+H",), n_decoys=5, groups=(1, 2))
    assert [list(alone.modifiers[r]) for r in alone.decoys["+H"]] == \
        [list(both.modifiers[r]) for r in both.decoys["+H"][1:]]
    assert list(both.modifiers[both.decoys["+H"][0]]) == list(alone.modifiers[alone.decoys["+H"][0]])


def test_molecules_upload_format(tmp_path: Path) -> None:
    path = tmp_path / "moldb.tsv"
    path.write_text("id\tname\tformula\nHMDB1\tglucose\tC6H12O6\nHMDB2\tfructose\tC6H12O6\nX\tadenine\tC5H5N5\n")
    db = load_molecules(str(path))
    assert db.name == "moldb" and db.formulas == ("C5H5N5", "C6H12O6")
    assert db.molecules["C6H12O6"] == (("HMDB1", "glucose"), ("HMDB2", "fructose"))
