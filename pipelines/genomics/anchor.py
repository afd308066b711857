"""The single-machine anchor: ``bcftools mpileup | bcftools call -mv`` through pysam."""
from __future__ import annotations

import os
from collections.abc import Sequence

from pysam import bcftools


def run_bcftools(bam: str | Sequence[str], reference: str, out: str, region: str | None = None) -> str:
    """Call ``bam`` (one file, or several jointly) with bcftools' defaults into bgzip VCF ``out``;
    returns ``out``."""
    bams = [bam] if isinstance(bam, str) else list(bam)
    pileup = out + ".mpileup.bcf"
    region_args = ["-r", region] if region else []
    try:
        bcftools.mpileup("-f", reference, *region_args, "-a", "AD,DP", "-Ou", "-o", pileup, *bams,
                         catch_stdout=False)
        bcftools.call("-mv", "-Oz", "-o", out, pileup, catch_stdout=False)
    finally:
        if os.path.exists(pileup):
            os.remove(pileup)
    return out
