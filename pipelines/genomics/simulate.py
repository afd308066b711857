"""Synthetic truth sets: a reference, planted SNPs/indels, paired reads aligned with mappy.

Deterministic by seed. Reads carry position-dependent, quality-calibrated substitution
errors (Illumina-like: quality falls along the read and an error happens with the
probability its quality states). Reads are aligned with minimap2 (``mappy``, preset
``sr``) and written as a coordinate-sorted, indexed BAM.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import mappy
import numpy as np
import pysam

from .reference import open_fasta

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_COMP = np.zeros(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN"):
    _COMP[_a] = _b


@dataclass(frozen=True)
class SampleSpec:
    """What to simulate.

    Attributes
    ----------
    length : int
        Reference length (random reference) in bp.
    depth : float
        Mean read depth over both haplotypes.
    error : (float, float)
        Substitution error rate at the first and last base of a read.
    n_snps, n_indels : int or None
        Planted variants; default one SNP per 900 bp and one indel per 4.3 kb
        (the 330 + 70 per 300 kb of research/genomics.md).
    read_length, insert_mean, insert_sd : int
        Paired-end layout.
    seed : int
        Seed of every random draw.
    """

    length: int = 200_000
    depth: float = 30.0
    error: tuple[float, float] = (0.001, 0.01)
    n_snps: int | None = None
    n_indels: int | None = None
    read_length: int = 150
    insert_mean: int = 400
    insert_sd: int = 50
    seed: int = 1


#: The two presets of the issue: easy 30x and discriminating 10x / high error.
PRESETS = {
    "30x": SampleSpec(depth=30.0, error=(0.001, 0.01), seed=1),
    "10x": SampleSpec(depth=10.0, error=(0.005, 0.02), seed=2),
}


@dataclass(frozen=True)
class Sample:
    """Paths of one generated sample."""

    reference: str
    bam: str
    truth: str
    bed: str
    contig: str
    length: int


def random_reference(length: int, rng: np.random.Generator) -> str:
    """Random sequence (41 % GC) with homopolymers every ~800 bp and STRs every ~1.5 kb."""
    p = np.array([0.295, 0.205, 0.205, 0.295])
    seq = bytearray(_BASES[rng.choice(4, size=length, p=p)].tobytes())
    for pos in rng.choice(length - 100, size=length // 800, replace=False):
        run = int(rng.integers(5, 16))
        seq[pos:pos + run] = bytes([_BASES[rng.integers(4)]]) * run
    for pos in rng.choice(length - 100, size=length // 1500, replace=False):
        unit = bytes(_BASES[rng.integers(0, 4, size=int(rng.integers(2, 5)))])
        copies = int(rng.integers(4, 13))
        seq[pos:pos + len(unit) * copies] = unit * copies
    return seq[:length].decode()


def plant_variants(ref: str, n_snps: int, n_indels: int, rng: np.random.Generator,
                   min_gap: int = 60, margin: int = 1000) -> list[tuple[int, str, str, tuple[int, int]]]:
    """Choose non-overlapping variants ``(pos0, REF, ALT, (h1, h2))``, >= ``min_gap`` apart.

    Indels are 1-15 bp, half insertions and half deletions; genotypes 0|1, 1|0 and
    1|1 in equal proportions. ``pos0`` is the 0-based position of REF's first base.
    """
    n = n_snps + n_indels
    slots = np.arange(margin, len(ref) - margin, min_gap + 16)
    pos = np.sort(rng.choice(slots, size=n, replace=False))
    kinds = rng.permutation(np.r_[np.zeros(n_snps, int), np.ones(n_indels, int)])
    genotypes = [(0, 1), (1, 0), (1, 1)]
    out = []
    for p, kind in zip(pos.tolist(), kinds.tolist()):
        gt = genotypes[int(rng.integers(3))]
        if kind == 0:
            alt = "ACGT".replace(ref[p], "")[int(rng.integers(3))] if ref[p] in "ACGT" else "A"
            out.append((p, ref[p], alt, gt))
            continue
        size = int(rng.integers(1, 16))
        if rng.random() < 0.5:
            out.append((p, ref[p:p + size + 1], ref[p], gt))
        else:
            ins = bytes(_BASES[rng.integers(0, 4, size=size)]).decode()
            out.append((p, ref[p], ref[p] + ins, gt))
    return out


def haplotype(ref: str, variants, which: int) -> str:
    """Apply the variants carried by haplotype ``which`` (0 or 1)."""
    parts, last = [], 0
    for p, r, a, gt in variants:
        if gt[which]:
            parts.append(ref[last:p])
            parts.append(a)
            last = p + len(r)
    parts.append(ref[last:])
    return "".join(parts)


def simulate_pairs(hap: str, n_pairs: int, spec: SampleSpec, rng: np.random.Generator):
    """Paired reads from one haplotype: ``(seq1, qual1, seq2, qual2)`` arrays of bytes rows."""
    h = np.frombuffer(hap.encode(), dtype=np.uint8)
    rl = spec.read_length
    frag = np.clip(np.rint(rng.normal(spec.insert_mean, spec.insert_sd, n_pairs)), rl, len(h) - 1).astype(int)
    start = (rng.random(n_pairs) * (len(h) - frag)).astype(int)
    cols = np.arange(rl)
    r1 = h[start[:, None] + cols]
    r2 = _COMP[h[(start + frag - 1)[:, None] - cols]]
    flip = rng.random(n_pairs) < 0.5
    r1[flip], r2[flip] = r2[flip].copy(), r1[flip].copy()
    reads = []
    for r in (r1, r2):
        rate = np.linspace(spec.error[0], spec.error[1], rl)
        q = np.clip(np.rint(-10 * np.log10(rate) + rng.normal(0, 2, r.shape)), 2, 41).astype(np.uint8)
        err = rng.random(r.shape) < 10.0 ** (-q.astype(float) / 10.0)
        shift = rng.integers(1, 4, size=r.shape)
        code = np.searchsorted(_BASES, r)
        code = np.where(err, (code + shift) % 4, code)
        reads.append((_BASES[code], q))
    return reads[0][0], reads[0][1], reads[1][0], reads[1][1]


def _segments(aligner: mappy.Aligner, names, s1, q1, s2, q2, header, group):
    """Align pairs with mappy; return unsorted AlignedSegments (primary hits only)."""
    out = []
    buf = mappy.ThreadBuffer()
    for name, a, qa, b, qb in zip(names, s1, q1, s2, q2):
        seqs = (a.tobytes().decode(), b.tobytes().decode())
        quals = (qa, qb)
        hits = {1: None, 2: None}
        for hit in aligner.map(seqs[0], seqs[1], buf=buf):
            if hit.is_primary and hits[hit.read_num] is None:
                hits[hit.read_num] = hit
        segs = [_segment(name, n, seqs[n - 1], quals[n - 1], hits[n], header, group) for n in (1, 2)]
        _mate(segs, hits)
        out.extend(s for s in segs if s is not None)
    return out


def _segment(name, num, seq, qual, hit, header, group):
    seg = pysam.AlignedSegment(header)
    seg.query_name = name
    seg.flag = 0x1 | (0x40 if num == 1 else 0x80)
    if hit is None:
        seg.flag |= 0x4
        seg.query_sequence, seg.query_qualities = seq, pysam.qualitystring_to_array(
            "".join(chr(33 + int(x)) for x in qual))
        return seg
    if hit.strand < 0:
        seq = bytes(_COMP[np.frombuffer(seq.encode(), np.uint8)][::-1]).decode()
        qual = qual[::-1]
        clip_l, clip_r = len(seq) - hit.q_en, hit.q_st
        seg.flag |= 0x10
    else:
        clip_l, clip_r = hit.q_st, len(seq) - hit.q_en
    cigar = ([(4, clip_l)] if clip_l else []) + [(op, ln) for ln, op in hit.cigar] + ([(4, clip_r)] if clip_r else [])
    seg.reference_id = header.get_tid(hit.ctg)
    seg.reference_start = hit.r_st
    seg.mapping_quality = hit.mapq
    seg.cigartuples = cigar
    seg.query_sequence = seq
    seg.query_qualities = pysam.qualitystring_to_array("".join(chr(33 + int(x)) for x in qual))
    seg.set_tag("NM", hit.NM)
    seg.set_tag("RG", group)
    return seg


def _mate(segs, hits) -> None:
    """Fill mate fields; an unmapped read takes its mate's position (SAM convention)."""
    a, b = segs
    ha, hb = hits[1], hits[2]
    if ha is None and hb is None:
        segs[0] = segs[1] = None
        return
    for me, mate, hme, hmate in ((a, b, ha, hb), (b, a, hb, ha)):
        if hmate is None:
            me.flag |= 0x8
        elif hme is None:
            me.reference_id, me.reference_start = mate.reference_id, mate.reference_start
        if hmate is not None:
            me.next_reference_id, me.next_reference_start = mate.reference_id, mate.reference_start
            if hmate.strand < 0:
                me.flag |= 0x20
        elif hme is not None:
            me.next_reference_id, me.next_reference_start = me.reference_id, me.reference_start
    if ha is not None and hb is not None and ha.ctg == hb.ctg and ha.strand != hb.strand:
        lo, hi = min(ha.r_st, hb.r_st), max(ha.r_en, hb.r_en)
        for s, h in ((a, ha), (b, hb)):
            s.flag |= 0x2
            s.template_length = (hi - lo) if h.r_st == lo and h.strand > 0 else -(hi - lo)


def write_truth(path: str, contig: str, length: int, ref_path: str, rows, samples: tuple[str, ...] = ("sim",)) -> None:
    """Truth VCF (bgzip + tabix) of the planted variants: ``rows`` of ``(pos0, REF, ALT, genotypes)``
    with one phased genotype per sample."""
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={contig},length={length}>",
             f"##reference=file://{os.path.abspath(ref_path)}",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples])]
    for p, r, a, gts in rows:
        lines.append("\t".join([contig, str(p + 1), ".", r, a, ".", "PASS", ".", "GT",
                                *(f"{gt[0]}|{gt[1]}" for gt in gts)]))
    plain = path[:-3]
    with open(plain, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)
    pysam.tabix_index(path, preset="vcf", force=True)


def make_sample(out_dir: str, spec: SampleSpec = PRESETS["30x"], *, name: str = "sim",
                reference: str | None = None, threads: int = 2) -> Sample:
    """Generate reference, truth VCF + BED, and an aligned sorted indexed BAM in ``out_dir``.

    Parameters
    ----------
    out_dir : str
        Output folder (created).
    spec : SampleSpec
        What to simulate.
    name : str
        File name stem.
    reference : str, optional
        ``FASTA:CONTIG:START-END`` (1-based, inclusive) to take a real slice instead of a
        random sequence; the slice becomes a contig of its own.
    threads : int
        mappy threads.
    """
    rng = np.random.default_rng(spec.seed)
    ref, contig, ref_path, bed = _reference(out_dir, name, spec, rng, reference)
    variants = plant_variants(ref, *_variant_counts(spec, len(ref)), rng)
    truth = os.path.join(out_dir, f"{name}.truth.vcf.gz")
    write_truth(truth, contig, len(ref), ref_path, [(p, r, a, (gt,)) for p, r, a, gt in variants])
    bam = os.path.join(out_dir, f"{name}.bam")
    _aligned_bam(bam, ref, ref_path, contig, variants, spec, rng, threads, "sim")
    return Sample(reference=ref_path, bam=bam, truth=truth, bed=bed, contig=contig, length=len(ref))


@dataclass(frozen=True)
class Cohort:
    """Paths of a generated cohort: one BAM per sample (read group and SM = the sample name),
    one truth VCF with a column per sample."""

    reference: str
    bams: tuple[str, ...]
    samples: tuple[str, ...]
    truth: str
    bed: str
    contig: str
    length: int


def make_cohort(out_dir: str, spec: SampleSpec, depths: tuple[float, ...] = (30.0, 20.0, 10.0), *,
                shared: float = 0.4, reference: str | None = None, threads: int = 2) -> Cohort:
    """Several samples on one reference with known genotypes: a fraction ``shared`` of the planted
    variants is carried by every sample, each other one by a single sample; every carrier draws
    its own genotype (0|1, 1|0 or 1|1). Sample ``k`` is read at ``depths[k]`` (``spec.depth`` unused).
    """
    rng = np.random.default_rng(spec.seed)
    ref, contig, ref_path, bed = _reference(out_dir, "cohort", spec, rng, reference)
    pool = plant_variants(ref, *_variant_counts(spec, len(ref)), rng)
    n = len(depths)
    samples = tuple(f"s{k + 1}" for k in range(n))
    genotypes = [(0, 1), (1, 0), (1, 1)]
    rows = []
    for p, r, a, _ in pool:
        carriers = range(n) if rng.random() < shared else [int(rng.integers(n))]
        gts = [(0, 0)] * n
        for k in carriers:
            gts[k] = genotypes[int(rng.integers(3))]
        rows.append((p, r, a, tuple(gts)))
    truth = os.path.join(out_dir, "cohort.truth.vcf.gz")
    write_truth(truth, contig, len(ref), ref_path, rows, samples)
    bams = []
    for k, (sample, depth) in enumerate(zip(samples, depths)):
        mine = [(p, r, a, gts[k]) for p, r, a, gts in rows if any(gts[k])]
        bams.append(os.path.join(out_dir, f"{sample}.bam"))
        _aligned_bam(bams[-1], ref, ref_path, contig, mine, replace(spec, depth=depth), rng, threads, sample)
    return Cohort(reference=ref_path, bams=tuple(bams), samples=samples, truth=truth, bed=bed, contig=contig,
                  length=len(ref))


def _variant_counts(spec: SampleSpec, length: int) -> tuple[int, int]:
    """SNPs and indels to plant on ``length`` bp."""
    return (spec.n_snps if spec.n_snps is not None else length // 900,
            spec.n_indels if spec.n_indels is not None else length // 4300)


def _reference(out_dir: str, name: str, spec: SampleSpec, rng: np.random.Generator,
               reference: str | None) -> tuple[str, str, str, str]:
    """Write the reference FASTA (+ .fai) and the confident BED; (sequence, contig, FASTA, BED)."""
    os.makedirs(out_dir, exist_ok=True)
    contig = "sim"
    if reference:
        fasta, contig, region = reference.rsplit(":", 2)
        start, end = (int(x) for x in region.replace(",", "").split("-"))
        with open_fasta(fasta) as fa:
            ref = fa.fetch(contig, start - 1, end).upper()
        contig = f"{contig}_{start}"
    else:
        ref = random_reference(spec.length, rng)
    length = len(ref)
    ref_path = os.path.join(out_dir, f"{name}.fa")
    with open(ref_path, "w") as fh:
        fh.write(f">{contig}\n")
        fh.writelines(ref[i:i + 60] + "\n" for i in range(0, length, 60))
    pysam.faidx(ref_path)
    bed = os.path.join(out_dir, f"{name}.bed")
    with open(bed, "w") as fh:
        fh.write(f"{contig}\t1000\t{length - 1000}\n")
    return ref, contig, ref_path, bed


def _aligned_bam(bam: str, ref: str, ref_path: str, contig: str, variants, spec: SampleSpec,
                 rng: np.random.Generator, threads: int, sample: str) -> None:
    """Paired reads of both haplotypes carrying ``variants``, aligned with mappy, as a sorted indexed
    BAM whose read group (ID and SM) is ``sample``."""
    length = len(ref)
    header = pysam.AlignmentHeader.from_dict({
        "HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": contig, "LN": length}],
        "RG": [{"ID": sample, "SM": sample}]})
    aligner = mappy.Aligner(ref_path, preset="sr")
    n_pairs = int(round(spec.depth * length / (2 * spec.read_length) / 2))
    batches = []
    for which in (0, 1):
        s1, q1, s2, q2 = simulate_pairs(haplotype(ref, variants, which), n_pairs, spec, rng)
        names = [f"h{which}_{i}" for i in range(n_pairs)]
        step = max(1, -(-n_pairs // threads))
        for lo in range(0, n_pairs, step):
            sl = slice(lo, lo + step)
            batches.append((names[sl], s1[sl], q1[sl], s2[sl], q2[sl]))
    with ThreadPoolExecutor(threads) as pool:
        segs = [s for part in pool.map(lambda b: _segments(aligner, *b, header, sample), batches) for s in part]
    segs.sort(key=lambda s: (s.reference_id if s.reference_id >= 0 else 1 << 30, s.reference_start,
                             s.query_name, s.flag))
    with pysam.AlignmentFile(bam, "wb", header=header) as out:
        for s in segs:
            out.write(s)
    pysam.index(bam)
