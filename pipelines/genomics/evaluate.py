"""Exact-match small-variant evaluation (research/genomics.md section 5).

Truth and calls are normalised identically with ``bcftools norm -m-any -f REF``,
restricted to the confident BED, and matched on upper-cased (CHROM, POS, REF, ALT).
Only PASS (or unfiltered) records count, as in hap.py.
"""
from __future__ import annotations

import bisect
import os
import tempfile
from dataclasses import dataclass

import pysam
from pysam import bcftools


@dataclass(frozen=True)
class Score:
    """TP/FP/FN counts with precision, recall and F1."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was called."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when the truth is empty."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _read_bed(path: str) -> dict[str, tuple[list[int], list[int]]]:
    """BED intervals per contig as sorted (starts, ends); intervals assumed non-overlapping."""
    regions: dict[str, list[tuple[int, int]]] = {}
    with open(path) as fh:
        for line in fh:
            if line.strip() and not line.startswith(("#", "track", "browser")):
                chrom, start, end = line.split()[:3]
                regions.setdefault(chrom, []).append((int(start), int(end)))
    return {c: ([s for s, _ in sorted(iv)], [e for _, e in sorted(iv)]) for c, iv in regions.items()}


def _inside(regions, chrom: str, pos0: int) -> bool:
    starts, ends = regions.get(chrom, ([], []))
    i = bisect.bisect_right(starts, pos0) - 1
    return i >= 0 and pos0 < ends[i]


def normalized_keys(vcf: str, reference: str, min_qual: float | None, bed: str | None = None,
                    sample: str | None = None) -> dict[tuple[str, int, str, str], str]:
    """Normalised variant keys whose genotype (of ``sample``, default the first) carries an ALT
    allele -> genotype class ('het'/'hom')."""
    regions = _read_bed(bed) if bed else None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "norm.vcf")
        bcftools.norm("-m-any", "-c", "s", "-f", reference, "-o", out, vcf, catch_stdout=False)
        keys = {}
        with pysam.VariantFile(out) as vf:
            for rec in vf:
                if min_qual is not None and (rec.qual is None or rec.qual < min_qual):
                    continue
                if any(f != "PASS" for f in rec.filter.keys()):
                    continue
                gt = (rec.samples[sample] if sample else next(iter(rec.samples.values())))["GT"]
                if not gt or not any(a for a in gt if a):
                    continue
                if regions is not None and not _inside(regions, rec.chrom, rec.pos - 1):
                    continue
                zyg = "hom" if len(set(gt)) == 1 else "het"
                keys[(rec.chrom, rec.pos, rec.ref.upper(), rec.alts[0].upper())] = zyg
        return keys


def evaluate(calls: str, truth: str, reference: str, bed: str | None = None,
             min_qual: float = 20.0, sample: str | None = None) -> dict[str, Score | float]:
    """Score ``calls`` against ``truth`` (the genotypes of ``sample`` in both, default each file's
    first): ``{"SNP", "INDEL", "ALL": Score, "gt_concordance"}``."""
    got = normalized_keys(calls, reference, min_qual, bed, sample)
    want = normalized_keys(truth, reference, None, bed, sample)
    result: dict[str, Score | float] = {}
    for kind in ("SNP", "INDEL", "ALL"):
        def keep(k):
            snp = len(k[2]) == 1 and len(k[3]) == 1
            return kind == "ALL" or (kind == "SNP") == snp
        g = {k for k in got if keep(k)}
        w = {k for k in want if keep(k)}
        result[kind] = Score(tp=len(g & w), fp=len(g - w), fn=len(w - g))
    both = set(got) & set(want)
    result["gt_concordance"] = sum(got[k] == want[k] for k in both) / len(both) if both else 1.0
    return result
