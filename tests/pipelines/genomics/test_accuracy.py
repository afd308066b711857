"""Acceptance: F1 at QUAL >= 20 against truth, with bcftools run on the same data."""
from __future__ import annotations

import pytest

from cloudbutton.pipelines.genomics import call
from cloudbutton.pipelines.genomics.anchor import run_bcftools
from cloudbutton.pipelines.genomics.evaluate import evaluate


def _scores(tmp_path, bam, reference, truth, bed, region=None):
    ours = str(tmp_path / "ours.vcf.gz")
    call(bam, reference, ours, regions=[region] if region else None, chunks=4, workers=2, quiet=True)
    anchor = run_bcftools(bam, reference, str(tmp_path / "bcftools.vcf.gz"), region)
    return evaluate(ours, truth, reference, bed), evaluate(anchor, truth, reference, bed)


def test_na12878_confident_f1(tmp_path, na12878):
    ours, anchor = _scores(tmp_path, na12878.bam, na12878.reference, na12878.truth, na12878.bed,
                           na12878.region)
    assert ours["ALL"].tp + ours["ALL"].fn == 49  # the 49 confident truth variants
    assert ours["ALL"].f1 >= 0.98, ours["ALL"]
    assert anchor["ALL"].f1 >= 0.98  # the anchor reproduces research/genomics.md


@pytest.mark.parametrize("sample", ["sim30", "sim10"])
def test_synthetic_f1_not_below_bcftools(tmp_path, request, sample):
    s = request.getfixturevalue(sample)
    ours, anchor = _scores(tmp_path, s.bam, s.reference, s.truth, s.bed)
    assert ours["ALL"].tp > 100
    assert ours["ALL"].f1 >= anchor["ALL"].f1 - 0.01, (ours["ALL"], anchor["ALL"])
    assert ours["INDEL"].f1 >= 0.85, ours["INDEL"]
