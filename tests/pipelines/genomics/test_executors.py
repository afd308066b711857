"""Identical VCFs (header and records) on threads, processes, lithops and spark, for any chunk count."""
from __future__ import annotations

import gzip

from cloudbutton.pipelines.genomics import call


def _text(path: str) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().splitlines()


def test_same_records_on_every_executor_and_partitioning(tmp_path, tiny):
    runs = {}
    for executor, chunks in (("threads", 1), ("threads", 5), ("processes", 3), ("lithops", 3), ("spark", 4)):
        out = str(tmp_path / f"{executor}{chunks}" / "calls.vcf.gz")
        result = call(tiny.bam, tiny.reference, out, chunks=chunks, executor=executor, workers=2, quiet=True)
        assert result.kpi["run"]["executor"] == executor
        assert [s["partitions"] for s in result.kpi["stages"]] == [chunks, 1]
        runs[(executor, chunks)] = _text(out)
    reference = runs[("threads", 1)]
    assert sum(not line.startswith("#") for line in reference) >= 30
    assert any(line.startswith("##cloudbutton_callCommand=cloudbutton genomics call ") for line in reference)
    for key, records in runs.items():
        assert records == reference, key
