"""Call SNPs and indels owned by one chunk ``[start, end)`` of a contig.

Boundary rule (research/genomics.md): reads are fetched over the chunk +- ``pad``
and the reference over a slightly wider slice; every candidate is left-normalised
and a record is emitted only when its normalised POS lies inside the chunk. Every
position of the fetched window sees all reads overlapping it, so a record's evidence
does not depend on where the chunk boundaries are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pysam

from .likelihood import call_sites, damping_weights, genotype_loglik
from .normalize import left_align, right_extent
from .reads import Observations, ReadFilters, collect
from .reference import RefWindow

_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i


@dataclass(frozen=True)
class CallParams:
    """Caller settings; defaults follow bcftools mpileup | call -m where they apply.

    Attributes
    ----------
    filters : ReadFilters
        Read/base filters (min MAPQ, min base quality, max depth).
    min_qual : float
        QUAL below which a record is FILTER ``LowQual``.
    pad : int
        Read fetch padding around a chunk; must exceed the read length.
    indel_min_reads, indel_min_frac : int, float
        Indel candidates need this many supporting reads and this fraction of depth.
    max_indel : int
        Longest indel considered (bcftools ``--indel-size``).
    snp_gap : int
        SNPs within this distance of a passing indel are dropped (bcftools ``--SnpGap``),
        a cheap stand-in for BAQ.
    window : int
        Longest stretch called from one read fetch (bounds memory per task).
    """

    filters: ReadFilters = field(default_factory=ReadFilters)
    min_qual: float = 20.0
    pad: int = 1000
    indel_min_reads: int = 2
    indel_min_frac: float = 0.05
    max_indel: int = 110
    snp_gap: int = 3
    window: int = 200_000


@dataclass(frozen=True, order=True)
class Variant:
    """One biallelic call; ``pos`` is the 1-based VCF POS."""

    pos: int
    ref: str
    alt: str
    qual: float
    genotype: int
    gq: int
    dp: int
    ad: tuple[int, int]
    pl: tuple[int, int, int]


def call_chunk(bam_path: str, fasta_path: str, contig: str, start: int, end: int,
               params: CallParams) -> list[Variant]:
    """Variants of ``contig`` whose normalised POS lies in ``[start, end)`` (0-based).

    Opens the BAM/CRAM and FASTA itself so it can run on any worker. Long chunks are
    called in windows of ``params.window`` bp (same ownership rule), which bounds memory;
    the reference is fetched only around windows that hold reads.
    """
    out: list[Variant] = []
    with pysam.FastaFile(fasta_path) as fasta, \
            pysam.AlignmentFile(bam_path, reference_filename=fasta_path) as bam:
        for w_start in range(start, end, params.window):
            w_end = min(end, w_start + params.window)
            out.extend(_call_window(bam, fasta, contig, w_start, w_end, params))
    return out


def _call_window(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, contig: str, start: int, end: int,
                 params: CallParams) -> list[Variant]:
    found = collect(bam, fasta, contig, start, end, params.pad, params.filters)
    if found is None:
        return []
    obs, ref = found
    indels = _call_indels(obs, ref, params)
    snps = _call_snps(obs, ref)
    gap_mask = _indel_neighbourhood(indels, ref, params)
    snps = [v for v in snps if not gap_mask[v.pos - 1 - ref.start]]
    return sorted(v for v in snps + indels if start <= v.pos - 1 < end)


def _call_snps(obs: Observations, ref: RefWindow) -> list[Variant]:
    """SNP calls at every site of the reference slice with >= 2 ALT observations."""
    n = len(ref.seq)
    inside = (obs.pos >= ref.start) & (obs.pos < ref.end)
    site = obs.pos[inside] - ref.start
    base = obs.base[inside].astype(np.int64)
    qual = obs.qual[inside].astype(np.float64)
    strand = obs.strand[inside]
    counts = np.bincount(site * 4 + base, minlength=4 * n).reshape(n, 4)
    qsum = np.bincount(site * 4 + base, qual, minlength=4 * n).reshape(n, 4)
    ref_code = _CODE[np.frombuffer(ref.seq.encode("ascii"), dtype=np.uint8)].astype(np.int64)
    known = ref_code < 4
    qsum_alt = qsum.copy()
    qsum_alt[np.flatnonzero(known), ref_code[known]] = -1.0
    alt_code = qsum_alt.argmax(axis=1)
    alt_count = counts[np.arange(n), alt_code]
    cand = known & (alt_count >= 2)
    cand_sites = np.flatnonzero(cand)
    if cand_sites.size == 0:
        return []
    slot = np.full(n, -1, dtype=np.int64)
    slot[cand_sites] = np.arange(cand_sites.size)
    s = slot[site]
    is_ref = base == ref_code[site]
    is_alt = base == alt_code[site]
    use = (s >= 0) & (is_ref | is_alt)
    s, is_alt, qual, strand = s[use], is_alt[use], qual[use], strand[use]
    w = damping_weights((s * 2 + is_alt) * 2 + strand, qual)
    ll = genotype_loglik(s, is_alt, qual, w, cand_sites.size, 3)
    calls = call_sites(ll)
    depth = counts.sum(axis=1)
    out = []
    for i in np.flatnonzero(calls.variant):
        p = int(cand_sites[i])
        out.append(Variant(
            pos=ref.start + p + 1, ref=ref.seq[p], alt="ACGT"[alt_code[p]],
            qual=round(float(calls.qual[i]), 2), genotype=int(calls.genotype[i]),
            gq=int(calls.gq[i]), dp=int(depth[p]),
            ad=(int(counts[p, ref_code[p]]), int(alt_count[p])), pl=tuple(int(x) for x in calls.pl[i])))
    return out


def _indel_seq_quality(length: int, run: int) -> float:
    """Indel observation quality cap, bcftools ``est_seqQ`` with -o 40 -e 20 -h 500.

    ``run`` is the length in bp of the repeat the indel can slide along; the quality
    falls with it because polymerase slippage makes such indels common errors.
    """
    q = 40.0 + 20.0 * (length - 1)
    return min(q, 500.0 * length / run) if run >= 3 else q


def _call_indels(obs: Observations, ref: RefWindow, params: CallParams) -> list[Variant]:
    """Indel calls from CIGAR events, left-normalised, with REF/ALT read support."""
    norm_cache: dict[tuple[int, int, str], tuple[int, int, str]] = {}
    support: dict[tuple[int, int, str], set[int]] = {}
    tmpl = obs.read_tmpl
    for r, p, ln, ins in zip(obs.ev_read.tolist(), obs.ev_pos.tolist(), obs.ev_len.tolist(), obs.ev_ins):
        if ln > params.max_indel or p - 1 <= ref.start or p + ln >= ref.end:
            continue
        raw = (p, ln, ins.upper())
        key = norm_cache.get(raw)
        if key is None:
            if "N" in raw[2]:
                continue
            npos, nins = left_align(ref, p, ln, raw[2])
            key = norm_cache[raw] = (npos, ln, nins)
        support.setdefault(key, set()).add(int(tmpl[r]))
    out = []
    ev_pos_sorted = np.sort(obs.ev_pos)
    for key in sorted(support):
        alt_t = support[key]
        if len(alt_t) < params.indel_min_reads:
            continue
        npos, ln, ins = key
        rpos = right_extent(ref, npos, ln, ins)
        left, right = npos - 1, rpos + (0 if ins else ln) + 1
        spanning = (obs.read_start <= left) & (obs.read_end >= right)
        lo, hi = np.searchsorted(ev_pos_sorted, [left + 1, right])
        if hi > lo:
            near = (obs.ev_pos > left) & (obs.ev_pos < right)
            spanning[obs.ev_read[near]] = False
        alt_mask = np.isin(tmpl, np.fromiter(alt_t, dtype=np.int64))
        ref_reads = np.flatnonzero(spanning & ~alt_mask)
        alt_reads = np.flatnonzero(alt_mask)
        # one observation per read pair (overlapping mates are one molecule)
        ref_reads = ref_reads[np.unique(tmpl[ref_reads], return_index=True)[1]]
        alt_reads = alt_reads[np.unique(tmpl[alt_reads], return_index=True)[1]]
        depth = ref_reads.size + alt_reads.size
        if alt_reads.size < params.indel_min_frac * depth:
            continue
        run = rpos - npos + ln
        reads = np.concatenate([ref_reads, alt_reads])
        is_alt = np.arange(reads.size) >= ref_reads.size
        q = np.clip(np.minimum(_indel_seq_quality(ln, run), obs.read_mapq[reads]), 4, 63).astype(float)
        strand = obs.read_rev[reads].astype(np.int64)
        w = damping_weights(is_alt * 2 + strand, q)
        ll = genotype_loglik(np.zeros(reads.size, dtype=np.int64), is_alt, q, w, 1, 1)
        calls = call_sites(ll)
        if not calls.variant[0]:
            continue
        anchor = ref.base(npos - 1)
        ref_allele = anchor + (ref.sub(npos, npos + ln) if not ins else "")
        alt_allele = anchor + ins
        out.append(Variant(
            pos=npos, ref=ref_allele, alt=alt_allele, qual=round(float(calls.qual[0]), 2),
            genotype=int(calls.genotype[0]), gq=int(calls.gq[0]), dp=int(depth),
            ad=(int(ref_reads.size), int(alt_reads.size)), pl=tuple(int(x) for x in calls.pl[0])))
    return out


def _indel_neighbourhood(indels: list[Variant], ref: RefWindow, params: CallParams) -> np.ndarray:
    """Mask of slice positions within ``snp_gap`` of a passing indel's repeat span.

    The span runs from the anchor to the rightmost equivalent placement of the indel:
    reads misaligned anywhere along that repeat produce SNP-like mismatches.
    """
    mask = np.zeros(len(ref.seq) + 1, dtype=bool)
    for v in indels:
        if v.qual < params.min_qual:
            continue
        ln = abs(len(v.ref) - len(v.alt))
        ins = v.alt[1:] if len(v.alt) > len(v.ref) else ""
        span_end = right_extent(ref, v.pos, ln, ins) + (0 if ins else ln)
        lo = max(0, v.pos - 1 - params.snp_gap - ref.start)
        hi = min(len(ref.seq), span_end + params.snp_gap - ref.start)
        mask[lo:hi] = True
    return mask
