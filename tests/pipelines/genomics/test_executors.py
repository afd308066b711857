"""Identical VCF records on threads, processes, lithops and spark, for any chunk count."""
from __future__ import annotations

import pysam

from cloudbutton.pipelines.genomics import call


def _records(path: str) -> list[str]:
    with pysam.VariantFile(path) as vf:
        return [str(r) for r in vf]


def test_same_records_on_every_executor_and_partitioning(tmp_path, tiny):
    runs = {}
    for executor, chunks in (("threads", 1), ("threads", 5), ("processes", 3), ("lithops", 3), ("spark", 4)):
        out = str(tmp_path / f"{executor}{chunks}.vcf.gz")
        result = call(tiny.bam, tiny.reference, out, chunks=chunks, executor=executor, workers=2, quiet=True)
        assert result.kpi["run"]["executor"] == executor
        assert [s["partitions"] for s in result.kpi["stages"]] == [chunks, 1]
        runs[(executor, chunks)] = _records(out)
    reference = runs[("threads", 1)]
    assert len(reference) >= 30
    for key, records in runs.items():
        assert records == reference, key
