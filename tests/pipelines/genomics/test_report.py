"""report.html of a variant-calling run, rendered in headless Chromium: counts, Ti/Tv, filters, histograms."""
from __future__ import annotations

from pathlib import Path

import pysam

from cloudbutton.core.cli import main

from ...browser import open_report


def test_call_report_in_browser(tiny, tmp_path: Path) -> None:
    vcf = tmp_path / "calls.vcf.gz"
    assert main(["genomics", "call", tiny.bam, "--reference", tiny.reference, "--out", str(vcf), "--chunks", "3",
                 "--quiet"]) == 0
    page = open_report(tmp_path / "report.html", tmp_path / "genomics-report.png")
    assert page.sections == ["Run", "Variants", "QUAL and depth", "Stages", "Task timeline"]
    assert page.requests == [] and page.errors == []
    assert page.svgs == 4  # stage graph, timeline, QUAL and depth histograms

    records = list(pysam.VariantFile(str(vcf)))
    passing = [r for r in records if list(r.filter.keys()) == ["PASS"]]
    snps = [r for r in passing if len(r.ref) == 1 and len(r.alts[0]) == 1]
    assert len(snps) > 10
    transitions = sum({r.ref, r.alts[0]} in ({"A", "G"}, {"C", "T"}) for r in snps)
    assert f"records\n{len(records)}" in page.text and f"PASS\n{len(passing)}" in page.text
    assert f"PASS SNPs\n{len(snps)}" in page.text and f"PASS indels\n{len(passing) - len(snps)}" in page.text
    assert f"Ti/Tv (PASS SNPs)\n{transitions / (len(snps) - transitions):.2f}" in page.text
