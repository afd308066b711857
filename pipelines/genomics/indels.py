"""Indel candidates and per-read allele calls by realignment to candidate haplotypes.

bcftools' model (``bam2bcf_indel.c``): candidates are the CIGAR insertions/deletions,
left-normalised and grouped by anchor position; at each anchor every read covering it
is realigned (:mod:`.realign`) to the reference window and to the window with each
candidate applied. A read supports the haplotype it fits best; its indel quality is
the cost gap to the reference haplotype (or to the runner-up when REF fits best),
scaled down by how badly even the best haplotype fits (``1 - residual / 111``, the
residual being the best cost per 100 bases) and capped by the event's sequence quality
(``est_seqQ``: slippage in repeats) and the read's MAPQ. Columns where at least 30 % of
the bases disagree with the reference (nearby SNPs) are masked before realignment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .normalize import left_align, right_extent
from .realign import expected_cost, glocal_costs
from .reads import Observations
from .reference import RefWindow

WINDOW = 50  # bp of reference either side of the anchor (bcftools INDEL_WINDOW_SIZE)
MASK_FRACTION = 0.3
RESIDUAL_SCALE = 111.0
MAX_EVENTS = 8  # events realigned per anchor (bcftools allows 63)
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i


@dataclass(frozen=True)
class IndelSite:
    """Candidate indels sharing one anchor.

    Attributes
    ----------
    anchor : int
        0-based position of the base before the event (VCF POS - 1).
    events : list of (int, str)
        ALT events: (+length, inserted sequence), (-length, "") for a deletion, or
        (0, base) for a substitution of the base after the anchor (SNP sites).
    runs : list of int
        Length in bp of the repeat each event can slide along (for ``est_seqQ``).
    support : list of int
        Read pairs whose CIGAR carries each event (bcftools' IDV counts these).
    """

    anchor: int
    events: list[tuple[int, str]]
    runs: list[int]
    support: list[int]

    @property
    def is_snp(self) -> bool:
        """Whether the events are substitutions."""
        return self.events[0][0] == 0


@dataclass(frozen=True)
class ReadAlleles:
    """Per-read allele calls at one site: read index, allele (0 = REF, i = events[i-1]), quality."""

    read: np.ndarray
    allele: np.ndarray
    qual: np.ndarray


def seq_quality(length: int, run: int) -> float:
    """Indel observation quality cap, bcftools ``est_seqQ`` with -o 40 -e 20 -h 500.

    ``run`` is the length in bp of the repeat the indel can slide along; the quality
    falls with it because polymerase slippage makes such indels common errors.
    """
    q = 40.0 + 20.0 * (length - 1)
    return min(q, 500.0 * length / run) if run >= 3 else q


def candidate_sites(obs: Observations, ref: RefWindow, max_indel: int, min_reads: int,
                    min_frac: float) -> list[IndelSite]:
    """Left-normalised CIGAR indels grouped by anchor; an anchor needs ``min_reads`` read pairs,
    and ``min_frac`` of the read pairs covering it, carrying any of its events (the
    ``MAX_EVENTS`` best supported events are kept).

    Insertions of one length at one anchor are merged into their most supported sequence
    (sequencing errors inside an insertion do not split its support).
    """
    norm_cache: dict[tuple[int, int, str], tuple[int, int, str]] = {}
    support: dict[tuple[int, int, str], set[int]] = {}
    tmpl = obs.read_tmpl
    for r, p, ln, ins in zip(obs.ev_read.tolist(), obs.ev_pos.tolist(), obs.ev_len.tolist(), obs.ev_ins):
        if ln > max_indel or p - 1 <= ref.start or p + ln >= ref.end:
            continue
        raw = (p, ln, ins.upper())
        key = norm_cache.get(raw)
        if key is None:
            if "N" in raw[2]:
                continue
            npos, nins = left_align(ref, p, ln, raw[2])
            key = norm_cache[raw] = (npos, ln, nins)
        support.setdefault(key, set()).add(int(tmpl[r]))
    grouped: dict[tuple[int, int], tuple[str, set[int], int]] = {}
    for (npos, ln, ins), reads in sorted(support.items()):
        signed = ln if ins else -ln
        best = grouped.get((npos, signed))
        if best is None:
            grouped[(npos, signed)] = (ins, set(reads), len(reads))
        else:
            seq, merged, top = best
            if len(reads) > top:
                seq, top = ins, len(reads)
            grouped[(npos, signed)] = (seq, merged | reads, top)
    # bcftools' rule: an anchor is a candidate when its indel reads of any kind together reach
    # ``min_reads``; then every event seen there competes (the best supported ones first)
    sites: dict[int, list[tuple[int, str, int]]] = {}
    site_reads: dict[int, set[int]] = {}
    for (npos, signed), (ins, reads, _) in sorted(grouped.items()):
        sites.setdefault(npos - 1, []).append((signed, ins, len(reads)))
        site_reads.setdefault(npos - 1, set()).update(reads)
    def covering(anchor: int) -> int:  # read pairs covering the anchor
        return np.unique(tmpl[(obs.read_start <= anchor) & (obs.read_end > anchor)]).size

    sites = {a: sorted(found, key=lambda e: (-e[2], e[0], e[1]))[:MAX_EVENTS]
             for a, found in sites.items()
             if len(site_reads[a]) >= min_reads and len(site_reads[a]) >= min_frac * covering(a)}
    out = []
    for anchor, found in sorted(sites.items()):
        events = [(s, ins) for s, ins, _ in found]
        runs = [right_extent(ref, anchor + 1, abs(s), ins) - anchor - 1 + abs(s) for s, ins in events]
        out.append(IndelSite(anchor, events, runs, [n for *_, n in found]))
    return out


def mismatch_mask(obs: Observations, ref: RefWindow) -> np.ndarray:
    """Slice positions where >= 30 % of the observed bases (and >= 2) differ from the reference."""
    n = len(ref.seq)
    inside = (obs.pos >= ref.start) & (obs.pos < ref.end)
    site = obs.pos[inside] - ref.start
    ref_code = _CODE[np.frombuffer(ref.seq.encode("ascii"), dtype=np.uint8)]
    other = obs.base[inside] != ref_code[site]
    total = np.bincount(site, minlength=n)
    diff = np.bincount(site, other, minlength=n)
    return (diff >= 2) & (diff >= MASK_FRACTION * total)


def _apply(win: np.ndarray, left: int, events: list[tuple[int, int, str]]) -> np.ndarray:
    """``win`` (reference from ``left``) with non-overlapping events applied right to left.

    An event is (anchor, signed length, sequence): +n inserts ``sequence`` after the
    anchor, -n deletes n bases after it, 0 replaces the base after it by ``sequence``.
    """
    hap = win
    for anchor, signed, seq in sorted(events, reverse=True):
        cut = anchor + 1 - left
        if signed < 0:
            hap = np.concatenate([hap[:cut], hap[cut - signed:]])
        else:
            body = _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
            hap = np.concatenate([hap[:cut], body, hap[cut + (signed == 0):]])
    return hap


def _span(event: tuple[int, int, str]) -> tuple[int, int]:
    """Reference bases an event touches, anchor included."""
    anchor, signed, _ = event
    return anchor, anchor + 1 + max(0, -signed) + (signed == 0)


def _haplotypes(ref: RefWindow, own: list[tuple[int, int, str]], others: list[tuple[int, int, str]],
                left: int, right: int, mask: np.ndarray, unmask: int | None):
    """Haplotypes over ``[left, right)`` and, per haplotype, which own event it carries (0 = none).

    Without own events: the reference and each nearby event alone; with: each own event
    alone and, for substitutions (``unmask`` set), also combined with each nearby event
    it does not overlap (a SNP beside a true indel). Masked columns are N, except
    position ``unmask`` (a SNP site's own column).
    """
    win = _CODE[np.frombuffer(ref.seq[left - ref.start:right - ref.start].encode("ascii"), dtype=np.uint8)].copy()
    cols = mask[left - ref.start:right - ref.start].copy()
    if unmask is not None:
        cols[unmask - left] = False
    win[cols] = 4
    haps, carries = [win], [0]
    for other in others:
        haps.append(_apply(win, left, [other]))
        carries.append(0)
    for k, event in enumerate(own, start=1):
        haps.append(_apply(win, left, [event]))
        carries.append(k)
        a0, a1 = _span(event)
        for other in others if unmask is not None else []:
            b0, b1 = _span(other)
            if a1 <= b0 or b1 <= a0:
                haps.append(_apply(win, left, [event, other]))
                carries.append(k)
    return haps, np.array(carries)


def _segment(obs: Observations, r: int, left: int, right: int) -> tuple[int, int, int]:
    """Query offsets ``[qbeg, qend)`` of read ``r``'s aligned bases inside ``[left, right)``, and the
    reference position of the first of them (soft clips excluded, as bcftools)."""
    lo, hi = obs.read_blocks[r], obs.read_blocks[r + 1]
    qbeg = qend = tbeg = -1
    for b in range(lo, hi):
        rs, qs, ln = int(obs.blk_ref[b]), int(obs.blk_q[b]), int(obs.blk_len[b])
        if rs + ln <= left or rs >= right:
            continue
        if qbeg < 0:
            off = max(0, left - rs)
            qbeg, tbeg = qs + off, rs + off
        qend = qs + min(ln, right - rs)
    return qbeg, qend, tbeg


@dataclass
class _Prepared:
    """One site's realignment pairs (haplotype x read segment) and what is needed to read them."""

    site: IndelSite
    carries: np.ndarray
    read_ids: np.ndarray
    seg_len: np.ndarray
    expected: np.ndarray  # expected mismatch cost of each segment given its base qualities (SNP sites)
    haps: list[np.ndarray]
    segs: list[tuple[int, int, int]]  # (qbeg, qend, haplotype start)
    band: int


def _prepare(obs: Observations, ref: RefWindow, site: IndelSite, reads: np.ndarray, mask: np.ndarray,
             neighbours: list[IndelSite]) -> _Prepared | None:
    max_del = max([-s for s, _ in site.events if s < 0], default=0)
    left = max(ref.start, site.anchor - WINDOW)
    right = min(ref.end, site.anchor + 2 + WINDOW + max_del)
    own = [(site.anchor, s, seq) for s, seq in site.events]
    # nearby events compete; for an indel site only those seen in two read pairs (one read's
    # event explains no other read), for a SNP every one (a misaligned read may carry it)
    least = 1 if site.is_snp else 2
    others = [(n.anchor, s, seq) for n in neighbours for (s, seq), k in zip(n.events, n.support)
              if k >= least and left < n.anchor and _span((n.anchor, s, seq))[1] < right]
    segs, ids = [], []
    for r in reads.tolist():
        qb, qe, tb = _segment(obs, r, left, right)
        if qe - qb >= 1:
            segs.append((qb, qe, tb - left))
            ids.append(r)
    if not segs:
        return None
    haps, carries = _haplotypes(ref, own, others, left, right, mask,
                                site.anchor + 1 if site.is_snp else None)
    bounds = np.array(segs)
    return _Prepared(site, carries, np.array(ids), bounds[:, 1] - bounds[:, 0],
                     expected_cost(obs.bq, bounds[:, 0], bounds[:, 1]) if site.is_snp else np.zeros(len(segs)),
                     haps, segs, max(abs(e[1]) for e in own + others) + 4)


def _pair_arrays(items: list[_Prepared]):
    """Every (haplotype, read segment) pair of ``items``, haplotype-major per site, as the
    arguments of :func:`glocal_costs` after ``seq`` and ``qual``."""
    haps = [h for p in items for h in p.haps]
    hap_len = np.array([h.size for h in haps], dtype=np.int64)
    hap_off = np.concatenate([[0], np.cumsum(hap_len)[:-1]])
    pair_hap, seg_beg, seg_len, start, band = [], [], [], [], []
    first_hap = 0
    for p in items:
        segs = np.array(p.segs, dtype=np.int64)
        n_h, n_s = len(p.haps), len(p.segs)
        pair_hap.append(np.repeat(np.arange(first_hap, first_hap + n_h), n_s))
        seg_beg.append(np.tile(segs[:, 0], n_h))
        seg_len.append(np.tile(segs[:, 1] - segs[:, 0], n_h))
        start.append(np.tile(segs[:, 2], n_h))
        band.append(np.full(n_h * n_s, p.band, dtype=np.int64))
        first_hap += n_h
    return (np.concatenate(haps), hap_off, hap_len, np.concatenate(pair_hap), np.concatenate(seg_beg),
            np.concatenate(seg_len), np.concatenate(start), np.concatenate(band))


def _assign(obs: Observations, p: _Prepared, cost: np.ndarray, min_qual: float) -> ReadAlleles:
    """Per-read allele and quality from the costs of one site (haplotypes x reads)."""
    cost = cost.reshape(len(p.haps), len(p.segs)).T
    n_own = len(p.site.events)
    by_event = np.stack([cost[:, p.carries == k].min(axis=1) for k in range(n_own + 1)], axis=1)
    site_best = by_event[:, 1:].argmin(axis=1)
    with_event = by_event[:, 1:].min(axis=1)
    without = by_event[:, 0]
    allele = np.where(with_event < without, site_best + 1, 0)
    gap = np.abs(without - with_event)
    # bcftools scales an indel's gap down by the best fit's cost per 100 bases (its
    # "residual"), so reads no haplotype explains lose weight; for a SNP only the cost
    # beyond what the read's base qualities predict counts, so bases keep the weight their
    # (calibrated) qualities give them unless the read is misplaced
    best_fit = np.minimum(with_event, without)
    if p.site.is_snp:
        best_fit = np.maximum(best_fit - p.expected, 0.0)
    q = gap * np.clip(1.0 - 100.0 * best_fit / p.seg_len / RESIDUAL_SCALE, 0.0, 1.0)
    if p.site.is_snp:
        # the base's own quality (min of BQ and MAPQ, 0 for an overlapping mate's copy) caps
        # it, like BAQ; the base-quality threshold was applied to the base already
        q = np.minimum(q, _base_quality(obs, p.read_ids, p.site.anchor + 1))
        min_qual = 1.0
    else:
        seq_q = np.array([seq_quality(abs(s), run) for (s, _), run in zip(p.site.events, p.site.runs)])
        q = np.minimum(np.minimum(q, seq_q[site_best]), obs.read_mapq[p.read_ids])
    informative = q >= max(min_qual, 1.0)
    return ReadAlleles(read=p.read_ids[informative], allele=allele[informative],
                       qual=np.clip(q[informative], 4.0, 63.0))


def _base_quality(obs: Observations, reads: np.ndarray, pos: int) -> np.ndarray:
    """Kept observation quality of each read at ``pos`` (0 when the read has none there)."""
    if obs.pos.size == 0:
        return np.zeros(reads.size)
    span = int(obs.pos.max()) + 1
    keys = obs.read * span + obs.pos  # sorted: observations are in read, then position order
    want = reads * span + pos
    at = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    return np.where(keys[at] == want, obs.qual[at], 0).astype(np.float64)


def read_alleles(obs: Observations, ref: RefWindow, sites: list[tuple[IndelSite, np.ndarray, list[IndelSite]]],
                 mask: np.ndarray, min_qual: float) -> list[ReadAlleles]:
    """Realign each site's reads to its haplotypes; allele and indel quality per informative read.

    ``sites`` holds (site, reads covering its anchor, neighbouring candidate sites).
    The events of the neighbours are competing haplotypes too: a read supports one of
    the site's events only when that event fits it better than the reference and every
    nearby candidate, and supports REF when the best fit lacks the site's events (its
    quality is then the gap to the best site event). Reads whose indel quality falls
    below ``min_qual`` (the base-quality threshold) are left out, like low-quality
    bases: among them reads that fit REF and the best other haplotype equally well
    (they end before the event) and reads no haplotype explains. The pairs of all sites
    are aligned in one call.
    """
    prepared = [_prepare(obs, ref, site, reads, mask, near) for site, reads, near in sites]
    items = [p for p in prepared if p is not None]
    costs = iter([])
    if items:
        hap_buf, hap_off, hap_len, pair_hap, seg_beg, seg_len, start, band = _pair_arrays(items)
        flat = glocal_costs(hap_buf, hap_off, hap_len, obs.seq, obs.bq, pair_hap, seg_beg, seg_len, start, band)
        costs = iter(np.split(flat, np.cumsum([len(p.haps) * len(p.segs) for p in items])[:-1]))
    empty = ReadAlleles(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return [empty if p is None else _assign(obs, p, next(costs), min_qual) for p in prepared]


def vcf_alleles(ref: RefWindow, anchor: int, events: list[tuple[int, str]]) -> tuple[str, list[str]]:
    """REF and ALT strings of events sharing ``anchor``: REF spans the longest deletion."""
    max_del = max([-s for s, _ in events if s < 0], default=0)
    ref_allele = ref.sub(anchor, anchor + 1 + max_del)
    alts = []
    for signed, ins in events:
        if signed > 0:
            alts.append(ref_allele[0] + ins + ref_allele[1:])
        else:
            alts.append(ref_allele[0] + ref_allele[1 - signed:])
    return ref_allele, alts
