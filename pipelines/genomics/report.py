"""The variant-calling run's results in report.html: SNP/indel counts, Ti/Tv, PASS/filtered, QUAL and depth.

Reads the VCF the run wrote (with pysam); computes no call again.
"""
from __future__ import annotations

from collections import Counter

import pysam

from cloudbutton.core import storage
from cloudbutton.core.report import Section, facts, histogram, table

TRANSITIONS = frozenset({("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")})


def _kind(record: pysam.VariantRecord) -> str:
    alts = record.alts or ()
    return "SNP" if len(record.ref) == 1 and alts and all(len(a) == 1 for a in alts) else "indel"


def report(output: str) -> list[Section]:
    """Sections of a ``call`` output VCF: counts, Ti/Tv, filters and the QUAL and depth distributions."""
    kinds: Counter = Counter()
    filters: Counter = Counter()
    ti = tv = 0
    quals: list[float] = []
    depths: list[int] = []
    contigs: Counter = Counter()
    with storage.open_input(output) as path, pysam.VariantFile(path) as vcf:
        for record in vcf:
            names = tuple(record.filter.keys()) or ("PASS",)
            passing = names == ("PASS",)
            kind = _kind(record)
            kinds[(kind, passing)] += 1
            filters.update(names)
            contigs[record.contig] += 1
            if record.qual is not None:
                quals.append(record.qual)
            if "DP" in record.info:
                depths.append(int(record.info["DP"]))
            if passing and kind == "SNP":
                if (record.ref, record.alts[0]) in TRANSITIONS:
                    ti += 1
                else:
                    tv += 1
    passed = kinds[("SNP", True)] + kinds[("indel", True)]
    total = sum(kinds.values())
    summary = facts([("records", total), ("PASS", passed), ("filtered", total - passed),
                     ("PASS SNPs", kinds[("SNP", True)]), ("PASS indels", kinds[("indel", True)]),
                     ("Ti/Tv (PASS SNPs)", f"{ti / tv:.2f}" if tv else "-"), ("contigs", len(contigs))])
    counts = table(("", "SNPs", "indels"), [("PASS", kinds[("SNP", True)], kinds[("indel", True)]),
                                           ("filtered", kinds[("SNP", False)], kinds[("indel", False)])])
    by_filter = table(("FILTER", "records"), sorted(filters.items(), key=lambda kv: -kv[1]))
    plots = (histogram(quals, 40, "QUAL", "QUAL of every record")
             + histogram(depths, 40, "depth (INFO DP)", "read depth used for each call", colour="#2ca02c"))
    return [Section("Variants", summary + "<h3>SNPs and indels</h3>" + counts + "<h3>Filters</h3>" + by_filter),
            Section("QUAL and depth", plots)]
