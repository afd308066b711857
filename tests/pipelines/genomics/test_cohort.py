"""Cohorts: several BAMs called jointly into one multi-sample VCF (bcftools ``mpileup a b c | call -m``)."""
from __future__ import annotations

import gzip
from dataclasses import replace

import numpy as np
import pysam
import pytest

from cloudbutton.core.cli import main
from cloudbutton.pipelines.genomics import call
from cloudbutton.pipelines.genomics.anchor import run_bcftools
from cloudbutton.pipelines.genomics.evaluate import Score, evaluate, normalized_keys
from cloudbutton.pipelines.genomics.likelihood import (call_samples, call_sites, damping_weights, genotype_loglik,
                                                        segregation_bias)
from cloudbutton.pipelines.genomics.simulate import PRESETS, make_cohort

from .conftest import REAL_SLICE


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, shared_data):
    """Three samples at 12x, 8x and 5x (0.5-2 % error) on the real 100 kb slice: 40 % of the
    planted variants shared by all, the rest private to one sample."""
    slice_ = str(shared_data / "genomics" / REAL_SLICE)
    return make_cohort(str(tmp_path_factory.mktemp("cohort")), replace(PRESETS["10x"], seed=11), (12.0, 8.0, 5.0),
                       reference=slice_)


@pytest.fixture(scope="module")
def joint(tmp_path_factory, cohort):
    out = str(tmp_path_factory.mktemp("joint") / "joint.vcf.gz")
    call(list(cohort.bams), cohort.reference, out, chunks=4, workers=2, quiet=True)
    return out


def _body(path: str) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line for line in fh if not line.startswith("#")]


def _pooled(vcf: str, cohort) -> dict[str, Score]:
    """SNP, INDEL and ALL scores summed over the samples (each sample's genotypes against its truth)."""
    total = {kind: [0, 0, 0] for kind in ("SNP", "INDEL", "ALL")}
    for sample in cohort.samples:
        found = evaluate(vcf, cohort.truth, cohort.reference, cohort.bed, sample=sample)
        for kind, counts in total.items():
            counts[0] += found[kind].tp
            counts[1] += found[kind].fp
            counts[2] += found[kind].fn
    return {kind: Score(*counts) for kind, counts in total.items()}


def _sites(vcf: str, cohort, min_qual: float | None) -> set:
    """Normalised variant keys carried by any sample."""
    return {k for s in cohort.samples for k in normalized_keys(vcf, cohort.reference, min_qual, cohort.bed, s)}


def test_joint_call_not_below_bcftools(tmp_path, cohort, joint):
    with pysam.VariantFile(joint) as vf:
        assert list(vf.header.samples) == list(cohort.samples)
    anchor = run_bcftools(list(cohort.bams), cohort.reference, str(tmp_path / "bcftools.vcf.gz"))
    ours, theirs = _pooled(joint, cohort), _pooled(anchor, cohort)
    assert ours["ALL"].tp > 150
    assert ours["SNP"].f1 >= theirs["SNP"].f1 - 0.005, (ours["SNP"], theirs["SNP"])
    assert ours["ALL"].f1 >= theirs["ALL"].f1, (ours["ALL"], theirs["ALL"])
    truth = _sites(cohort.truth, cohort, None)
    site_ours, site_theirs = _sites(joint, cohort, 20.0), _sites(anchor, cohort, 20.0)
    f1 = [Score(len(s & truth), len(s - truth), len(truth - s)).f1 for s in (site_ours, site_theirs)]
    assert f1[0] >= f1[1] - 0.005, f1
    assert len(site_ours & site_theirs) >= 0.95 * len(site_theirs)


def test_samples_without_alt_reads_are_hom_ref_and_without_reads_no_call(tmp_path, cohort):
    empty = str(tmp_path / "empty.bam")
    with pysam.AlignmentFile(cohort.bams[0]) as src:
        header = src.header.to_dict()
    header["RG"] = [{"ID": "e", "SM": "empty"}]
    with pysam.AlignmentFile(empty, "wb", header=header):
        pass
    pysam.index(empty)
    out = str(tmp_path / "two.vcf.gz")
    region = f"{cohort.contig}:20001-40000"
    call([cohort.bams[2], empty], cohort.reference, out, regions=[region], chunks=2, quiet=True)
    with pysam.VariantFile(out) as vf:
        records = list(vf)
    assert records
    for rec in records:
        assert rec.samples["empty"]["GT"] == (None, None) and rec.samples["empty"]["DP"] == 0
    with pysam.VariantFile(cohort.truth) as vf:
        private = {r.pos for r in vf.fetch(cohort.contig, 20000, 40000)
                   if all(len(a) == 1 for a in (r.ref, *r.alts)) and any(r.samples["s1"]["GT"])
                   and not any(r.samples["s3"]["GT"])}
    shared = str(tmp_path / "shared.vcf.gz")
    call(list(cohort.bams), cohort.reference, shared, regions=[region], chunks=2, quiet=True)
    with pysam.VariantFile(shared) as vf:
        s3_at_private = [r.samples["s3"] for r in vf if r.pos in private]
    # s3 has no ALT read at most of s1's private SNPs: its REF reads make it 0/0 there
    ref_only = [s["GT"] for s in s3_at_private if s["DP"] > 0 and sum(s["AD"][1:]) == 0]
    assert len(ref_only) >= 0.7 * len(private) > 0 and all(gt == (0, 0) for gt in ref_only)


def test_any_chunking_and_executor_give_the_same_records(tmp_path, cohort, joint):
    one = str(tmp_path / "one.vcf.gz")
    call(list(cohort.bams), cohort.reference, one, chunks=1, quiet=True)
    many = str(tmp_path / "many.vcf.gz")
    call(list(cohort.bams), cohort.reference, many, chunks=9, executor="processes", workers=2, quiet=True)
    assert _body(one) == _body(many) == _body(joint)


def test_one_file_of_several_samples_equals_their_files(tmp_path, cohort, joint):
    merged = str(tmp_path / "merged.bam")
    pysam.merge("-f", merged, *cohort.bams)
    pysam.index(merged)
    out = str(tmp_path / "merged.vcf.gz")
    call(merged, cohort.reference, out, chunks=4, workers=2, quiet=True)
    assert _body(out) == _body(joint)


def test_gvcf_blocks_cover_every_base_once(tmp_path, cohort):
    start, end = 30_001, 60_000
    bodies = []
    for chunks in (1, 5):
        out = str(tmp_path / f"g{chunks}.vcf.gz")
        code = main(["genomics", "call", *cohort.bams, "--reference", cohort.reference, "--out", out, "--gvcf",
                     "--region", f"{cohort.contig}:{start}-{end}", "--chunks", str(chunks), "--quiet"])
        assert code == 0
        bodies.append(_body(out))
    assert bodies[0] == bodies[1]
    in_block = np.zeros(end + 2, dtype=np.int64)
    in_record = np.zeros(end + 2, dtype=bool)
    blocks = 0
    with pysam.VariantFile(str(tmp_path / "g5.vcf.gz")) as vf:
        for rec in vf:
            if rec.alts == ("<*>",):
                in_block[rec.pos:rec.stop + 1] += 1
                blocks += 1
                assert all(rec.samples[s]["GT"] in ((0, 0), (None, None)) for s in cohort.samples)
            else:
                in_record[rec.pos:min(rec.stop, end) + 1] = True
    assert blocks > 10 and in_record.any()
    # every base of the region lies in exactly one block or in a record's REF span, never both
    assert (in_block[start:end + 1] + in_record[start:end + 1] == 1).all()
    assert in_block[:start].sum() == 0 and in_block[end + 1:].sum() == 0


def _sample_loglik(n_ref: int, n_alt: int, qual: float = 20.0) -> np.ndarray:
    allele = np.r_[np.zeros(n_ref, dtype=np.int64), np.ones(n_alt, dtype=np.int64)]
    q = np.full(allele.size, qual)
    w = damping_weights(allele * 2 + np.arange(allele.size) % 2, q)
    return genotype_loglik(np.zeros(allele.size, dtype=np.int64), allele, q, w, np.array([2]), 3)[0]


def test_joint_model_pools_weak_evidence_and_leaves_unobserved_samples_uncalled():
    weak = _sample_loglik(8, 2)
    assert not call_sites(weak[None]).variant[0]  # 2 ALT reads of 10 at Q20: not a call alone
    qsum = np.array([[[160.0, 40.0, 0, 0]] * 3])
    three = call_samples(np.stack([weak] * 3)[None], np.ones((1, 3), dtype=bool), np.zeros(1, dtype=bool), qsum)
    assert three.variant[0] and three.qual[0] > 10 and (three.genotype[0] == 1).all()  # 0/1 in each
    lls = np.stack([_sample_loglik(0, 6), _sample_loglik(8, 0), np.zeros(10)])[None]
    lls[..., 3:] = -np.inf  # two alleles
    mixed = call_samples(lls, np.array([[True, True, False]]), np.zeros(1, dtype=bool),
                         np.array([[[0, 120.0, 0, 0], [160.0, 0, 0, 0], [0, 0, 0, 0]]]))
    assert mixed.variant[0] and mixed.genotype[0].tolist() == [2, 0, -1]  # 1/1, 0/0, no call


@pytest.mark.parametrize("alt, depth, expected", [
    # bcftools 1.x SGB of three-sample records (its DP4 and per-sample ALT reads) on a simulated cohort
    ((8, 5, 7), 21, -1.83007), ((3, 2, 2), 19, -10.1511), ((12, 0, 0), 27, 11.1756), ((0, 3, 0), 30, 1.36431),
])
def test_segregation_bias_matches_bcftools(alt, depth, expected):
    assert segregation_bias(np.array(alt), depth) == pytest.approx(expected, abs=1e-4)


def test_records_carry_sgb(joint):
    with pysam.VariantFile(joint) as vf:
        records = list(vf)
    assert all("SGB" in rec.info for rec in records)
    real = [rec.info["SGB"] for rec in records if rec.qual >= 100]
    assert real and np.median(real) > -5  # real variants segregate: ALT reads concentrated in carriers
