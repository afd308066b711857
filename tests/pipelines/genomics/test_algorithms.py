"""Unit tests of the domain algorithms against hand-derived answers."""
from __future__ import annotations

import numpy as np
import pysam

from cloudbutton.pipelines.genomics.likelihood import call_sites, damping_weights, genotype_loglik
from cloudbutton.pipelines.genomics.normalize import left_align, right_extent
from cloudbutton.pipelines.genomics.plan import plan_chunks
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
    # site 0: 20 REF; site 1: 10 REF + 10 ALT; site 2: 20 ALT; all Q30
    site = np.repeat([0, 1, 2], 20)
    alt = np.r_[np.zeros(20), np.zeros(10), np.ones(10), np.ones(20)].astype(bool)
    q = np.full(60, 30.0)
    calls = call_sites(genotype_loglik(site, alt, q, np.ones(60), 3, 3))
    assert list(calls.variant) == [False, True, True]
    assert list(calls.genotype[1:]) == [1, 2]
    assert calls.qual[1] > 100 and calls.qual[0] < 1
    assert calls.pl[1].tolist().index(0) == 1 and calls.pl[2].tolist().index(0) == 2


def test_plan_is_contiguous_and_balanced_by_data(na12878):
    with pysam.AlignmentFile(na12878.bam) as bam, pysam.FastaFile(na12878.reference) as fa:
        chunks = plan_chunks(na12878.bam, bam, fa, [("chr20", 9_000_000, 11_000_000)], chunks=6)
        assert chunks[0].start == 9_000_000 and chunks[-1].end == 11_000_000
        assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
        assert [c.index for c in chunks] == list(range(len(chunks)))
        counts = [bam.count("chr20", c.start, c.end) for c in chunks]
    assert len(chunks) == 6
    # reads live in 10.0-10.1 Mb only: balanced chunks give every chunk a share of them
    assert min(counts) > 0.05 * sum(counts), counts
