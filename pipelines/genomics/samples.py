"""Several samples: their names and where their reads are, and their observations in one window merged.

Each sample's reads are collected on their own (:func:`reads.collect`: filters, mate
overlaps and the depth cap apply per sample, as bcftools applies ``-d`` per file), then
merged into one :class:`Observations` whose reads carry a sample index. A site that is a
SNP candidate in any sample gets every sample's bases there, so a sample without ALT
reads is genotyped 0/0 from its REF reads rather than left uncalled.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pysam

from cloudbutton.core.errors import InputError

from .reads import Observations, ReadFilters, collect, kept_observations
from .reference import RefWindow, fetch_window


@dataclass(frozen=True)
class SampleReads:
    """Where one sample's reads are.

    Attributes
    ----------
    path : str
        BAM/CRAM holding the sample.
    index : str or None
        Its index when it is not beside the file.
    read_groups : tuple of str, optional
        ``@RG ID``s of this sample when the file holds several samples (reads of other
        groups, or without an RG tag, are skipped); ``None``: every read of the file.
    """

    path: str
    index: str | None = None
    read_groups: tuple[str, ...] | None = None


def file_samples(path: str, aln: pysam.AlignmentFile) -> list[tuple[str, tuple[str, ...] | None]]:
    """The samples of a BAM/CRAM as (name, read groups).

    A file whose read groups name several samples (``@RG SM``) gives one sample per name,
    in header order, with the ``@RG ID``s that carry it; otherwise the file is one sample
    (its SM, or the file name without extension) and every read belongs to it (``None``).
    """
    groups: dict[str, list[str]] = {}
    for rg in aln.header.to_dict().get("RG", []):
        if rg.get("SM"):
            groups.setdefault(rg["SM"], []).append(rg.get("ID", ""))
    if len(groups) <= 1:
        return [(next(iter(groups), os.path.basename(path).split(".")[0]), None)]
    return [(name, tuple(ids)) for name, ids in groups.items()]


def check_unique_samples(named: list[tuple[str, str]]) -> None:
    """Every sample name, given as (file, name) pairs, must come from one place.

    Raises
    ------
    InputError
        Naming the second file of a repeated sample.
    """
    seen: dict[str, str] = {}
    for path, name in named:
        if name in seen:
            raise InputError(path, f"sample {name!r} is also in {seen[name]}; call each sample once "
                                   "(merge its files, or rename one with `samtools addreplacerg`)")
        seen[name] = path


def check_same_contigs(path: str, aln: pysam.AlignmentFile, first: str, first_aln: pysam.AlignmentFile,
                       needed: list[str]) -> None:
    """A file called with others must hold every contig to be called, with the first file's length."""
    mine = dict(zip(aln.references, aln.lengths))
    theirs = dict(zip(first_aln.references, first_aln.lengths))
    for name in needed:
        if mine.get(name) != theirs.get(name):
            raise InputError(path, f"contig {name!r} is {mine.get(name, 'missing')} here but "
                                   f"{theirs.get(name, 'missing')} bp in {os.path.basename(first)}; "
                                   "files called together must be aligned to the same reference")


class _ReadGroupFilter:
    """The ``fetch`` of an alignment file limited to some read groups (what :func:`collect` calls)."""

    def __init__(self, aln: pysam.AlignmentFile, groups: tuple[str, ...]):
        self.aln = aln
        self.groups = frozenset(groups)

    def fetch(self, contig: str, start: int, end: int) -> Iterator[pysam.AlignedSegment]:
        for read in self.aln.fetch(contig, start, end):
            if read.has_tag("RG") and read.get_tag("RG") in self.groups:
                yield read


def sample_source(sample: SampleReads, aln: pysam.AlignmentFile):
    """What :func:`collect` reads ``sample`` from: the open file, or it filtered to the sample's read groups."""
    return aln if sample.read_groups is None else _ReadGroupFilter(aln, sample.read_groups)


@dataclass
class Window:
    """Merged observations of every sample in one window.

    Attributes
    ----------
    obs : Observations
        Reads of all samples (sample by sample, file order within each), observations in
        read then position order.
    ref : RefWindow
        Reference slice around every sample's reads.
    sample : ndarray of int
        Sample index of each read.
    n_samples : int
        Number of samples called (some may have no reads here).
    """

    obs: Observations
    ref: RefWindow
    sample: np.ndarray
    n_samples: int


def collect_samples(sources: Sequence, fasta: pysam.FastaFile, contig: str, start: int, end: int,
                    pad: int, filters: ReadFilters) -> Window | None:
    """Every sample's reads over ``[start - pad, end + pad)`` (see :func:`reads.collect`), merged;
    ``None`` when no sample has reads there."""
    found = [collect(src, fasta, contig, start, end, pad, filters) for src in sources]
    if len(sources) == 1:
        if found[0] is None:
            return None
        obs, ref = found[0]
        return Window(obs, ref, np.zeros(obs.read_start.size, dtype=np.int64), 1)
    present = [(k, f) for k, f in enumerate(found) if f is not None]
    if not present:
        return None
    ref = fetch_window(fasta, contig, min(r.start for _, (_, r) in present), max(r.end for _, (_, r) in present))
    sites = np.unique(np.concatenate([o.pos for _, (o, _) in present]))
    parts = [(k, _complete(o, sites, filters)) for k, (o, _) in present]
    obs = _concat([o for _, o in parts])
    sample = np.concatenate([np.full(o.read_start.size, k, dtype=np.int64) for k, o in parts])
    return Window(obs, ref, sample, len(sources))


def _complete(obs: Observations, sites: np.ndarray, filters: ReadFilters) -> Observations:
    """``obs`` with its bases at every position of ``sites`` it does not observe yet (same base
    filters, mate-overlap removal and per-position depth cap as :func:`collect`)."""
    missing = np.setdiff1d(sites, obs.pos)
    lo = np.searchsorted(missing, obs.blk_ref)
    hi = np.searchsorted(missing, obs.blk_ref + obs.blk_len)
    n = hi - lo
    if missing.size == 0 or n.sum() == 0:
        return obs
    blk = np.repeat(np.arange(n.size), n)
    first = np.cumsum(n) - n
    pos = missing[np.repeat(lo, n) + np.arange(int(n.sum())) - np.repeat(first, n)]
    at = obs.blk_q[blk] + pos - obs.blk_ref[blk]
    base, bq = obs.seq[at], obs.bq[at]
    read = obs.block_read()[blk]
    ok = (base < 4) & (bq >= filters.min_baseq)
    pos, base, qual, read = kept_observations(pos[ok], base[ok], bq[ok], read[ok], obs.read_mapq, obs.read_tmpl,
                                              obs.read_start, obs.read_end, filters.max_depth)
    all_pos = np.concatenate([obs.pos, pos])
    all_read = np.concatenate([obs.read, read])
    order = np.lexsort((all_pos, all_read))
    return Observations(
        pos=all_pos[order], base=np.concatenate([obs.base, base])[order],
        qual=np.concatenate([obs.qual, qual])[order], read=all_read[order],
        strand=np.concatenate([obs.strand, obs.read_rev[read]])[order],
        **{name: getattr(obs, name) for name in _PER_READ})


#: Observations fields describing reads, CIGAR events and aligned blocks (not base observations).
_PER_READ = ("read_start", "read_end", "read_mapq", "read_tmpl", "read_rev", "read_clean", "ev_read", "ev_pos",
             "ev_len", "ev_ins", "seq", "bq", "blk_ref", "blk_q", "blk_len", "read_blocks")


def _concat(parts: list[Observations]) -> Observations:
    """One Observations holding the reads of ``parts`` in order (read, template, sequence and
    block indices shifted)."""
    reads = np.cumsum([0] + [p.read_start.size for p in parts])
    tmpls = np.cumsum([0] + [int(p.read_tmpl.max()) + 1 if p.read_tmpl.size else 0 for p in parts])
    bases = np.cumsum([0] + [p.seq.size for p in parts])
    blocks = np.cumsum([0] + [p.blk_ref.size for p in parts])

    def cat(name: str, shift: np.ndarray | None = None) -> np.ndarray:
        return np.concatenate([getattr(p, name) + (0 if shift is None else shift[i]) for i, p in enumerate(parts)])

    return Observations(
        pos=cat("pos"), base=cat("base"), qual=cat("qual"), read=cat("read", reads), strand=cat("strand"),
        read_start=cat("read_start"), read_end=cat("read_end"), read_mapq=cat("read_mapq"),
        read_tmpl=cat("read_tmpl", tmpls), read_rev=cat("read_rev"), read_clean=cat("read_clean"),
        ev_read=cat("ev_read", reads), ev_pos=cat("ev_pos"), ev_len=cat("ev_len"),
        ev_ins=[s for p in parts for s in p.ev_ins], seq=cat("seq"), bq=cat("bq"), blk_ref=cat("blk_ref"),
        blk_q=cat("blk_q", bases), blk_len=cat("blk_len"),
        read_blocks=np.concatenate([p.read_blocks[:-1] + blocks[i] for i, p in enumerate(parts)] + [blocks[-1:]]),
    )
