"""Chunked calling equals the single-chunk run, with cuts placed where it is hardest."""
from __future__ import annotations

import re

import pysam

from cloudbutton.pipelines.genomics import call
from cloudbutton.pipelines.genomics.caller import CallParams, call_chunk


def _adversarial_cuts(sample) -> list[int]:
    """0-based cut points inside deletions, at insertion anchors and inside homopolymers."""
    cuts = set()
    with pysam.VariantFile(sample.truth) as vf:
        for rec in vf:
            p0 = rec.pos - 1
            if len(rec.ref) > len(rec.alts[0]):
                cuts.add(p0 + 1 + (len(rec.ref) - 1) // 2)  # inside the deleted bases
            elif len(rec.ref) < len(rec.alts[0]):
                cuts.update((p0, p0 + 1))  # at and just after the insertion anchor
    with pysam.FastaFile(sample.reference) as fa:
        seq = fa.fetch(sample.contig).upper()
    for m in re.finditer(r"A{7,}|C{7,}|G{7,}|T{7,}", seq):
        cuts.add((m.start() + m.end()) // 2)
    return sorted(c for c in cuts if 0 < c < sample.length)


def test_adversarial_cuts_are_record_identical(sim30):
    params = CallParams()
    whole = call_chunk(sim30.bam, sim30.reference, sim30.contig, 0, sim30.length, params)
    cuts = _adversarial_cuts(sim30)
    assert len(cuts) > 40
    bounds = [0, *cuts, sim30.length]
    pieces = [v for a, b in zip(bounds, bounds[1:])
              for v in call_chunk(sim30.bam, sim30.reference, sim30.contig, a, b, params)]
    assert len(whole) > 100
    assert pieces == whole


def test_real_data_ten_chunks_equal_one(tmp_path, na12878):
    bodies = []
    for n in (1, 10):
        out = str(tmp_path / f"n{n}.vcf.gz")
        result = call(na12878.bam, na12878.reference, out, regions=[na12878.region], chunks=n,
                      workers=2, quiet=True)
        assert result.value.chunks == n
        with pysam.VariantFile(out) as vf:
            bodies.append([str(r) for r in vf])
    assert len(bodies[0]) > 200
    assert bodies[0] == bodies[1]


def _with_extra_alignments(src_bam: str, out_bam: str, region: tuple[str, int, int]) -> str:
    """The reads of ``region`` plus supplementary, secondary and duplicate-flagged copies of some."""
    contig, start, end = region
    with pysam.AlignmentFile(src_bam) as src, pysam.AlignmentFile(out_bam + ".tmp", "wb", template=src) as dst:
        for i, read in enumerate(src.fetch(contig, start, end)):
            dst.write(read)
            if read.is_unmapped or i % 25:
                continue
            for flag in (0x800, 0x800 | 0x10, 0x100, 0x400):
                copy = pysam.AlignedSegment.fromstring(read.to_string(), src.header)
                copy.flag = (read.flag & ~0x10) | flag
                dst.write(copy)
    pysam.sort("-o", out_bam, out_bam + ".tmp")
    pysam.index(out_bam)
    return out_bam


def test_supplementary_secondary_duplicates_with_cuts_in_indels(tmp_path, na12878):
    """Mate-overlap removal and the depth cap must not depend on where the cuts fall."""
    contig, start, end = "chr20", 10_000_000, 10_013_000
    bam = _with_extra_alignments(na12878.bam, str(tmp_path / "extra.bam"), (contig, start - 2000, end + 2000))
    params = CallParams()
    whole = call_chunk(bam, na12878.reference, contig, start, end, params)
    cuts = set()
    for v in whole:
        if v.is_indel:
            cuts.update((v.pos - 1, v.pos, v.pos + 1))  # at the anchor and inside the event
    with pysam.FastaFile(na12878.reference) as fa:
        seq = fa.fetch(contig, start, end).upper()
    cuts.update(start + (m.start() + m.end()) // 2 for m in re.finditer(r"A{7,}|C{7,}|G{7,}|T{7,}", seq))
    bounds = [start, *sorted(c for c in cuts if start < c < end), end]
    assert len(bounds) > 12 and sum(v.is_indel for v in whole) >= 4
    pieces = [v for a, b in zip(bounds, bounds[1:])
              for v in call_chunk(bam, na12878.reference, contig, a, b, params)]
    assert pieces == whole
