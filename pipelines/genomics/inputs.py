"""Open and check the caller's inputs; every problem becomes a one-line InputError."""
from __future__ import annotations

import hashlib
import os
import uuid

import pysam

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError
from cloudbutton.core.journal import cache_dir

from .plan import data_weights, parse_region
from .sources import index_beside, open_alignment
from .sources import open_reference as open_fasta_source

#: Output types (bcftools ``--output-type``) and the file name endings that select them.
OUTPUT_TYPES = {"z": (".vcf.gz", ".vcf.bgz"), "v": (".vcf",), "b": (".bcf",)}


def open_alignments(path: str, reference: str) -> tuple[pysam.AlignmentFile, str | None]:
    """Open a BAM/CRAM (CRAM decoded with ``reference``) and name the index to use.

    ``path`` and ``reference`` may be object URIs (``s3://...``).  The index is ``None``
    when htslib finds one beside a local file, the index object's URI beside an object;
    an unindexed file is indexed once into ``$CLOUDBUTTON_CACHE/indexes`` (keyed by path,
    size and mtime or ETag), never beside the user's file.
    """
    if not _is_file(path):
        raise InputError(path, "alignment file not found")
    index = index_beside(path) if storage.is_object_uri(path) else None
    try:
        aln = open_alignment(path, reference, index)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable BAM/CRAM ({exc})") from None
    if aln.is_sam:
        aln.close()
        raise InputError(path, "SAM text is not supported; convert it with `samtools sort -o x.bam`")
    if aln.has_index():
        return aln, index
    index = _cached_index(path, ".crai" if aln.is_cram else ".bai")
    aln.close()
    return open_alignment(path, reference, index), index


def _is_file(uri: str) -> bool:
    """Whether ``uri`` is an existing object or a local file (not a folder)."""
    return storage.exists(uri) if storage.is_object_uri(uri) else os.path.isfile(uri)


def _cached_index(path: str, suffix: str) -> str:
    """Index ``path`` into the cache folder (atomically) unless done before; its index path.

    An object is downloaded once to a temporary file to be indexed, and its index is
    also kept in the Lithops storage bucket (:func:`~cloudbutton.core.storage.cache_uri`),
    whose URI is returned, so workers on other machines read it too.
    """
    if storage.is_object_uri(path):
        meta = storage.head(path)
        stamp = f"{path}\0{meta.get('content-length')}\0{meta.get('etag')}"
    else:
        stat = os.stat(path)
        stamp = f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}"
    key = hashlib.sha256(stamp.encode()).hexdigest()
    index = os.path.join(cache_dir(), "indexes", key[:32] + suffix)
    if not os.path.exists(index):
        _build_index(path, index)
    if not storage.is_object_uri(path):
        return index
    shared = storage.cache_uri(path, "indexes/" + os.path.basename(index))
    if not storage.exists(shared):
        storage.upload_file(index, shared)
    return shared


def _build_index(path: str, index: str) -> None:
    """Write the index of ``path`` to the file ``index`` atomically."""
    os.makedirs(os.path.dirname(index), exist_ok=True)
    tmp = f"{index}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with storage.open_input(path) as local:
            pysam.index(local, tmp)
        os.replace(tmp, index)
    except pysam.SamtoolsError:
        raise InputError(path, "has no index and could not be indexed: is it coordinate-sorted "
                               "(`samtools sort`)?") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def output_type(out: str, requested: str | None) -> str:
    """``z`` (bgzip VCF), ``v`` (plain VCF) or ``b`` (BCF): the flag, else from the file name.

    Raises
    ------
    InputError
        For an unknown flag, or a name ending in none of ``.vcf.gz``, ``.vcf``, ``.bcf``.
    """
    if requested is not None:
        if requested not in OUTPUT_TYPES:
            raise InputError(out, f"unknown --output-type {requested!r} (z, v or b)")
        return requested
    for kind, endings in OUTPUT_TYPES.items():
        if out.lower().endswith(endings):
            return kind
    raise InputError(out, "unknown output extension: use .vcf.gz, .vcf or .bcf (or --output-type z/v/b)")


def check_chunking(chunks: int | None, chunk_size: int | None) -> None:
    """``--chunks`` and ``--chunk-size`` must be positive when given."""
    if chunks is not None and chunks <= 0:
        raise InputError("--chunks", f"must be a positive number of chunks, not {chunks}")
    if chunk_size is not None and chunk_size <= 0:
        raise InputError("--chunk-size", f"must be a positive length in bp, not {chunk_size}")


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
                    regions: list[str] | None, index: str | None = None,
                    bed_regions: list[tuple[str, int, int]] | None = None) -> list[tuple[str, int, int]]:
    """Requested regions (``--region`` strings and BED intervals), or every contig holding
    mapped reads, checked against the reference.

    Requested regions are put in reference order and overlapping or adjacent ones merged,
    so every position is called once whatever order they were given in.
    """
    lengths = dict(zip(aln.references, aln.lengths))
    if regions or bed_regions:
        wanted = [parse_region(r, lengths) for r in regions or []] + list(bed_regions or [])
        out = merge_regions(wanted, list(aln.references))
    elif aln.is_cram:  # .crai has no per-contig counts: contigs with slices hold reads
        weights = data_weights(path, aln, index)
        out = [(n, 0, lengths[n]) for n, w in zip(aln.references, weights) if w.sum() > 0]
    else:
        stats = aln.get_index_statistics()
        out = [(s.contig, 0, lengths[s.contig]) for s in stats if s.mapped > 0]
    check_contigs(path, aln, fasta, reference, sorted({c for c, _, _ in out}))
    return out


def read_bed(path: str, lengths: dict[str, int]) -> list[tuple[str, int, int]]:
    """Intervals of a BED file (0-based, half-open), checked against the contig ``lengths``."""
    if not os.path.isfile(path):
        raise InputError(path, "BED file not found")
    out = []
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split()
            try:
                contig, start, end = fields[0], int(fields[1]), int(fields[2])
            except (IndexError, ValueError):
                raise InputError(path, f"line {number} is not CHROM START END") from None
            if contig not in lengths:
                raise InputError(path, f"line {number}: contig {contig!r} is not in the BAM")
            if not 0 <= start < end <= lengths[contig]:
                raise InputError(path, f"line {number}: interval {start}-{end} outside 0-{lengths[contig]} "
                                       f"of {contig} or empty")
            out.append((contig, start, end))
    return out


def merge_regions(regions: list[tuple[str, int, int]], order: list[str]) -> list[tuple[str, int, int]]:
    """Sort (contig order of ``order``, start) and merge overlapping or touching intervals."""
    rank = {name: i for i, name in enumerate(order)}
    out: list[tuple[str, int, int]] = []
    for contig, start, end in sorted(regions, key=lambda r: (rank[r[0]], r[1], r[2])):
        if out and out[-1][0] == contig and start <= out[-1][2]:
            out[-1] = (contig, out[-1][1], max(out[-1][2], end))
        else:
            out.append((contig, start, end))
    return out


def open_reference(reference: str) -> pysam.FastaFile:
    """Open the reference FASTA (plain or bgzip; a file or an object), or raise InputError."""
    if not _is_file(reference):
        raise InputError(reference, "reference FASTA not found")
    return open_fasta_source(reference)
