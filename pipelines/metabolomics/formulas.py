"""Sum formulas: parsing, adduct/neutral-loss arithmetic and molecular-database loading.

An ion is named as METASPACE names it: the molecular formula followed by its
modifiers, e.g. ``C6H12O6+H`` or ``C6H12O6-H2O+Na``.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError

from .elements import ELEMENTS

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")
_MODIFIER = re.compile(r"([+-])([A-Za-z0-9]+)")


def parse_formula(formula: str) -> Counter:
    """Element counts of a sum formula such as ``C6H12O6``.

    Raises
    ------
    ValueError
        When the text is not a formula of known elements with positive counts.
    """
    text = formula.strip()
    if not text or _TOKEN.sub("", text):
        raise ValueError(f"not a sum formula: {formula!r}")
    counts: Counter = Counter()
    for element, number in _TOKEN.findall(text):
        if element not in ELEMENTS:
            raise ValueError(f"unknown element {element!r} in {formula!r}")
        n = int(number) if number else 1
        if n == 0:
            raise ValueError(f"zero count for {element!r} in {formula!r}")
        counts[element] += n
    return counts


def format_formula(counts: Counter) -> str:
    """Hill-ordered formula text (C, H, then alphabetical) of element counts."""
    def key(element: str) -> tuple[int, str]:
        return ({"C": 0, "H": 1}.get(element, 2) if "C" in counts else 2, element)
    return "".join(f"{el}{n if n > 1 else ''}" for el, n in sorted(counts.items(), key=lambda kv: key(kv[0]))
                   if n > 0)


def parse_modifiers(modifier: str) -> list[tuple[int, Counter]]:
    """Split ``-H2O+Na`` into ``[(-1, {H:2, O:1}), (+1, {Na:1})]``."""
    if not modifier:
        return []
    parts = _MODIFIER.findall(modifier)
    if "".join(s + f for s, f in parts) != modifier:
        raise ValueError(f"not an adduct/neutral-loss string: {modifier!r}")
    return [(1 if sign == "+" else -1, parse_formula(f)) for sign, f in parts]


def ion_formula(formula: str, modifier: str) -> str | None:
    """Formula of ``formula`` with ``modifier`` applied, or None if an element count goes negative."""
    counts = parse_formula(formula)
    for sign, delta in parse_modifiers(modifier):
        for element, n in delta.items():
            counts[element] += sign * n
    if any(n < 0 for n in counts.values()) or not any(n > 0 for n in counts.values()):
        return None
    return format_formula(counts)


def monoisotopic_mass(formula: str) -> float:
    """Mass of the most abundant isotope of every element (neutral, no electrons removed)."""
    def top(element: str) -> float:
        masses, abundances = ELEMENTS[element]
        return masses[abundances.index(max(abundances))]
    return float(sum(top(el) * n for el, n in parse_formula(formula).items()))


@dataclass(frozen=True)
class MolecularDatabase:
    """A molecular database: its molecules grouped by sum formula.

    Attributes
    ----------
    name : str
        What the outputs call it (the file name without extension).
    formulas : tuple of str
        Sorted unique formulas (Hill order).
    molecules : dict
        ``formula -> ((id, name), ...)`` in file order; ids and names are empty
        for a formula-only database.
    """

    name: str
    formulas: tuple[str, ...]
    molecules: dict[str, tuple[tuple[str, str], ...]]


_FORMULA_COLUMNS = ("formula", "sf")
_ID_COLUMNS = ("id", "mol_id", "molecule_id")
_NAME_COLUMNS = ("name", "mol_name", "molecule_name")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(c) for c in names if c in header), None)


def load_molecules(uri: str) -> MolecularDatabase:
    """Read a molecular database: METASPACE's upload format (TSV or CSV with ``id``, ``name``,
    ``formula``) or a formula-only CSV (a ``sf`` or ``formula`` column, as Lithops-METASPACE's).

    Raises
    ------
    InputError
        Unreadable file, no formula column, or a formula that does not parse
        (the message gives the line number).
    """
    try:
        text = storage.read_range(str(uri)).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(uri, f"cannot read molecular database ({exc})") from None
    dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in next(reader, [])]
    column = _column(header, _FORMULA_COLUMNS)
    if column is None:
        raise InputError(uri, "no 'sf' or 'formula' column in the header")
    id_col, name_col = _column(header, _ID_COLUMNS), _column(header, _NAME_COLUMNS)
    molecules: dict[str, list[tuple[str, str]]] = {}
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        cell = row[column].strip() if column < len(row) else ""
        try:
            formula = format_formula(parse_formula(cell))
        except ValueError as exc:
            raise InputError(uri, f"line {line_no}: {exc}") from None
        ident = row[id_col].strip() if id_col is not None and id_col < len(row) else ""
        name = row[name_col].strip() if name_col is not None and name_col < len(row) else ""
        entries = molecules.setdefault(formula, [])
        if (ident or name) and (ident, name) not in entries:
            entries.append((ident, name))
    if not molecules:
        raise InputError(uri, "the molecular database holds no formulas")
    stem = str(uri).rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return MolecularDatabase(stem, tuple(sorted(molecules)), {f: tuple(m) for f, m in molecules.items()})


def load_database(uri: str) -> list[str]:
    """Unique, sorted sum formulas of a molecular database (see :func:`load_molecules`)."""
    return list(load_molecules(uri).formulas)


_METASPACE_ADDUCT = re.compile(r"^\[M((?:[+-][A-Za-z0-9]+)+)\]\d*[+-]$")


def normalise_adduct(text: str) -> str:
    """``[M+H]+`` (METASPACE's notation) -> ``+H``; ``+H`` stays as it is."""
    match = _METASPACE_ADDUCT.match(text.strip())
    return match.group(1) if match else text.strip()
