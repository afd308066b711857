"""Ploidy per position: diploid, haploid, or bcftools' GRCh37/GRCh38 sex-chromosome presets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cloudbutton.core.errors import InputError

# (contig, first, last (1-based, inclusive), sex, ploidy); bcftools ``call --ploidy`` presets
_PRESETS: dict[str, list[tuple[str, int, int, str, int]]] = {
    "GRCh37": [("X", 1, 60000, "M", 1), ("X", 2699521, 154931043, "M", 1),
               ("Y", 1, 59373566, "M", 1), ("Y", 1, 59373566, "F", 0),
               ("MT", 1, 16569, "M", 1), ("MT", 1, 16569, "F", 1)],
    "GRCh38": [("X", 1, 9999, "M", 1), ("X", 2781480, 155701381, "M", 1),
               ("Y", 1, 57227415, "M", 1), ("Y", 1, 57227415, "F", 0),
               ("MT", 1, 16569, "M", 1), ("MT", 1, 16569, "F", 1)],
}
_ALIASES = {"X": {"X", "chrX"}, "Y": {"Y", "chrY"}, "MT": {"MT", "M", "chrM", "chrMT"}}


@dataclass(frozen=True)
class Ploidy:
    """Copies of each position for one sample: ``default`` except inside ``rules``.

    Attributes
    ----------
    default : int
        Ploidy outside the rules (2, or 1 for ``--ploidy 1``).
    rules : tuple of (contig names, start0, end0, ploidy)
        Half-open 0-based intervals with their ploidy (0 = no call).
    """

    default: int = 2
    rules: tuple[tuple[frozenset[str], int, int, int], ...] = ()

    @classmethod
    def parse(cls, spec: str | int | None, sex: str = "F") -> Ploidy:
        """``2``/``1``, or an assembly preset (``GRCh37``, ``GRCh38``) for a sample of ``sex`` (F or M)."""
        if spec is None or str(spec) in ("2", "1"):
            return cls(default=int(spec or 2))
        if str(spec) not in _PRESETS:
            raise InputError("--ploidy", f"unknown ploidy {spec!r}: use 1, 2, {', '.join(_PRESETS)}")
        if sex not in ("F", "M"):
            raise InputError("--sex", f"unknown sex {sex!r}: use F or M")
        rules = tuple((frozenset(_ALIASES[c]), first - 1, last, p)
                      for c, first, last, s, p in _PRESETS[str(spec)] if s == sex)
        return cls(default=2, rules=rules)

    def at(self, contig: str, positions: np.ndarray) -> np.ndarray:
        """Ploidy at each 0-based position of ``contig``."""
        out = np.full(positions.shape, self.default, dtype=np.int64)
        for names, start, end, ploidy in self.rules:
            if contig in names:
                out[(positions >= start) & (positions < end)] = ploidy
        return out
