"""Shared genomics fixtures: the NA12878 slice (shared data) and synthetic samples made once."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from cloudbutton.pipelines.genomics.simulate import PRESETS, make_sample

REAL_SLICE = "ucsc.hg19.chr20.unittest.fasta.gz:chr20:10100001-10200000"


@dataclass(frozen=True)
class RealData:
    bam: str
    reference: str
    truth: str
    bed: str
    region: str = "chr20:10000000-10100000"


@pytest.fixture(scope="session")
def na12878(shared_data: Path) -> RealData:
    d = shared_data / "genomics"
    return RealData(bam=str(d / "NA12878_S1.chr20.10_10p1mb.bam"),
                    reference=str(d / "ucsc.hg19.chr20.unittest.fasta.gz"),
                    truth=str(d / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz"),
                    bed=str(d / "test_nist.b37_chr20_100kbp_at_10mb.bed"))


def _sample(tmp_path_factory, shared_data: Path, preset: str):
    slice_ = str(shared_data / "genomics" / REAL_SLICE)
    return make_sample(str(tmp_path_factory.mktemp(f"sim{preset}")), PRESETS[preset], reference=slice_)


@pytest.fixture(scope="session")
def sim30(tmp_path_factory, shared_data):
    """30x, 0.1-1 % error, on a real 100 kb hg19 slice."""
    return _sample(tmp_path_factory, shared_data, "30x")


@pytest.fixture(scope="session")
def sim10(tmp_path_factory, shared_data):
    """10x, 0.5-2 % error, on the same slice: the discriminating setting."""
    return _sample(tmp_path_factory, shared_data, "10x")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A 30 kb random-reference 20x sample: the smallest input exercising the whole graph."""
    spec = replace(PRESETS["30x"], length=30_000, depth=20.0, seed=7)
    return make_sample(str(tmp_path_factory.mktemp("tiny")), spec)
