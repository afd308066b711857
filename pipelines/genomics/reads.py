"""Flatten the reads of one padded window into per-read, per-base and per-indel numpy arrays.

The only Python loop is one iteration per read (to read its CIGAR); every per-base
step (positions, bases, qualities, overlapping-mate and depth handling) is numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pysam

from .reference import RefWindow, fetch_window

#: Flags skipped like ``bcftools mpileup`` (unmapped, secondary, QC-fail, duplicate).
SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400

_BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _BASE_CODE[_b] = _i
    _BASE_CODE[_b + 32] = _i  # lower case


@dataclass(frozen=True)
class ReadFilters:
    """Read and base filters of the caller (defaults follow the issue / bcftools)."""

    min_mapq: int = 0
    min_baseq: int = 13
    max_depth: int = 250


@dataclass
class Observations:
    """Base observations and indel events of the reads overlapping one window.

    Attributes
    ----------
    pos, base, qual, read, strand:
        One entry per aligned base kept after filtering, at candidate SNP sites only: 0-based reference position,
        base code (0-3 = ACGT), effective quality (min of BQ and MAPQ, damped later),
        read index and reverse-strand flag.
    read_start, read_end, read_mapq, read_tmpl, read_rev, read_clean:
        Per-read aligned reference span (soft clips excluded), effective MAPQ,
        template (read-pair) index, reverse-strand flag, and whether the alignment is
        gap-free and unclipped.
    ev_read, ev_pos, ev_len, ev_ins:
        One entry per CIGAR indel: read index, 0-based reference position of the first
        deleted base (or of the base an insertion precedes), length, and the inserted
        sequence (empty for deletions).
    seq, bq:
        Base codes (0-3 = ACGT, 4 = other) and base qualities of every read, concatenated.
    blk_ref, blk_q, blk_len, read_blocks:
        Aligned (M/=/X) CIGAR blocks: reference start, offset into ``seq`` and length;
        the blocks of read ``r`` are ``read_blocks[r]:read_blocks[r + 1]``.
    """

    pos: np.ndarray
    base: np.ndarray
    qual: np.ndarray
    read: np.ndarray
    strand: np.ndarray
    read_start: np.ndarray
    read_end: np.ndarray
    read_mapq: np.ndarray
    read_tmpl: np.ndarray
    read_rev: np.ndarray
    read_clean: np.ndarray
    ev_read: np.ndarray
    ev_pos: np.ndarray
    ev_len: np.ndarray
    ev_ins: list[str]
    seq: np.ndarray
    bq: np.ndarray
    blk_ref: np.ndarray
    blk_q: np.ndarray
    blk_len: np.ndarray
    read_blocks: np.ndarray


class ReadCap:
    """Depth cap applied while reading: bounded memory at any depth, independent of the window.

    The reference is cut into fixed ``BLOCK``-bp blocks (absolute coordinates); a read is
    kept while the reads already kept that start in its block hold fewer than
    ``max_depth * BLOCK`` aligned bases, i.e. while their mean depth over the block is
    below ``max_depth``. Reads arrive in file (start) order, so a block's decisions depend
    only on the reads starting in it: any fetch that sees the whole block decides alike,
    and a fetch window's partial first block lies more than a read length before the
    positions it calls. Below ``max_depth`` nothing is dropped; the exact per-position cap
    (first ``max_depth`` reads in file order) is applied to the kept reads afterwards.
    """

    BLOCK = 256

    def __init__(self, max_depth: int):
        self.budget = max_depth * self.BLOCK
        self.block = -1
        self.used = 0

    def accept(self, start: int, length: int) -> bool:
        """Whether to keep a read starting at ``start`` with ``length`` aligned reference bases."""
        block = start // self.BLOCK
        if block != self.block:
            self.block, self.used = block, 0
        if self.used >= self.budget:
            return False
        self.used += length
        return True


def effective_mapq(mapq: np.ndarray) -> np.ndarray:
    """MAPQ as used to cap base qualities: 255 (unknown) counts as 20, capped at 60."""
    mapq = np.where(mapq == 255, 20, mapq)
    return np.minimum(mapq, 60)


def collect(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, contig: str, start: int, end: int,
            pad: int, filters: ReadFilters, min_alt: int = 2) -> tuple[Observations, RefWindow] | None:
    """Reads overlapping ``[start - pad, end + pad)`` as flat arrays, and the reference around them.

    Base observations are kept only at candidate SNP sites (some non-reference base seen
    ``min_alt`` times before mate de-duplication, a superset of the final candidates), so
    the per-base work after the expansion touches a few percent of the bases.
    Reads are taken in file order, so the same read set yields the same arrays whatever
    window it was fetched for: this is what makes chunking exact. ``None`` when no reads.
    """
    seqs: list[str] = []
    quals: list[bytes] = []
    blk_ref: list[int] = []
    blk_q: list[int] = []
    blk_len: list[int] = []
    blk_read: list[int] = []
    ev_read: list[int] = []
    ev_pos: list[int] = []
    ev_len: list[int] = []
    ev_ins: list[str] = []
    r_start: list[int] = []
    r_end: list[int] = []
    r_mapq: list[int] = []
    r_rev: list[bool] = []
    r_len: list[int] = []
    r_tmpl: list[int] = []
    templates: dict[str | tuple[str, int], int] = {}
    qoff = 0
    cap = ReadCap(filters.max_depth)
    for aln in bam.fetch(contig, max(0, start - pad), end + pad):
        if aln.flag & SKIP_FLAGS or aln.mapping_quality < filters.min_mapq:
            continue
        seq = aln.query_sequence
        qq = aln.query_qualities
        cigar = aln.cigartuples
        if seq is None or qq is None or not cigar or not cap.accept(aln.reference_start, aln.reference_length):
            continue
        idx = len(r_start)
        rpos = aln.reference_start
        qpos = qoff
        for op, length in cigar:
            if op == 0 or op == 7 or op == 8:
                blk_ref.append(rpos)
                blk_q.append(qpos)
                blk_len.append(length)
                blk_read.append(idx)
                rpos += length
                qpos += length
            elif op == 1:
                ev_read.append(idx)
                ev_pos.append(rpos)
                ev_len.append(length)
                ev_ins.append(seq[qpos - qoff:qpos - qoff + length])
                qpos += length
            elif op == 2:
                ev_read.append(idx)
                ev_pos.append(rpos)
                ev_len.append(length)
                ev_ins.append("")
                rpos += length
            elif op == 3:
                rpos += length
            elif op == 4:
                qpos += length
        seqs.append(seq)
        quals.append(qq.tobytes())
        qoff += len(seq)
        r_start.append(aln.reference_start)
        r_end.append(rpos)
        r_mapq.append(aln.mapping_quality)
        r_rev.append(aln.is_reverse)
        r_len.append(len(seq))
        # a supplementary piece (0x800) is never paired with its primary mates for overlap removal:
        # which pieces a fetch sees would otherwise depend on where the window falls
        key = (aln.query_name, idx) if aln.flag & 0x800 else aln.query_name
        r_tmpl.append(templates.setdefault(key, len(templates)))
    if not r_start:
        return None
    rs, re_ = np.asarray(r_start, dtype=np.int64), np.asarray(r_end, dtype=np.int64)
    ref = fetch_window(fasta, contig, max(start - 2 * pad, int(rs.min()) - pad),
                       min(end + 2 * pad, int(re_.max()) + pad))

    lens = np.asarray(blk_len, dtype=np.int64)
    blk_first = np.cumsum(lens) - lens  # index of each block's first observation
    offsets = np.repeat(np.asarray(blk_ref, dtype=np.int64) - blk_first, lens)
    pos = offsets + np.arange(int(lens.sum()), dtype=np.int64)
    qidx = pos + np.repeat(np.asarray(blk_q, dtype=np.int64) - np.asarray(blk_ref, dtype=np.int64), lens)
    all_seq = _BASE_CODE[np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)]
    all_bq = np.frombuffer(b"".join(quals), dtype=np.uint8)
    base, bq = all_seq[qidx], all_bq[qidx]
    site = np.clip(pos - ref.start, 0, len(ref.seq) - 1)
    ok = (base < 4) & (bq >= filters.min_baseq) & (pos >= ref.start) & (pos < ref.end)
    sel = np.flatnonzero(ok & _candidate_sites(site[ok], base[ok], ref, min_alt)[site])

    read = np.asarray(blk_read, dtype=np.int64)[np.searchsorted(blk_first, sel, side="right") - 1]
    read_mapq = effective_mapq(np.asarray(r_mapq, dtype=np.int32))
    pos, base = pos[sel], base[sel]
    qual = np.minimum(bq[sel].astype(np.int32), read_mapq[read])
    tmpl = np.asarray(r_tmpl, dtype=np.int64)
    pos, base, qual, read = _drop_mate_overlaps(pos, base, qual, read, tmpl, rs, re_)
    pos, base, qual, read = _cap_depth(pos, base, qual, read, filters.max_depth)
    rev = np.asarray(r_rev, dtype=bool)
    obs = Observations(
        pos=pos, base=base, qual=np.clip(qual, 4, 63), read=read, strand=rev[read],
        read_start=rs, read_end=re_, read_mapq=read_mapq, read_tmpl=tmpl, read_rev=rev,
        read_clean=(np.bincount(np.asarray(ev_read, dtype=np.int64), minlength=rs.size) == 0)
        & (np.bincount(np.asarray(blk_read, dtype=np.int64), lens, minlength=rs.size) == np.asarray(r_len)),
        ev_read=np.asarray(ev_read, dtype=np.int64), ev_pos=np.asarray(ev_pos, dtype=np.int64),
        ev_len=np.asarray(ev_len, dtype=np.int64), ev_ins=ev_ins,
        seq=all_seq, bq=all_bq, blk_ref=np.asarray(blk_ref, dtype=np.int64),
        blk_q=np.asarray(blk_q, dtype=np.int64), blk_len=lens,
        read_blocks=np.searchsorted(np.asarray(blk_read, dtype=np.int64), np.arange(rs.size + 1)),
    )
    return obs, ref


def _candidate_sites(site: np.ndarray, base: np.ndarray, ref: RefWindow, min_alt: int) -> np.ndarray:
    """Mask over the slice: known reference base and some other base seen >= ``min_alt`` times."""
    n = len(ref.seq)
    counts = np.bincount(site * 4 + base, minlength=4 * n).reshape(n, 4)
    ref_code = _BASE_CODE[np.frombuffer(ref.seq.encode("ascii"), dtype=np.uint8)]
    known = ref_code < 4
    counts[np.flatnonzero(known), ref_code[known]] = 0
    return known & (counts.max(axis=1) >= min_alt)


def _drop_mate_overlaps(pos, base, qual, read, tmpl, r_start, r_end):
    """Keep one observation per (template, position): the higher-quality mate's.

    Overlapping mates sequence the same molecule, so counting both would double the
    evidence (bcftools zeroes one mate the same way). Ties keep the earlier read.
    Only observations inside the overlap of two mates are sorted.
    """
    if pos.size == 0 or tmpl.size == 0:
        return pos, base, qual, read
    n_t = int(tmpl.max()) + 1
    ov_start = np.full(n_t, np.iinfo(np.int64).min)
    ov_end = np.full(n_t, np.iinfo(np.int64).max)
    np.maximum.at(ov_start, tmpl, r_start)
    np.minimum.at(ov_end, tmpl, r_end)
    paired = np.bincount(tmpl, minlength=n_t) > 1
    t_obs = tmpl[read]
    cand = np.flatnonzero(paired[t_obs] & (pos >= ov_start[t_obs]) & (pos < ov_end[t_obs]))
    if cand.size == 0:
        return pos, base, qual, read
    t, p, q, r = t_obs[cand], pos[cand], qual[cand], read[cand]
    order = np.lexsort((r, -q, p, t))
    t_s, p_s = t[order], p[order]
    dup = np.zeros(order.size, dtype=bool)
    dup[1:] = (t_s[1:] == t_s[:-1]) & (p_s[1:] == p_s[:-1])
    keep = np.ones(pos.size, dtype=bool)
    keep[cand[order[dup]]] = False
    return pos[keep], base[keep], qual[keep], read[keep]


def _cap_depth(pos, base, qual, read, max_depth):
    """Keep the first ``max_depth`` reads (in file order) at each position."""
    if pos.size == 0:
        return pos, base, qual, read
    lo = int(pos.min())
    depth = np.bincount(pos - lo)
    if depth.max() <= max_depth:
        return pos, base, qual, read
    cand = np.flatnonzero(depth[pos - lo] > max_depth)
    order = cand[np.lexsort((read[cand], pos[cand]))]
    p_s = pos[order]
    new = np.ones(p_s.size, dtype=bool)
    new[1:] = p_s[1:] != p_s[:-1]
    idx = np.arange(p_s.size)
    rank = idx - np.maximum.accumulate(np.where(new, idx, 0))
    keep = np.ones(pos.size, dtype=bool)
    keep[order[rank >= max_depth]] = False
    return pos[keep], base[keep], qual[keep], read[keep]
