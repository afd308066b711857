"""Call SNPs and indels owned by one chunk ``[start, end)`` of a contig.

Boundary rule (research/genomics.md): reads are fetched over the chunk +- ``pad``
and the reference over a slightly wider slice; every candidate is left-normalised
and a record is emitted only when its normalised POS lies inside the chunk. Every
position of the fetched window sees all reads overlapping it, so a record's evidence
does not depend on where the chunk boundaries are.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pysam

from .indels import WINDOW, IndelSite, ReadAlleles, candidate_sites, mismatch_mask, read_alleles, vcf_alleles
from .likelihood import GENOTYPES, MAX_ALLELES, CohortCalls, call_samples, damping_weights, genotype_loglik, \
    phred_likelihoods, segregation_bias
from .ploidy import Ploidy
from .reads import Observations, ReadFilters
from .reference import RefWindow
from .samples import SampleReads, Window, collect_samples, sample_source
from .sources import open_reference, reading_alignments

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
        256 bp block (``reads.CAP_BLOCK``).
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
class SampleCall:
    """One sample's FORMAT values of a record; ``genotype`` indexes REF + ALTs, one allele
    per copy (one when haploid), empty for a no-call (no reads)."""

    genotype: tuple[int, ...]
    gq: int
    dp: int
    ad: tuple[int, ...]
    pl: tuple[int, ...]


@dataclass(frozen=True, order=True)
class Variant:
    """One record: ``pos`` is the 1-based VCF POS; ``samples`` in the VCF's sample order."""

    pos: int
    ref: str
    alts: tuple[str, ...]
    qual: float
    samples: tuple[SampleCall, ...]
    filters: tuple[str, ...] = ()
    info: tuple[str, ...] = ()  # INFO entries after DP, e.g. "MQ=60"

    @property
    def dp(self) -> int:
        """Depth over all samples (INFO DP)."""
        return sum(s.dp for s in self.samples)

    @property
    def is_indel(self) -> bool:
        """Whether any allele differs in length from REF."""
        return any(len(a) != len(self.ref) for a in self.alts)


@dataclass(frozen=True, order=True)
class Block:
    """A gVCF reference block: no variant record at 1-based ``pos``..``end``.

    ``band`` holds each sample's depth band (0 = no reads: a no-call, not hom-ref) and
    ``min_dp`` each sample's lowest depth; blocks join only when every band is the same.
    """

    pos: int
    end: int
    ref: str
    band: tuple[int, ...]
    min_dp: tuple[int, ...]


#: gVCF depth bands: a block holds positions whose depth reaches the same threshold.
DEPTH_BANDS = (1, 5, 10, 20, 50)


def join_blocks(records: list[Variant | Block]) -> list[Variant | Block]:
    """Merge adjacent blocks of one band (those split by a window or chunk boundary)."""
    out: list[Variant | Block] = []
    for r in records:
        last = out[-1] if out else None
        if isinstance(r, Block) and isinstance(last, Block) and last.end + 1 == r.pos and last.band == r.band:
            out[-1] = Block(last.pos, r.end, last.ref, last.band,
                            tuple(min(a, b) for a, b in zip(last.min_dp, r.min_dp)))
        else:
            out.append(r)
    return out


def call_chunk(inputs: str | Sequence[SampleReads], fasta_path: str, contig: str, start: int, end: int,
               params: CallParams, index: str | None = None,
               written_from: int | None = None) -> list[Variant | Block]:
    """Variants of ``contig`` whose normalised POS lies in ``[start, end)`` (0-based).

    ``inputs`` is one BAM/CRAM path (with ``index`` when it is not beside the file) or the
    samples to call jointly, in VCF order. ``written_from`` is the start of the region
    being called (default ``start``): records before it are not written, so with
    ``params.gvcf`` their REF spans are covered by reference blocks. Opens the files and FASTA itself so it can run
    on any worker. Long chunks are called in windows of ``params.window`` bp (same
    ownership rule), which bounds memory; the reference is fetched only around windows
    that hold reads.
    """
    samples = [SampleReads(inputs, index)] if isinstance(inputs, str) else list(inputs)
    out: list[Variant] = []
    with open_reference(fasta_path) as fasta, \
            reading_alignments([(s.path, s.index) for s in samples], fasta_path) as files:
        sources = [sample_source(s, aln) for s, aln in zip(samples, files)]
        for w_start in range(start, end, params.window):
            w_end = min(end, w_start + params.window)
            out.extend(_call_window(sources, fasta, contig, w_start, w_end, params,
                                    start if written_from is None else written_from))
    return join_blocks(out) if params.gvcf else out


def _call_window(sources: list, fasta: pysam.FastaFile, contig: str, start: int, end: int,
                 params: CallParams, written_from: int) -> list[Variant]:
    win = collect_samples(sources, fasta, contig, start, end, params.pad, params.filters)
    if win is None:
        zeros = (0,) * len(sources)
        return [Block(start + 1, end, fasta.fetch(contig, start, start + 1).upper(), zeros, zeros)] \
            if params.gvcf else []
    obs, ref = win.obs, win.ref
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
    pileup_calls = snps.genotype(win, {}, snp_ploidy)
    called = snps.index_of([v.pos - 1 for v in pileup_calls])
    near = np.searchsorted(anchors, snps.sites[called] + ref.start + WINDOW) \
        > np.searchsorted(anchors, snps.sites[called] + ref.start - WINDOW)
    gapped = np.array([not obs.read_clean[snps.alt_reads(i)].all() for i in called], dtype=bool)
    realign = called[near | gapped]
    jobs = [job(site, _site_reads(win, site.anchor, params.filters.max_depth), k)
            for k, site in enumerate(indel_sites)]
    jobs += [job(snps.site(i), snps.alt_reads(i), None) for i in realign]
    realigned = read_alleles(obs, ref, jobs, mismatch_mask(obs, ref), params.filters.min_baseq) if jobs else []
    out = _genotype_indels(win, jobs[:len(indel_sites)], realigned[:len(indel_sites)], params,
                           params.ploidy.at(contig, anchors))
    out += snps.genotype(win, dict(zip(realign.tolist(), realigned[len(indel_sites):])), snp_ploidy, only=called)
    owned = [v for v in out if start <= v.pos - 1 < end]
    if params.gvcf:
        owned += _blocks(win, start, end, [v for v in out if v.pos - 1 >= written_from])
    return sorted(owned, key=lambda r: r.pos)


def _blocks(win: Window, start: int, end: int, variants: list[Variant]) -> list[Block]:
    """Reference blocks tiling ``[start, end)`` outside every variant record's REF span.

    Each sample's depth counts the aligned bases of its kept reads; a block ends where any
    sample's depth band changes or a record begins. ``variants`` are all written records
    of the window, so a deletion owned by a neighbouring chunk still removes its span here.
    """
    obs, n = win.obs, end - start
    block_sample = win.sample[obs.block_read()]
    cover = np.zeros((win.n_samples, n + 1), dtype=np.int64)
    lo = np.clip(obs.blk_ref - start, 0, n)
    hi = np.clip(obs.blk_ref + obs.blk_len - start, 0, n)
    np.add.at(cover, (block_sample, lo), 1)
    np.add.at(cover, (block_sample, hi), -1)
    depth = np.cumsum(cover, axis=1)[:, :n]
    free = np.ones(n, dtype=bool)
    for v in variants:
        a, b = max(v.pos - 1, start), min(v.pos - 1 + len(v.ref), end)
        if a < b:
            free[a - start:b - start] = False
    band = np.searchsorted(DEPTH_BANDS, depth, side="right")
    code = np.zeros(n, dtype=np.int64)
    for row in band:  # one number per combination of the samples' bands
        code = code * (len(DEPTH_BANDS) + 1) + row
    key = np.where(free, code, -1)
    edges = np.flatnonzero(np.diff(key)) + 1
    out = []
    for a, b in zip(np.r_[0, edges], np.r_[edges, n]):
        if key[a] >= 0:
            out.append(Block(start + int(a) + 1, start + int(b), win.ref.base(start + int(a)),
                             tuple(int(x) for x in band[:, a]), tuple(int(x) for x in depth[:, a:b].min(axis=1))))
    return out


def _record(pos: int, ref_allele: str, alt_alleles: list[str], ll: np.ndarray, genotype: np.ndarray,
            qual: float, gq: np.ndarray, counts: np.ndarray, evidence: tuple[np.ndarray, np.ndarray, np.ndarray],
            extra: tuple[str, ...] = (), haploid: bool = False) -> Variant:
    """A record carrying only the ALT alleles of the samples' called genotypes (REF first).

    ``ll`` (samples x genotypes), ``genotype`` (index into ``GENOTYPES``, -1 no call),
    ``gq`` and ``counts`` (samples x alleles) are per sample. ``evidence`` holds the allele,
    reverse-strand flag and MAPQ of every observation used; they give INFO MQ (mean MAPQ),
    MQ0F (MAPQ-0 fraction) and DP4 (REF forward, REF reverse, ALT forward, ALT reverse),
    as bcftools names them; the per-sample counts give SGB (:func:`segregation_bias`).
    """
    called = [GENOTYPES[g] for g in genotype.tolist() if g >= 0]
    alleles = [0, *sorted({a for pair in called for a in pair} - {0})]
    index = {al: i for i, al in enumerate(alleles)}
    allele, rev, mapq = evidence
    alt = allele > 0
    dp4 = [int(np.sum(~alt & ~rev)), int(np.sum(~alt & rev)), int(np.sum(alt & ~rev)), int(np.sum(alt & rev))]
    sgb = segregation_bias(counts[:, 1:].sum(axis=1), int(counts.sum()))
    info = (*extra, *((f"SGB={sgb:.6g}",) if sgb is not None else ()),
            f"MQ={int(np.rint(mapq.mean())) if mapq.size else 0}",
            f"MQ0F={float(np.mean(mapq == 0)) if mapq.size else 0:.4g}", "DP4=" + ",".join(map(str, dp4)))
    samples = []
    for j, g in enumerate(genotype.tolist()):
        a, b = GENOTYPES[g] if g >= 0 else (0, 0)
        gt = () if g < 0 else (index[a],) if haploid else (index[a], index[b])
        samples.append(SampleCall(genotype=gt, gq=int(gq[j]), dp=int(counts[j].sum()),
                                  ad=tuple(int(counts[j, al]) for al in alleles),
                                  pl=tuple(phred_likelihoods(ll[j], alleles, haploid))))
    return Variant(pos=pos, ref=ref_allele, alts=tuple(alt_alleles[al - 1] for al in alleles[1:]),
                   qual=round(float(qual), 2), samples=tuple(samples), info=info)


def _genotype(win: Window, site: np.ndarray, allele: np.ndarray, qual: np.ndarray, strand: np.ndarray,
              read: np.ndarray, n_alleles: np.ndarray, n_other: int,
              ploidy: np.ndarray) -> tuple[np.ndarray, CohortCalls, np.ndarray]:
    """Per-sample likelihoods (sites x samples x genotypes), the joint calls and the per-sample
    allele counts (sites x samples x alleles) of observations ``site, allele, qual, strand, read``."""
    n_sites, n_samples = n_alleles.size, win.n_samples
    key = site * n_samples + win.sample[read]
    w = damping_weights((key * MAX_ALLELES + allele) * 2 + strand, qual)
    ll = genotype_loglik(key, allele, qual, w, np.repeat(n_alleles, n_samples), n_other)
    slot = key * MAX_ALLELES + allele
    size = n_sites * n_samples * MAX_ALLELES
    counts = np.bincount(slot, minlength=size).reshape(n_sites, n_samples, MAX_ALLELES)
    qsum = np.bincount(slot, qual, minlength=size).reshape(n_sites, n_samples, MAX_ALLELES)
    calls = call_samples(ll.reshape(n_sites, n_samples, -1), counts.sum(axis=2) > 0, ploidy == 1, qsum)
    return ll.reshape(n_sites, n_samples, -1), calls, counts


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

    def genotype(self, win: Window, realigned: dict[int, ReadAlleles], ploidy: np.ndarray,
                 only: np.ndarray | None = None) -> list[Variant]:
        """Calls from pileup observations, the ALT ones replaced by their realigned reads
        where given, at sites of the given ``ploidy`` (per candidate; 0 = not called);
        ``only`` restricts the output to these candidate indices."""
        obs = win.obs
        keep = ~(np.isin(self.s, np.fromiter(realigned, dtype=np.int64, count=len(realigned))) & (self.allele > 0))
        parts = [(self.s[keep], self.allele[keep], self.qual[keep], self.strand[keep], self.read[keep])]
        for i, found in realigned.items():
            first = _one_per_template(obs, found)
            parts.append((np.full(first.size, i), found.allele[first], found.qual[first],
                          obs.read_rev[found.read[first]].astype(np.int64), found.read[first]))
        s, allele, qual, strand, read = (np.concatenate(x) for x in zip(*parts))
        if s.size == 0:
            return []
        ll, calls, counts = _genotype(win, s, allele, qual, strand, read, self.n_alleles, 3, ploidy)
        out = []
        variant = calls.variant & (ploidy > 0)
        if only is not None:
            variant &= np.isin(np.arange(self.sites.size), only)
        by_site = np.argsort(s, kind="stable")
        bounds = np.searchsorted(s[by_site], np.arange(self.sites.size + 1))
        for i in np.flatnonzero(variant):
            p = int(self.sites[i])
            n = int(self.n_alleles[i])
            mine = by_site[bounds[i]:bounds[i + 1]]
            evidence = (allele[mine], strand[mine].astype(bool), obs.read_mapq[read[mine]])
            out.append(_record(self.ref.start + p + 1, self.ref.seq[p], ["ACGT"[b] for b in self.bases[i, 1:n]],
                               ll[i], calls.genotype[i], calls.qual[i], calls.gq[i], counts[i, :, :n], evidence,
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


def _one_per_template(obs: Observations, found: ReadAlleles) -> np.ndarray:
    """Indices into ``found`` keeping one observation per read pair (overlapping mates are one
    molecule): the best one."""
    tmpl = obs.read_tmpl[found.read]
    order = np.lexsort((-found.qual, tmpl))
    return order[np.unique(tmpl[order], return_index=True)[1]]


def _site_reads(win: Window, anchor: int, max_depth: int) -> np.ndarray:
    """Reads covering ``anchor``: each sample's first ``max_depth`` in file order."""
    obs = win.obs
    reads = np.flatnonzero((obs.read_start <= anchor) & (obs.read_end > anchor))
    sample = win.sample[reads]  # reads are stored sample by sample
    rank = np.arange(reads.size) - np.searchsorted(sample, sample)
    return reads[rank < max_depth]


def _genotype_indels(win: Window, jobs, realigned: list[ReadAlleles], params: CallParams,
                     ploidy: np.ndarray) -> list[Variant]:
    """Indel calls from the realigned per-read alleles of each candidate anchor, up to 3 ALT
    events, at anchors of the given ``ploidy`` (per job; 0 = not called). The candidate
    thresholds apply to the read pairs of all samples together (bcftools' default)."""
    obs, ref = win.obs, win.ref
    kept: list[tuple[IndelSite, list[int], int]] = []
    kept_ploidy: list[int] = []
    obs_site, obs_allele, obs_q, obs_read = [], [], [], []
    for (site, reads, _), found, copies in zip(jobs, realigned, ploidy.tolist()):
        if copies == 0:
            continue
        first = _one_per_template(obs, found)
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
        obs_read.append(read[use])
        kept.append((site, ranked, depth))
        kept_ploidy.append(copies)
    if not kept:
        return []
    s, allele, q, read = (np.concatenate(x) for x in (obs_site, obs_allele, obs_q, obs_read))
    n_alleles = np.array([len(k[1]) + 1 for k in kept])
    ll, calls, counts = _genotype(win, s, allele, q, obs.read_rev[read].astype(np.int64), read, n_alleles, 1,
                                  np.array(kept_ploidy))
    out = []
    for i in np.flatnonzero(calls.variant):
        site, ranked, depth = kept[i]
        ref_allele, alts = vcf_alleles(ref, site.anchor, [site.events[e] for e in ranked])
        mine = s == i
        idv = max(site.support[e] for e in ranked)
        extra = ("INDEL", f"IDV={idv}", f"IMF={idv / max(depth, 1):.4g}")
        evidence = (allele[mine], obs.read_rev[read[mine]].astype(bool), obs.read_mapq[read[mine]])
        out.append(_record(site.anchor + 1, ref_allele, alts, ll[i], calls.genotype[i], calls.qual[i],
                           calls.gq[i], counts[i, :, :n_alleles[i]], evidence, extra,
                           haploid=bool(kept_ploidy[i] == 1)))
    return out
