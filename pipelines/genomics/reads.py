"""Flatten the reads of one padded window into per-read, per-base and per-indel numpy arrays.

Reading the records, CIGAR walking and the per-base passes are compiled loops
(:mod:`.kernels`); mate-overlap and depth handling of the candidate sites' observations
are numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pysam

from .kernels import count_bases, count_cigar, gather_observations, gather_reads, walk_cigar
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

    def block_read(self) -> np.ndarray:
        """The read of each aligned block."""
        return np.repeat(np.arange(self.read_start.size), np.diff(self.read_blocks))


#: Depth cap while reading: the reference is cut into fixed blocks of this many bp (absolute
#: coordinates); a read is kept while the reads already kept that start in its block hold fewer
#: than ``max_depth * CAP_BLOCK`` aligned bases, i.e. while their mean depth over the block is
#: below ``max_depth``. Reads arrive in file (start) order, so a block's decisions depend only
#: on the reads starting in it: any fetch that sees the whole block decides alike, and a fetch
#: window's partial first block lies more than a read length before the positions it calls.
#: Below ``max_depth`` nothing is dropped; the exact per-position cap (first ``max_depth`` reads
#: in file order) is applied to the kept reads afterwards. Memory is bounded at any depth.
CAP_BLOCK = 256


def effective_mapq(mapq: np.ndarray) -> np.ndarray:
    """MAPQ as used to cap base qualities: 255 (unknown) counts as 20, capped at 60."""
    mapq = np.where(mapq == 255, 20, mapq)
    return np.minimum(mapq, 60)


def collect(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, contig: str, start: int, end: int,
            pad: int, filters: ReadFilters, min_alt: int = 2) -> tuple[Observations, RefWindow] | None:
    """Reads overlapping ``[start - pad, end + pad)`` as flat arrays, and the reference around them.

    Base observations are kept only at candidate SNP sites (some non-reference base seen
    ``min_alt`` times before mate de-duplication, a superset of the final candidates), so
    the per-observation work after one counting pass touches a few percent of the bases.
    Reads are taken in file order, so the same read set yields the same arrays whatever
    window it was fetched for: this is what makes chunking exact. ``None`` when no reads.
    Records are read and filtered by a compiled loop (:func:`.kernels.gather_reads`,
    with the depth cap of :data:`CAP_BLOCK`), and nothing per base is held beyond the
    kept reads' sequence and qualities (one byte each) and the candidate sites'
    observations.
    """
    kept = gather_reads(bam.fetch(contig, max(0, start - pad), end + pad), SKIP_FLAGS, filters.min_mapq,
                        filters.max_depth * CAP_BLOCK, CAP_BLOCK)
    if not kept.reads:
        return None
    n = kept.reads
    letters = kept.letters[:kept.bases]
    all_seq = _BASE_CODE[letters]
    all_bq = kept.quals[:kept.bases].copy()
    r_len, rs, r_mapq, r_flag, tmpl = (a[:n].copy() for a in (kept.length, kept.start, kept.mapq, kept.flag,
                                                                kept.tmpl))
    n_ops = kept.n_ops[:n].copy()
    ops = kept.ops[:kept.cigar]
    n_blocks, n_events = count_cigar(ops[:, 0])
    blk_ref, blk_q, blk_len, blk_read = (np.empty(n_blocks, np.int64) for _ in range(4))
    ev_read, ev_pos, ev_len, ev_q = (np.empty(n_events, np.int64) for _ in range(4))
    re_ = np.empty(rs.size, np.int64)
    walk_cigar(ops[:, 0], ops[:, 1], n_ops, rs, np.cumsum(r_len) - r_len,
               blk_ref, blk_q, blk_len, blk_read, ev_read, ev_pos, ev_len, ev_q, re_)
    ev_ins = [letters[q:q + n].tobytes().decode("ascii") if q >= 0 else ""
              for q, n in zip(ev_q.tolist(), ev_len.tolist())]
    del kept, letters
    ref = fetch_window(fasta, contig, max(start - 2 * pad, int(rs.min()) - pad),
                       min(end + 2 * pad, int(re_.max()) + pad))

    ref_code = _BASE_CODE[np.frombuffer(ref.seq.encode("ascii"), dtype=np.uint8)]
    counts = np.zeros((len(ref.seq), 4), dtype=np.int32)
    count_bases(blk_ref, blk_q, blk_len, all_seq, all_bq, filters.min_baseq, ref.start, counts)
    depth = counts.sum(axis=1)
    known = np.flatnonzero(ref_code < 4)
    counts[known, ref_code[known]] = 0
    wanted = (ref_code < 4) & (counts.max(axis=1) >= min_alt)
    n_obs = int(depth[wanted].sum())
    pos, read = np.empty(n_obs, np.int64), np.empty(n_obs, np.int64)
    base, bq = np.empty(n_obs, np.uint8), np.empty(n_obs, np.uint8)
    gather_observations(blk_ref, blk_q, blk_len, blk_read, all_seq, all_bq, filters.min_baseq, ref.start,
                        wanted.view(np.uint8), pos, read, base, bq)
    read_mapq = effective_mapq(r_mapq.astype(np.int32))
    pos, base, qual, read = kept_observations(pos, base, bq, read, read_mapq, tmpl, rs, re_, filters.max_depth)
    rev = (r_flag & 0x10) > 0
    obs = Observations(
        pos=pos, base=base, qual=qual, read=read, strand=rev[read],
        read_start=rs, read_end=re_, read_mapq=read_mapq, read_tmpl=tmpl, read_rev=rev,
        read_clean=(np.bincount(ev_read, minlength=rs.size) == 0)
        & (np.bincount(blk_read, blk_len, minlength=rs.size) == r_len),
        ev_read=ev_read, ev_pos=ev_pos, ev_len=ev_len, ev_ins=ev_ins,
        seq=all_seq, bq=all_bq, blk_ref=blk_ref, blk_q=blk_q, blk_len=blk_len,
        read_blocks=np.searchsorted(blk_read, np.arange(rs.size + 1)),
    )
    return obs, ref


def kept_observations(pos: np.ndarray, base: np.ndarray, bq: np.ndarray, read: np.ndarray, read_mapq: np.ndarray,
                      tmpl: np.ndarray, r_start: np.ndarray, r_end: np.ndarray,
                      max_depth: int) -> tuple[np.ndarray, ...]:
    """Filtered base observations (``pos, base, qual, read``) of gathered ones: quality
    min(base quality, read's MAPQ) clipped to 4..63, one mate per overlapping pair, at most
    ``max_depth`` reads per position."""
    qual = np.minimum(bq.astype(np.int32), read_mapq[read])
    pos, base, qual, read = _drop_mate_overlaps(pos, base, qual, read, tmpl, r_start, r_end)
    pos, base, qual, read = _cap_depth(pos, base, qual, read, max_depth)
    return pos, base, np.clip(qual, 4, 63), read


def _drop_mate_overlaps(pos: np.ndarray, base: np.ndarray, qual: np.ndarray, read: np.ndarray, tmpl: np.ndarray,
                       r_start: np.ndarray, r_end: np.ndarray) -> tuple[np.ndarray, ...]:
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


def _cap_depth(pos: np.ndarray, base: np.ndarray, qual: np.ndarray, read: np.ndarray,
              max_depth: int) -> tuple[np.ndarray, ...]:
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
