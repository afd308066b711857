"""Variant calling from s3:// (real S3 server, Lithops minio storage): BAM/CRAM, index and reference read by
ranged requests through the core's gateway, VCF written to s3:// atomically, records equal to the local run."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pysam
import pytest

from cloudbutton.core import storage
from cloudbutton.core.cli import main


def _records(path: str | Path) -> list[str]:
    with pysam.VariantFile(str(path)) as vf:
        return [str(r) for r in vf]


def _upload_with_sidecars(s3_server, path: str, key: str, sidecars: tuple[str, ...]) -> str:
    for suffix in sidecars:
        if os.path.exists(path + suffix):
            s3_server.upload(path + suffix, key + suffix)
    return s3_server.upload(path, key)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh local cache, so copies of index files made by another test are not reused."""
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("executor", ["threads", "processes", "lithops"])
def test_call_from_s3_equals_the_local_call(s3_server, tiny, tmp_path, own_cache, executor):
    prefix = f"gen-{uuid.uuid4().hex[:8]}/"
    bam = _upload_with_sidecars(s3_server, tiny.bam, prefix + "in/x.bam", (".bai",))
    ref = _upload_with_sidecars(s3_server, tiny.reference, prefix + "in/" + Path(tiny.reference).name, (".fai", ".gzi"))
    common = ["--chunks", "3", "--workers", "2", "--quiet"]
    assert main(["genomics", "call", tiny.bam, "--reference", tiny.reference, "--out",
                 str(tmp_path / "local.vcf.gz"), *common]) == 0
    out = s3_server.uri(prefix + "out/calls.vcf.gz")
    try:
        assert main(["genomics", "call", bam, "--reference", ref, "--out", out, "--executor", executor,
                     "--lithops-config", str(s3_server.config_file), *common]) == 0
    finally:
        storage.configure(None)
    remote = s3_server.download(prefix + "out/calls.vcf.gz", tmp_path / "remote.vcf.gz")
    local = _records(tmp_path / "local.vcf.gz")
    assert len(local) >= 20 and _records(remote) == local
    assert not any(".tmp-" in key for key in s3_server.keys(prefix))  # published atomically
    assert not (tmp_path / "cache" / "indexes").exists()  # the index beside the object was used


def test_a_region_is_read_by_byte_ranges_of_the_bam(s3_server, na12878, own_cache):
    """Opening the NA12878 slice on s3:// and reading 10 kb of its 100 kb fetches a fraction of the object."""
    from cloudbutton.pipelines.genomics.sources import open_alignment, open_reference

    prefix = f"gen-ranges-{uuid.uuid4().hex[:8]}/"
    bam = _upload_with_sidecars(s3_server, na12878.bam, prefix + "x.bam", (".bai",))
    ref = _upload_with_sidecars(s3_server, na12878.reference, prefix + "ref.fa.gz", (".fai", ".gzi"))
    storage.configure(s3_server.lithops_config)
    try:
        storage.settle()
        before = storage.remote_bytes()[0]
        with open_alignment(bam, ref) as aln:
            reads = sum(1 for _ in aln.fetch("chr20", 10_050_000, 10_060_000))
        storage.settle()
        fetched = storage.remote_bytes()[0] - before
        with open_reference(ref) as fasta:
            assert fasta.fetch("chr20", 10_050_000, 10_050_010).upper() == pysam.FastaFile(
                na12878.reference).fetch("chr20", 10_050_000, 10_050_010).upper()
    finally:
        storage.configure(None)
    with pysam.AlignmentFile(na12878.bam) as local:
        assert reads == sum(1 for _ in local.fetch("chr20", 10_050_000, 10_050_000 + 10_000)) > 1000
    assert 0 < fetched < 0.5 * os.path.getsize(na12878.bam)


def test_call_tasks_count_their_ranged_reads(s3_server, tiny, tmp_path, own_cache):
    """On Lithops every call task's reads of the BAM and FASTA go through the gateway and are counted to it."""
    prefix = f"gen-kpi-{uuid.uuid4().hex[:8]}/"
    bam = _upload_with_sidecars(s3_server, tiny.bam, prefix + "x.bam", (".bai",))
    ref = _upload_with_sidecars(s3_server, tiny.reference, prefix + Path(tiny.reference).name, (".fai", ".gzi"))
    kpi = tmp_path / "kpi.json"
    try:
        assert main(["genomics", "call", bam, "--reference", ref, "--out", str(tmp_path / "calls.vcf.gz"),
                     "--chunks", "4", "--workers", "2", "--quiet", "--executor", "lithops",
                     "--lithops-config", str(s3_server.config_file), "--kpi", str(kpi)]) == 0
    finally:
        storage.configure(None)
    tasks = [t for t in json.loads(kpi.read_text())["tasks"] if t["stage"] == "call" and not t.get("error")]
    assert len(tasks) == 4
    assert all(t["requests"]["get"] >= 1 and t["requests"]["head"] >= 1 and t["bytes_read"] > 0 for t in tasks)


def test_cram_from_s3_with_its_reference_on_s3(s3_server, tiny, tmp_path, own_cache, monkeypatch):
    prefix = f"gen-cram-{uuid.uuid4().hex[:8]}/"
    cram = str(tmp_path / "x.cram")
    pysam.view("-C", "-T", tiny.reference, "-o", cram, tiny.bam, catch_stdout=False)
    pysam.index(cram)
    remote_cram = _upload_with_sidecars(s3_server, cram, prefix + "x.cram", (".crai",))
    ref = _upload_with_sidecars(s3_server, tiny.reference, prefix + Path(tiny.reference).name, (".fai", ".gzi"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # htslib must not drop downloaded index files into the working folder
    assert main(["genomics", "call", tiny.bam, "--reference", tiny.reference, "--out",
                 str(tmp_path / "local.vcf.gz"), "--quiet"]) == 0
    try:
        assert main(["genomics", "call", remote_cram, "--reference", ref, "--out", str(tmp_path / "cram.vcf.gz"),
                     "--quiet", "--lithops-config", str(s3_server.config_file)]) == 0
    finally:
        storage.configure(None)
    assert _records(tmp_path / "cram.vcf.gz") == _records(tmp_path / "local.vcf.gz")
    assert not os.listdir(work)


def test_unindexed_bam_on_s3_is_indexed_into_the_cache(s3_server, tiny, tmp_path, own_cache):
    """The index is built once, kept in the local cache and in Lithops's bucket, where workers read it."""
    prefix = f"gen-noindex-{uuid.uuid4().hex[:8]}/"
    bam = s3_server.upload(tiny.bam, prefix + "x.bam")  # no .bai beside it
    ref = _upload_with_sidecars(s3_server, tiny.reference, prefix + Path(tiny.reference).name, (".fai", ".gzi"))
    cached_before = set(s3_server.keys("cloudbutton-cache/indexes/"))
    try:
        assert main(["genomics", "call", bam, "--reference", ref, "--out", str(tmp_path / "calls.vcf.gz"),
                     "--chunks", "2", "--quiet", "--executor", "lithops",
                     "--lithops-config", str(s3_server.config_file)]) == 0
    finally:
        storage.configure(None)
    assert s3_server.keys(prefix + "x.bam") == [prefix + "x.bam"]  # nothing written beside the user's object
    assert len(os.listdir(tmp_path / "cache" / "indexes")) == 1
    assert len(set(s3_server.keys("cloudbutton-cache/indexes/")) - cached_before) == 1
    assert len(_records(tmp_path / "calls.vcf.gz")) >= 20


def test_missing_object_and_unindexed_reference_are_one_line_errors(s3_server, tiny, tmp_path, own_cache, capsys):
    prefix = f"gen-bad-{uuid.uuid4().hex[:8]}/"
    bam = _upload_with_sidecars(s3_server, tiny.bam, prefix + "x.bam", (".bai",))
    ref = _upload_with_sidecars(s3_server, tiny.reference, prefix + Path(tiny.reference).name, (".fai", ".gzi"))
    bare_ref = s3_server.upload(tiny.reference, prefix + "bare/" + Path(tiny.reference).name)  # no .fai
    try:
        assert main(["genomics", "call", s3_server.uri(prefix + "absent.bam"), "--reference", ref, "--out",
                     str(tmp_path / "a.vcf.gz"), "--lithops-config", str(s3_server.config_file)]) == 2
        assert main(["genomics", "call", bam, "--reference", bare_ref, "--out", str(tmp_path / "b.vcf.gz"),
                     "--lithops-config", str(s3_server.config_file)]) == 2
    finally:
        storage.configure(None)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 2
    assert "absent.bam" in errors[0] and "not found" in errors[0]
    assert bare_ref in errors[1] and "fai" in errors[1]


def test_cohort_of_bams_on_s3_equals_the_local_joint_call(s3_server, tmp_path, own_cache):
    """Two samples' BAMs on s3:// called jointly on Lithops give the local joint call's records."""
    from dataclasses import replace

    from cloudbutton.pipelines.genomics.simulate import PRESETS, make_cohort

    cohort = make_cohort(str(tmp_path / "cohort"), replace(PRESETS["30x"], length=20_000, seed=5), (12.0, 8.0))
    prefix = f"gen-cohort-{uuid.uuid4().hex[:8]}/"
    bams = [_upload_with_sidecars(s3_server, bam, f"{prefix}{Path(bam).name}", (".bai",)) for bam in cohort.bams]
    ref = _upload_with_sidecars(s3_server, cohort.reference, prefix + Path(cohort.reference).name, (".fai", ".gzi"))
    assert main(["genomics", "call", *cohort.bams, "--reference", cohort.reference, "--out",
                 str(tmp_path / "local.vcf.gz"), "--chunks", "2", "--quiet"]) == 0
    try:
        assert main(["genomics", "call", *bams, "--reference", ref, "--out", str(tmp_path / "remote.vcf.gz"),
                     "--chunks", "2", "--workers", "2", "--quiet", "--executor", "lithops",
                     "--lithops-config", str(s3_server.config_file)]) == 0
    finally:
        storage.configure(None)
    local = _records(tmp_path / "local.vcf.gz")
    assert len(local) >= 10 and _records(tmp_path / "remote.vcf.gz") == local
    with pysam.VariantFile(str(tmp_path / "remote.vcf.gz")) as vcf:
        assert list(vcf.header.samples) == list(cohort.samples)
