"""Sum formulas: parsing, adduct/neutral-loss arithmetic and molecular-database loading.

An ion is named as METASPACE names it: the molecular formula followed by its
modifiers, e.g. ``C6H12O6+H`` or ``C6H12O6-H2O+Na``.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter

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


def load_database(uri: str) -> list[str]:
    """Unique, sorted sum formulas of a molecular-database CSV.

    The CSV needs a ``sf`` or ``formula`` column (METASPACE and Lithops-METASPACE
    exports both load).  Sorting makes the result independent of row order.

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
    column = next((header.index(c) for c in ("sf", "formula") if c in header), None)
    if column is None:
        raise InputError(uri, "no 'sf' or 'formula' column in the header")
    formulas: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        cell = row[column].strip() if column < len(row) else ""
        try:
            formulas.add(format_formula(parse_formula(cell)))
        except ValueError as exc:
            raise InputError(uri, f"line {line_no}: {exc}") from None
    if not formulas:
        raise InputError(uri, "the molecular database holds no formulas")
    return sorted(formulas)
