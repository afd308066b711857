"""Unit tests of the domain algorithms against hand-derived answers."""
from __future__ import annotations

import numpy as np
import pysam

from cloudbutton.pipelines.genomics.indels import vcf_alleles
from cloudbutton.pipelines.genomics.likelihood import (GENOTYPES, call_sites, damping_weights, genotype_loglik,
                                                       phred_likelihoods)
from cloudbutton.pipelines.genomics.normalize import left_align, right_extent
from cloudbutton.pipelines.genomics.plan import plan_chunks
from cloudbutton.pipelines.genomics.realign import GAP_EXTEND, GAP_OPEN, INS_EMIT, expected_cost, glocal_costs
from cloudbutton.pipelines.genomics.reference import RefWindow

REF = RefWindow("c", 100, "GCATTTTTGCACACACAG")  # T run at 103-107, CA repeat at 108-116


def test_deletion_in_homopolymer_moves_to_run_start():
    assert left_align(REF, 106, 1, "") == (103, "")  # delete one T of TTTTT
    assert right_extent(REF, 103, 1, "") == 107


def test_insertion_in_dinucleotide_repeat_moves_left():
    pos, ins = left_align(REF, 115, 2, "CA")  # in-phase copy inside CACACACA
    assert (pos, ins) == (109, "CA")
    assert REF.base(pos - 1) == "G"  # anchor just before the repeat
    assert right_extent(REF, pos, 2, ins) > 114


def test_non_repeat_indel_is_unchanged():
    assert left_align(REF, 101, 1, "") == (101, "")


def test_damping_weights_rank_by_quality_within_group():
    w = damping_weights(np.array([0, 0, 0, 1]), np.array([20.0, 40.0, 30.0, 10.0]))
    f = [(1 - 0.17) ** k * 0.97 + 0.03 for k in range(3)]
    assert np.allclose(w, [f[2], f[0], f[1], f[0]])


def test_genotypes_follow_the_evidence():
    # site 0: 20 REF; site 1: 10 REF + 10 ALT; site 2: 20 ALT; site 3: 10 of ALT 1 + 10 of ALT 2; all Q30
    site = np.repeat([0, 1, 2, 3], 20)
    allele = np.r_[np.zeros(30), np.ones(30), np.ones(10), np.full(10, 2)].astype(np.int64)
    q = np.full(80, 30.0)
    ll = genotype_loglik(site, allele, q, np.ones(80), np.array([2, 2, 2, 3]), 3)
    calls = call_sites(ll)
    assert list(calls.variant) == [False, True, True, True]
    assert [GENOTYPES[g] for g in calls.genotype[1:]] == [(0, 1), (1, 1), (1, 2)]
    assert calls.qual[1] > 100 and calls.qual[0] < 1
    pl = phred_likelihoods(ll[3], [0, 1, 2])  # VCF order 0/0 0/1 1/1 0/2 1/2 2/2
    assert len(pl) == 6 and pl.index(0) == 4


def test_one_alt_read_does_not_make_a_second_allele():
    # 40 reads of ALT 1 and a single ALT 2 read: 1/1, not 1/2
    allele = np.r_[np.ones(40), [2]].astype(np.int64)
    ll = genotype_loglik(np.zeros(41, dtype=np.int64), allele, np.full(41, 30.0), np.ones(41), np.array([3]), 3)
    assert GENOTYPES[call_sites(ll).genotype[0]] == (1, 1)


def test_multiallelic_indel_alleles_share_one_ref():
    ref = RefWindow("c", 0, "GATTTTC")
    assert vcf_alleles(ref, 1, [(1, "T"), (-2, "")]) == ("ATT", ["ATTT", "A"])


def _cost(hap: str, read: str, start: int) -> float:
    code = {b: i for i, b in enumerate("ACGT")}
    h = np.array([code[b] for b in hap], dtype=np.uint8)
    r = np.array([code[b] for b in read], dtype=np.uint8)
    one = np.array([0])
    return float(glocal_costs(h, one, np.array([h.size]), r, np.full(r.size, 30, dtype=np.uint8), one, one,
                              np.array([r.size]), np.array([start]), np.array([6]))[0])


def test_glocal_costs_of_gaps_and_mismatches():
    hap = "ACGTTGCAAGCTTACGGATCCATGCAGTCA"
    exact = _cost(hap, hap[5:25], 5)
    assert exact < 0.1  # twenty Q30 matches
    assert abs(_cost(hap, hap[5:14] + hap[17:25], 5) - exact - (GAP_OPEN + 2 * GAP_EXTEND)) < 0.1
    inserted = _cost(hap, hap[5:14] + "GG" + hap[14:25], 5)
    assert abs(inserted - exact - (GAP_OPEN + GAP_EXTEND + 2 * INS_EMIT)) < 0.1
    mismatch = _cost(hap, hap[5:14] + ("A" if hap[14] != "A" else "C") + hap[15:25], 5)
    assert abs(mismatch - (30 + 10 * np.log10(3))) < 0.2  # -10 log10(e / 3) at Q30


def test_pairs_are_aligned_independently_of_each_other():
    """One call over pairs of different bands and haplotypes gives each pair its own cost."""
    code = {b: i for i, b in enumerate("ACGT")}
    hap_a, hap_b = "ACGTTGCAAGCTTACGGATCCATGCAGTCA", "TTTTGGGGCCCCAAAATTTTGGGGCCCCAA"
    read = hap_a[5:25]
    haps = np.array([code[b] for b in hap_a + hap_b], dtype=np.uint8)
    seq = np.array([code[b] for b in read], dtype=np.uint8)
    costs = glocal_costs(haps, np.array([0, 30]), np.array([30, 30]), seq, np.full(seq.size, 30, dtype=np.uint8),
                         np.array([0, 1, 0]), np.zeros(3, dtype=np.int64), np.array([20, 20, 20]),
                         np.array([5, 5, 5]), np.array([6, 3, 20]))
    assert costs[0] == costs[2] == _cost(hap_a, read, 5) < 0.1  # the band only limits gap lengths
    assert costs[1] > 100  # the other haplotype explains nothing


def test_expected_cost_sums_each_segment():
    qual = np.array([30, 20, 10, 40, 2], dtype=np.uint8)
    err = 10.0 ** (-np.clip(qual.astype(float), 7, 30) / 10.0)
    per_base = err * -10.0 * np.log10(err / 3.0)
    got = expected_cost(qual, np.array([0, 2]), np.array([3, 5]))
    assert np.allclose(got, [per_base[:3].sum(), per_base[2:].sum()])


def test_cigar_walk_gives_blocks_events_and_ends():
    """Two reads: 3S5M2I4M3D6M (soft clip, insertion, deletion) and 4M100N4M (a splice)."""
    from cloudbutton.pipelines.genomics.kernels import count_cigar, walk_cigar
    ops = np.array([[4, 3], [0, 5], [1, 2], [0, 4], [2, 3], [0, 6], [0, 4], [3, 100], [0, 4]], dtype=np.int64)
    n_ops, r_start, q_start = np.array([6, 3]), np.array([1000, 5000]), np.array([0, 20])
    n_blocks, n_events = count_cigar(ops[:, 0])
    assert (n_blocks, n_events) == (5, 2)
    blk = [np.empty(n_blocks, np.int64) for _ in range(4)]
    ev = [np.empty(n_events, np.int64) for _ in range(4)]
    end = np.empty(2, np.int64)
    walk_cigar(ops[:, 0], ops[:, 1], n_ops, r_start, q_start, *blk, *ev, end)
    ref, q, length, read = (b.tolist() for b in blk)
    assert ref == [1000, 1005, 1012, 5000, 5104] and q == [3, 10, 14, 20, 24]
    assert length == [5, 4, 6, 4, 4] and read == [0, 0, 0, 1, 1]
    assert [e.tolist() for e in ev] == [[0, 0], [1005, 1009], [2, 3], [8, -1]]
    assert end.tolist() == [1018, 5108]


def test_plan_is_contiguous_and_balanced_by_data(na12878):
    with pysam.AlignmentFile(na12878.bam) as bam, pysam.FastaFile(na12878.reference) as fa:
        chunks = [c for g in plan_chunks(na12878.bam, bam, fa, [("chr20", 9_000_000, 11_000_000)], chunks=6)
                  for c in g.chunks]
        assert chunks[0].start == 9_000_000 and chunks[-1].end == 11_000_000
        assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
        assert [c.index for c in chunks] == list(range(len(chunks)))
        counts = [bam.count("chr20", c.start, c.end) for c in chunks]
    assert len(chunks) == 6
    # reads live in 10.0-10.1 Mb only: balanced chunks give every chunk a share of them
    assert min(counts) > 0.05 * sum(counts), counts


def test_ploidy_presets_follow_sex_and_pars():
    from cloudbutton.pipelines.genomics.ploidy import Ploidy
    pos = np.array([100, 1_000_000, 3_000_000])
    male, female = Ploidy.parse("GRCh38", "M"), Ploidy.parse("GRCh38", "F")
    assert male.at("chrX", pos).tolist() == [1, 2, 1]  # the PAR1 (10 kb - 2.78 Mb) stays diploid
    assert female.at("chrX", pos).tolist() == [2, 2, 2]
    assert male.at("chrY", pos).tolist() == [1, 1, 1] and female.at("chrY", pos).tolist() == [0, 0, 0]
    assert Ploidy.parse("GRCh37", "F").at("MT", pos[:1]).tolist() == [1]
    assert Ploidy.parse("1").at("chr1", pos).tolist() == [1, 1, 1]


def test_small_regions_share_tasks(na12878):
    regions = [("chr20", 10_000_000 + k * 5000, 10_001_000 + k * 5000) for k in range(20)]
    with pysam.AlignmentFile(na12878.bam) as bam, pysam.FastaFile(na12878.reference) as fa:
        groups = plan_chunks(na12878.bam, bam, fa, regions, chunks=4)
        alone = plan_chunks(na12878.bam, bam, fa, regions[:1] + [("chr20", 10_200_000, 11_000_000)], chunks=4)
    flat = [(c.contig, c.start, c.end) for g in groups for c in g.chunks]
    assert flat == regions and [c.index for g in groups for c in g.chunks] == list(range(20))
    assert 3 <= len(groups) <= 6  # 20 one-chunk regions packed into about 4 tasks
    assert len(alone) >= 2  # a region big enough for its own task is never packed
