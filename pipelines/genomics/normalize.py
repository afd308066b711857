"""Left-normalisation of indels and the extent of their repeat context."""
from __future__ import annotations

from .reference import RefWindow


def left_align(ref: RefWindow, pos: int, length: int, ins: str) -> tuple[int, str]:
    """Shift an indel to its leftmost equivalent position (as ``bcftools norm``).

    Parameters
    ----------
    ref : RefWindow
        Reference slice; the shift stops one base inside its start (the anchor).
    pos : int
        0-based position of the first deleted base, or of the base an insertion precedes.
    length : int
        Deletion or insertion length.
    ins : str
        Inserted sequence (upper case); empty for a deletion.

    Returns
    -------
    (pos, ins)
        Normalised position (the VCF anchor is ``pos - 1``) and inserted sequence.
    """
    seq, off = ref.seq, ref.start
    if ins:
        while pos - 1 > off and pos - off <= len(seq) and seq[pos - 1 - off] == ins[-1]:
            ins = seq[pos - 1 - off] + ins[:-1]
            pos -= 1
        return pos, ins
    while pos - 1 > off and pos + length - 1 - off < len(seq) \
            and seq[pos - 1 - off] == seq[pos + length - 1 - off]:
        pos -= 1
    return pos, ""


def right_extent(ref: RefWindow, pos: int, length: int, ins: str) -> int:
    """Rightmost equivalent position of a left-aligned indel (same meaning as ``pos``)."""
    seq, off = ref.seq, ref.start
    if ins:
        while pos - off < len(seq) and seq[pos - off] == ins[0]:
            ins = ins[1:] + seq[pos - off]
            pos += 1
        return pos
    while pos + length - off < len(seq) and seq[pos + length - off] == seq[pos - off]:
        pos += 1
    return pos
