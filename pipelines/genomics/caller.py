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

from .indels import WINDOW, IndelSite, ReadAlleles, candidate_sites, mismatch_mask, read_alleles, vcf_alleles
from .likelihood import GENOTYPES, MAX_ALLELES, call_sites, damping_weights, genotype_loglik, phred_likelihoods
from .ploidy import Ploidy
from .reads import Observations, ReadFilters, collect
from .reference import RefWindow
from .sources import open_alignment, open_reference

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
        Read fetch padding around a chunk; must exceed the read length plus the read cap's
        256 bp block (``reads.ReadCap``).
    indel_min_reads, indel_min_frac : int, float
        Indel candidates need this many supporting read pairs (CIGAR), and after
        realignment this many and this fraction of the read pairs covering the anchor.
    max_indel : int
        Longest indel considered (bcftools ``--indel-size``).
    ploidy : Ploidy
        Copies per position (diploid by default; haploid or sex-chromosome presets).
    gvcf : bool
        Also emit reference blocks (:class:`Block`) over every position without a record.
    window : int
        Longest stretch called from one read fetch (bounds memory per task).
    """

    filters: ReadFilters = field(default_factory=ReadFilters)
    min_qual: float = 20.0
    pad: int = 1000
    indel_min_reads: int = 2
    indel_min_frac: float = 0.05
    max_indel: int = 110
    ploidy: Ploidy = field(default_factory=Ploidy)
    gvcf: bool = False
    window: int = 200_000


@dataclass(frozen=True, order=True)
class Variant:
    """One record: ``pos`` is the 1-based VCF POS, ``genotype`` indexes REF + ``alts``."""

    pos: int
    ref: str
    alts: tuple[str, ...]
    qual: float
    genotype: tuple[int, ...]  # one allele index per copy (one when haploid)
    gq: int
    dp: int
    ad: tuple[int, ...]
    pl: tuple[int, ...]
    filters: tuple[str, ...] = ()
    info: tuple[str, ...] = ()  # INFO entries after DP, e.g. "MQ=60"

    @property
    def is_indel(self) -> bool:
        """Whether any allele differs in length from REF."""
        return any(len(a) != len(self.ref) for a in self.alts)


@dataclass(frozen=True, order=True)
class Block:
    """A gVCF reference block: no variant at 1-based ``pos``..``end``, depth ``min_dp`` or more.

    ``band`` is the depth band (0 = no reads: a no-call, not hom-ref); blocks join only
    within one band.
    """

    pos: int
    end: int
    ref: str
    band: int
    min_dp: int


#: gVCF depth bands: a block holds positions whose depth reaches the same threshold.
DEPTH_BANDS = (1, 5, 10, 20, 50)


def join_blocks(records: list[Variant | Block]) -> list[Variant | Block]:
    """Merge adjacent blocks of one band (those split by a window or chunk boundary)."""
    out: list[Variant | Block] = []
    for r in records:
        last = out[-1] if out else None
        if isinstance(r, Block) and isinstance(last, Block) and last.end + 1 == r.pos and last.band == r.band:
            out[-1] = Block(last.pos, r.end, last.ref, last.band, min(last.min_dp, r.min_dp))
        else:
            out.append(r)
    return out


def call_chunk(bam_path: str, fasta_path: str, contig: str, start: int, end: int,
               params: CallParams, index: str | None = None) -> list[Variant | Block]:
    """Variants of ``contig`` whose normalised POS lies in ``[start, end)`` (0-based).

    Opens the BAM/CRAM (with ``index`` when it is not beside the file) and FASTA itself
    so it can run on any worker. Long chunks are
    called in windows of ``params.window`` bp (same ownership rule), which bounds memory;
    the reference is fetched only around windows that hold reads.
    """
    out: list[Variant] = []
    with open_reference(fasta_path) as fasta, open_alignment(bam_path, fasta_path, index) as bam:
        for w_start in range(start, end, params.window):
            w_end = min(end, w_start + params.window)
            out.extend(_call_window(bam, fasta, contig, w_start, w_end, params))
    return join_blocks(out) if params.gvcf else out


def _call_window(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, contig: str, start: int, end: int,
                 params: CallParams) -> list[Variant]:
    found = collect(bam, fasta, contig, start, end, params.pad, params.filters)
    if found is None:
        return [Block(start + 1, end, fasta.fetch(contig, start, start + 1).upper(), 0, 0)] if params.gvcf else []
    obs, ref = found
    indel_sites = candidate_sites(obs, ref, params.max_indel, params.indel_min_reads, params.indel_min_frac)
    snps = _snp_candidates(obs, ref)
    anchors = np.array([site.anchor for site in indel_sites], dtype=np.int64)

    def job(site: IndelSite, reads: np.ndarray, skip: int | None) -> tuple[IndelSite, np.ndarray, list[IndelSite]]:
        lo, hi = np.searchsorted(anchors, [site.anchor - WINDOW, site.anchor + WINDOW])
        return site, reads, [indel_sites[j] for j in range(lo, hi) if j != skip]

    # a SNP the pileup calls has its ALT reads realigned (BAQ's purpose) when a candidate indel
    # is near or one of them is gapped or clipped: misaligned reads near indels or from
    # paralogous copies fit poorly and lose weight (clean reads far from indels keep their
    # base quality under realignment, so they are spared the work)
    snp_ploidy = params.ploidy.at(contig, snps.sites + ref.start)
    pileup_calls = snps.genotype(obs, {}, snp_ploidy)
    called = snps.index_of([v.pos - 1 for v in pileup_calls])
    near = np.searchsorted(anchors, snps.sites[called] + ref.start + WINDOW) \
        > np.searchsorted(anchors, snps.sites[called] + ref.start - WINDOW)
    gapped = np.array([not obs.read_clean[snps.alt_reads(i)].all() for i in called], dtype=bool)
    realign = called[near | gapped]
    jobs = [job(site, _site_reads(obs, site.anchor, params.filters.max_depth), k)
            for k, site in enumerate(indel_sites)]
    jobs += [job(snps.site(i), snps.alt_reads(i), None) for i in realign]
    realigned = read_alleles(obs, ref, jobs, mismatch_mask(obs, ref), params.filters.min_baseq) if jobs else []
    out = _genotype_indels(obs, ref, jobs[:len(indel_sites)], realigned[:len(indel_sites)], params,
                           params.ploidy.at(contig, anchors))
    out += snps.genotype(obs, dict(zip(realign.tolist(), realigned[len(indel_sites):])), snp_ploidy, only=called)
    owned = [v for v in out if start <= v.pos - 1 < end]
    if params.gvcf:
        owned += _blocks(obs, ref, start, end, out)
    return sorted(owned, key=lambda r: r.pos)


def _blocks(obs: Observations, ref: RefWindow, start: int, end: int, variants: list[Variant]) -> list[Block]:
    """Reference blocks tiling ``[start, end)`` outside every variant record's REF span.

    Depth counts the aligned bases of the kept reads; a block ends where the depth band
    changes or a record begins. ``variants`` are all records of the window, so a deletion
    owned by a neighbouring chunk still removes its span here.
    """
    n = end - start
    cover = np.zeros(n + 1, dtype=np.int64)
    lo = np.clip(obs.blk_ref - start, 0, n)
    hi = np.clip(obs.blk_ref + obs.blk_len - start, 0, n)
    np.add.at(cover, lo, 1)
    np.add.at(cover, hi, -1)
    depth = np.cumsum(cover)[:n]
    free = np.ones(n, dtype=bool)
    for v in variants:
        a, b = max(v.pos - 1, start), min(v.pos - 1 + len(v.ref), end)
        if a < b:
            free[a - start:b - start] = False
    band = np.searchsorted(DEPTH_BANDS, depth, side="right")
    key = np.where(free, band, -1)
    edges = np.flatnonzero(np.diff(key)) + 1
    out = []
    for a, b in zip(np.r_[0, edges], np.r_[edges, n]):
        if key[a] >= 0:
            out.append(Block(start + int(a) + 1, start + int(b), ref.base(start + int(a)), int(key[a]),
                             int(depth[a:b].min())))
    return out


def _record(pos: int, ref_allele: str, alt_alleles: list[str], ll_row: np.ndarray, genotype: int,
            qual: float, gq: int, counts: np.ndarray, evidence: tuple[np.ndarray, np.ndarray, np.ndarray],
            extra: tuple[str, ...] = (), haploid: bool = False) -> Variant:
    """A record carrying only the ALT alleles of the called genotype (REF first).

    ``evidence`` holds the allele, reverse-strand flag and MAPQ of every observation used;
    they give INFO MQ (mean MAPQ), MQ0F (MAPQ-0 fraction) and DP4 (REF forward, REF reverse,
    ALT forward, ALT reverse), as bcftools names them.
    """
    a, b = GENOTYPES[genotype]
    alleles = [0, *sorted({a, b} - {0})]
    index = {al: i for i, al in enumerate(alleles)}
    allele, rev, mapq = evidence
    alt = allele > 0
    dp4 = [int(np.sum(~alt & ~rev)), int(np.sum(~alt & rev)), int(np.sum(alt & ~rev)), int(np.sum(alt & rev))]
    info = (*extra, f"MQ={int(np.rint(mapq.mean())) if mapq.size else 0}",
            f"MQ0F={float(np.mean(mapq == 0)) if mapq.size else 0:.4g}", "DP4=" + ",".join(map(str, dp4)))
    return Variant(pos=pos, ref=ref_allele, alts=tuple(alt_alleles[al - 1] for al in alleles[1:]),
                   qual=round(float(qual), 2), genotype=(index[a],) if haploid else (index[a], index[b]),
                   gq=int(gq), dp=int(counts.sum()), ad=tuple(int(counts[al]) for al in alleles),
                   pl=tuple(phred_likelihoods(ll_row, alleles, haploid)), info=info)


@dataclass
class _SnpCandidates:
    """SNP candidate sites of a window and their pileup observations.

    ``sites`` are slice offsets; ``bases[i, :n_alleles[i]]`` the allele bases (REF first,
    then ALT bases seen >= 2 times by descending quality sum); ``s, allele, qual, strand,
    read`` the observations of those alleles per candidate index.
    """

    ref: RefWindow
    sites: np.ndarray
    bases: np.ndarray
    n_alleles: np.ndarray
    counts: np.ndarray
    s: np.ndarray
    allele: np.ndarray
    qual: np.ndarray
    strand: np.ndarray
    read: np.ndarray

    def index_of(self, positions: list[int]) -> np.ndarray:
        """Candidate indices of 0-based reference ``positions`` (all candidates)."""
        return np.searchsorted(self.sites, np.asarray(positions, dtype=np.int64) - self.ref.start)

    def site(self, i: int) -> IndelSite:
        """Candidate ``i`` as a realignment site of substitutions."""
        alts = ["ACGT"[b] for b in self.bases[i, 1:self.n_alleles[i]]]
        return IndelSite(int(self.sites[i]) + self.ref.start - 1, [(0, b) for b in alts], [1] * len(alts),
                         [int(c) for c in self.counts[i, 1:self.n_alleles[i]]])

    def alt_reads(self, i: int) -> np.ndarray:
        """Reads whose kept base at candidate ``i`` is one of its ALT alleles."""
        return self.read[(self.s == i) & (self.allele > 0)]

    def genotype(self, obs: Observations, realigned: dict[int, ReadAlleles], ploidy: np.ndarray,
                 only: np.ndarray | None = None) -> list[Variant]:
        """Calls from pileup observations, the ALT ones replaced by their realigned reads
        where given, at sites of the given ``ploidy`` (per candidate; 0 = not called);
        ``only`` restricts the output to these candidate indices."""
        keep = ~(np.isin(self.s, np.fromiter(realigned, dtype=np.int64, count=len(realigned))) & (self.allele > 0))
        parts = [(self.s[keep], self.allele[keep], self.qual[keep], self.strand[keep], self.read[keep])]
        for i, found in realigned.items():
            tmpl = obs.read_tmpl[found.read]
            order = np.lexsort((-found.qual, tmpl))
            first = order[np.unique(tmpl[order], return_index=True)[1]]
            parts.append((np.full(first.size, i), found.allele[first], found.qual[first],
                          obs.read_rev[found.read[first]].astype(np.int64), found.read[first]))
        s, allele, qual, strand, read = (np.concatenate(x) for x in zip(*parts))
        if s.size == 0:
            return []
        w = damping_weights((s * MAX_ALLELES + allele) * 2 + strand, qual)
        ll = genotype_loglik(s, allele, qual, w, self.n_alleles, 3)
        calls = call_sites(ll, ploidy == 1)
        out = []
        variant = calls.variant & (ploidy > 0)
        if only is not None:
            variant &= np.isin(np.arange(self.sites.size), only)
        by_site = np.argsort(s, kind="stable")
        bounds = np.searchsorted(s[by_site], np.arange(self.sites.size + 1))
        for i in np.flatnonzero(variant):
            p = int(self.sites[i])
            bases = self.bases[i, :self.n_alleles[i]]
            mine = by_site[bounds[i]:bounds[i + 1]]
            evidence = (allele[mine], strand[mine].astype(bool), obs.read_mapq[read[mine]])
            out.append(_record(self.ref.start + p + 1, self.ref.seq[p], ["ACGT"[b] for b in bases[1:]], ll[i],
                               int(calls.genotype[i]), calls.qual[i], calls.gq[i],
                               np.bincount(allele[mine], minlength=self.n_alleles[i]), evidence,
                               haploid=bool(ploidy[i] == 1)))
        return out


def _snp_candidates(obs: Observations, ref: RefWindow) -> _SnpCandidates:
    """Sites with >= 2 observations of some ALT base (up to 3 ALT bases each)."""
    n = len(ref.seq)
    inside = (obs.pos >= ref.start) & (obs.pos < ref.end)
    site = obs.pos[inside] - ref.start
    base = obs.base[inside].astype(np.int64)
    qual = obs.qual[inside].astype(np.float64)
    strand = obs.strand[inside].astype(np.int64)
    read = obs.read[inside]
    counts = np.bincount(site * 4 + base, minlength=4 * n).reshape(n, 4)
    qsum = np.bincount(site * 4 + base, qual, minlength=4 * n).reshape(n, 4)
    ref_code = _CODE[np.frombuffer(ref.seq.encode("ascii"), dtype=np.uint8)].astype(np.int64)
    known = np.flatnonzero(ref_code < 4)
    score = np.where(counts >= 2, qsum, -1.0)
    score[known, ref_code[known]] = np.inf
    cand = known[(score[known] >= 0).sum(axis=1) >= 2]
    order = np.argsort(-score[cand], axis=1, kind="stable")
    n_alleles = np.minimum((score[cand] >= 0).sum(axis=1), MAX_ALLELES)
    allele_of = np.full((n, 4), -1, dtype=np.int64)  # slice offset x base -> allele index
    ranks = np.broadcast_to(np.arange(4), order.shape)
    allele_of[cand[:, None], order] = np.where(ranks < n_alleles[:, None], ranks, -1)
    slot = np.full(n, -1, dtype=np.int64)
    slot[cand] = np.arange(cand.size)
    allele = allele_of[site, base]
    use = (slot[site] >= 0) & (allele >= 0)
    return _SnpCandidates(ref=ref, sites=cand, bases=order, n_alleles=n_alleles,
                          counts=np.take_along_axis(counts[cand], order, axis=1),
                          s=slot[site][use], allele=allele[use], qual=qual[use], strand=strand[use],
                          read=read[use])


def _site_reads(obs: Observations, anchor: int, max_depth: int) -> np.ndarray:
    """Reads covering ``anchor``, the first ``max_depth`` in file order."""
    return np.flatnonzero((obs.read_start <= anchor) & (obs.read_end > anchor))[:max_depth]


def _genotype_indels(obs: Observations, ref: RefWindow, jobs, realigned: list[ReadAlleles],
                     params: CallParams, ploidy: np.ndarray) -> list[Variant]:
    """Indel calls from the realigned per-read alleles of each candidate anchor, up to 3 ALT
    events, at anchors of the given ``ploidy`` (per job; 0 = not called)."""
    kept: list[tuple[IndelSite, list[int], np.ndarray, np.ndarray, int]] = []
    kept_ploidy: list[int] = []
    obs_site, obs_allele, obs_q, obs_strand = [], [], [], []
    for (site, reads, _), found, copies in zip(jobs, realigned, ploidy.tolist()):
        if copies == 0:
            continue
        # one observation per read pair (overlapping mates are one molecule): the best one
        tmpl = obs.read_tmpl[found.read]
        order = np.lexsort((-found.qual, tmpl))
        first = order[np.unique(tmpl[order], return_index=True)[1]]
        allele, q, read = found.allele[first], found.qual[first], found.read[first]
        depth = np.unique(obs.read_tmpl[reads]).size
        sumq = np.bincount(allele, q, minlength=len(site.events) + 1)[1:]
        ranked = [e for e in np.argsort(-sumq, kind="stable")[:MAX_ALLELES - 1] if sumq[e] > 0]
        n_alt = int(np.isin(allele, np.asarray(ranked) + 1).sum())
        if n_alt < params.indel_min_reads or n_alt < params.indel_min_frac * depth:
            continue
        remap = np.full(len(site.events) + 1, -1)
        remap[0] = 0
        remap[np.asarray(ranked) + 1] = np.arange(1, len(ranked) + 1)
        allele = remap[allele]
        use = allele >= 0
        obs_site.append(np.full(int(use.sum()), len(kept)))
        obs_allele.append(allele[use])
        obs_q.append(q[use])
        obs_strand.append(obs.read_rev[read[use]].astype(np.int64))
        kept.append((site, ranked, np.bincount(allele[use], minlength=len(ranked) + 1), read[use], depth))
        kept_ploidy.append(copies)
    if not kept:
        return []
    s, allele, q = np.concatenate(obs_site), np.concatenate(obs_allele), np.concatenate(obs_q)
    w = damping_weights((s * MAX_ALLELES + allele) * 2 + np.concatenate(obs_strand), q)
    n_alleles = np.array([len(k[1]) + 1 for k in kept])
    ll = genotype_loglik(s, allele, q, w, n_alleles, 1)
    haploid = np.array(kept_ploidy) == 1
    calls = call_sites(ll, haploid)
    out = []
    for i in np.flatnonzero(calls.variant):
        site, ranked, counts, reads, depth = kept[i]
        ref_allele, alts = vcf_alleles(ref, site.anchor, [site.events[e] for e in ranked])
        mine = s == i
        idv = max(site.support[e] for e in ranked)
        extra = ("INDEL", f"IDV={idv}", f"IMF={idv / max(depth, 1):.4g}")
        evidence = (allele[mine], obs.read_rev[reads].astype(bool), obs.read_mapq[reads])
        out.append(_record(site.anchor + 1, ref_allele, alts, ll[i], int(calls.genotype[i]),
                           calls.qual[i], calls.gq[i], counts, evidence, extra, haploid=bool(haploid[i])))
    return out
