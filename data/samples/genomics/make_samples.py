"""Generate the genomics sample sets into ``generated/`` (git-ignored; deterministic by seed).

Usage: ``python data/samples/genomics/make_samples.py [--reference FASTA:CONTIG:START-END] [--length BP]``

Writes ``generated/30x/`` (30x, 0.1-1 % error) and ``generated/10x/`` (10x, 0.5-2 % error):
reference FASTA, truth VCF (planted SNPs and 1-15 bp indels with known genotypes),
confident BED and a sorted, indexed BAM of mappy-aligned paired reads; and ``generated/cohort/``:
three samples (12x, 8x, 5x, 0.5-2 % error) sharing 40 % of their variants, one BAM each and one
truth VCF with a column per sample (``cloudbutton genomics call s1.bam s2.bam s3.bam ...``).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from cloudbutton.pipelines.genomics.simulate import PRESETS, make_cohort, make_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="real slice FASTA:CONTIG:START-END instead of a random reference")
    parser.add_argument("--length", type=int, default=200_000, help="random reference length (bp)")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / "generated"
    for name, spec in PRESETS.items():
        sample = make_sample(str(out / name), replace(spec, length=args.length), reference=args.reference)
        print(f"{name}: {sample.bam} ({sample.length:,} bp, truth {sample.truth})")
    cohort = make_cohort(str(out / "cohort"), replace(PRESETS["10x"], length=args.length), (12.0, 8.0, 5.0),
                         reference=args.reference)
    print(f"cohort: {' '.join(cohort.bams)} ({cohort.length:,} bp, truth {cohort.truth})")


if __name__ == "__main__":
    main()
