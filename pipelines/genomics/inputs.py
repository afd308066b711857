"""Open and check the caller's inputs; every problem becomes a one-line InputError."""
from __future__ import annotations

import os

import pysam

from cloudbutton.core.errors import InputError

from .plan import data_weights, parse_region
from .reference import open_fasta


def open_alignments(path: str, reference: str) -> pysam.AlignmentFile:
    """Open a BAM/CRAM (CRAM decoded with ``reference``), indexing it when no index exists."""
    if not os.path.isfile(path):
        raise InputError(path, "alignment file not found")
    try:
        aln = pysam.AlignmentFile(path, reference_filename=reference)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable BAM/CRAM ({exc})") from None
    if aln.is_sam:
        aln.close()
        raise InputError(path, "SAM text is not supported; convert it with `samtools sort -o x.bam`")
    if not aln.has_index():
        aln.close()
        try:
            pysam.index(path)
        except pysam.SamtoolsError:
            raise InputError(path, "has no index and could not be indexed: is it coordinate-sorted "
                                   "(`samtools sort`) and in a writable folder?") from None
        aln = pysam.AlignmentFile(path, reference_filename=reference)
    return aln


def sample_name(path: str, aln: pysam.AlignmentFile) -> str:
    """The single sample (``@RG SM``) of the file, or its file name without extension.

    Raises
    ------
    InputError
        When read groups name more than one sample (call one sample per file).
    """
    samples = sorted({rg.get("SM", "") for rg in aln.header.to_dict().get("RG", [])} - {""})
    if len(samples) > 1:
        raise InputError(path, f"holds {len(samples)} samples ({', '.join(samples[:5])}); this caller is "
                               "single-sample: split it with `samtools split` and call each file")
    return samples[0] if samples else os.path.basename(path).split(".")[0]


def check_contigs(path: str, aln: pysam.AlignmentFile, fasta: pysam.FastaFile, reference: str,
                  needed: list[str]) -> None:
    """Every contig to be called must exist in the reference with the BAM's length."""
    ref_len = dict(zip(fasta.references, fasta.lengths))
    bam_len = dict(zip(aln.references, aln.lengths))
    for name in needed:
        if name not in ref_len:
            raise InputError(reference, f"contig {name!r} of {os.path.basename(path)} is not in the reference")
        if ref_len[name] != bam_len[name]:
            raise InputError(reference, f"contig {name!r} is {ref_len[name]} bp in the reference but "
                                        f"{bam_len[name]} bp in {os.path.basename(path)}; wrong reference?")


def resolve_regions(path: str, aln: pysam.AlignmentFile, fasta: pysam.FastaFile, reference: str,
                    regions: list[str] | None) -> list[tuple[str, int, int]]:
    """Requested regions, or every contig holding mapped reads, checked against the reference."""
    lengths = dict(zip(aln.references, aln.lengths))
    if regions:
        out = [parse_region(r, lengths) for r in regions]
    elif aln.is_cram:  # .crai has no per-contig counts: contigs with slices hold reads
        weights = data_weights(path, aln)
        out = [(n, 0, lengths[n]) for n, w in zip(aln.references, weights) if w.sum() > 0]
    else:
        stats = aln.get_index_statistics()
        out = [(s.contig, 0, lengths[s.contig]) for s in stats if s.mapped > 0]
    check_contigs(path, aln, fasta, reference, sorted({c for c, _, _ in out}))
    return out


def open_reference(reference: str) -> pysam.FastaFile:
    """Open the reference FASTA (plain or bgzip), or raise InputError."""
    if not os.path.isfile(reference):
        raise InputError(reference, "reference FASTA not found")
    return open_fasta(reference)
