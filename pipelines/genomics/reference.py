"""Reference access: one padded slice per task, never the whole contig."""
from __future__ import annotations

from dataclasses import dataclass

import pysam

from cloudbutton.core.errors import InputError


@dataclass(frozen=True)
class RefWindow:
    """Upper-cased reference sequence ``seq`` covering ``[start, start + len(seq))``."""

    contig: str
    start: int
    seq: str

    @property
    def end(self) -> int:
        """Exclusive end coordinate of the slice."""
        return self.start + len(self.seq)

    def base(self, pos: int) -> str:
        """Base at 0-based reference position ``pos`` (must lie in the slice)."""
        return self.seq[pos - self.start]

    def sub(self, start: int, end: int) -> str:
        """Sequence of ``[start, end)``, clipped to the slice."""
        return self.seq[max(start, self.start) - self.start:max(end, self.start) - self.start]


def open_fasta(path: str) -> pysam.FastaFile:
    """Open an indexed plain or bgzip FASTA, building the index when it is missing.

    Raises
    ------
    InputError
        When the file is missing, plain-gzip (no random access) or not a FASTA.
    """
    try:
        return pysam.FastaFile(str(path))
    except (OSError, ValueError) as exc:
        problem = str(exc) or type(exc).__name__
        if str(path).endswith(".gz"):
            problem = ("cannot index this FASTA; a .gz reference must be bgzip-compressed "
                       f"(re-compress with `bgzip`), {problem}")
        raise InputError(str(path), f"cannot open reference FASTA: {problem}") from None


def fetch_window(fasta: pysam.FastaFile, contig: str, start: int, end: int) -> RefWindow:
    """Fetch ``[start, end)`` of ``contig`` clipped to the contig, upper-cased."""
    length = fasta.get_reference_length(contig)
    start, end = max(0, start), min(length, end)
    return RefWindow(contig, start, fasta.fetch(contig, start, end).upper())
