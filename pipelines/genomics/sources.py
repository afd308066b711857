"""Open the caller's files where they live: local paths now, object URIs through the core's storage.

Workers and the driver open BAM/CRAM and FASTA only through these functions, so
where the bytes come from is decided in one place.
"""
from __future__ import annotations

import pysam

from .reference import open_fasta


def open_alignment(path: str, reference: str, index: str | None = None) -> pysam.AlignmentFile:
    """The BAM/CRAM at ``path`` (CRAM decoded with ``reference``), with ``index`` when it is not beside it."""
    return pysam.AlignmentFile(path, reference_filename=reference, index_filename=index)


def open_reference(path: str) -> pysam.FastaFile:
    """The indexed FASTA at ``path``."""
    return open_fasta(path)
