"""Acceptance: F1 at QUAL >= 20 against truth, with bcftools run on the same data."""
from __future__ import annotations

import pysam
import pytest

from cloudbutton.pipelines.genomics import call
from cloudbutton.pipelines.genomics.anchor import run_bcftools
from cloudbutton.pipelines.genomics.evaluate import evaluate


def _scores(tmp_path, bam, reference, truth, beds, region=None):
    """Our and bcftools' scores inside each BED of ``beds`` (None: everywhere)."""
    ours = str(tmp_path / "ours.vcf.gz")
    call(bam, reference, ours, regions=[region] if region else None, chunks=4, workers=2, quiet=True)
    anchor = run_bcftools(bam, reference, str(tmp_path / "bcftools.vcf.gz"), region)
    return [(evaluate(ours, truth, reference, bed), evaluate(anchor, truth, reference, bed)) for bed in beds]


def test_na12878_whole_slice_not_below_bcftools(tmp_path, na12878):
    """Inside the confident BED and over the whole slice (QUAL >= 20, PASS), bcftools run alongside."""
    (ours, anchor), (ours_bed, anchor_bed) = _scores(tmp_path, na12878.bam, na12878.reference, na12878.truth,
                                                     [None, na12878.bed], na12878.region)
    assert ours_bed["ALL"].tp + ours_bed["ALL"].fn == 49  # the 49 confident truth variants
    assert ours_bed["ALL"].f1 == 1.0, ours_bed["ALL"]
    assert anchor_bed["ALL"].f1 >= 0.98  # the anchor reproduces research/genomics.md
    assert ours["SNP"].f1 >= anchor["SNP"].f1 - 0.005, (ours["SNP"], anchor["SNP"])
    assert ours["INDEL"].f1 >= anchor["INDEL"].f1, (ours["INDEL"], anchor["INDEL"])
    assert ours["gt_concordance"] >= anchor["gt_concordance"] - 0.01
    kinds = {}
    with pysam.VariantFile(str(tmp_path / "ours.vcf.gz")) as vf:
        for rec in vf:
            kind = "indel" if any(len(a) != len(rec.ref) for a in rec.alts) else "snp"
            kinds.setdefault((rec.pos, kind), []).append(rec)
            if rec.pos == 10002458 and kind == "indel":
                assert len(rec.alts) == 2 and rec.samples[0]["GT"] == (1, 2)
                assert len(rec.samples[0]["PL"]) == 6 and len(rec.samples[0]["AD"]) == 3
    assert all(len(recs) == 1 for recs in kinds.values())  # one SNP and one indel record per position
    assert (10002458, "indel") in kinds


@pytest.mark.parametrize("sample", ["sim30", "sim10"])
def test_synthetic_f1_not_below_bcftools(tmp_path, request, sample):
    s = request.getfixturevalue(sample)
    [(ours, anchor)] = _scores(tmp_path, s.bam, s.reference, s.truth, [s.bed])
    assert ours["ALL"].tp > 100
    assert ours["ALL"].f1 >= anchor["ALL"].f1 - 0.01, (ours["ALL"], anchor["ALL"])
    assert ours["INDEL"].f1 >= 0.85, ours["INDEL"]
