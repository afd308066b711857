"""``cloudbutton genomics call``: the CLI plugin (entry point ``cloudbutton.pipelines:genomics``)."""
from __future__ import annotations

import argparse
import gzip
import hashlib

from cloudbutton.core import Job
from cloudbutton.core.cli import Command, Pipeline

from .pipeline import build_call_job
from .report import report


def _add_call_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bam", metavar="INPUT.bam", nargs="+",
                        help="coordinate-sorted BAM or CRAM; several (or one holding several @RG SM samples) "
                             "are called jointly into one multi-sample VCF")
    parser.add_argument("--reference", required=True, metavar="REF.fa[.gz]",
                        help="reference FASTA (plain or bgzip) the reads were aligned to")
    parser.add_argument("--out", required=True, metavar="OUT.vcf.gz",
                        help="output: .vcf.gz (bgzip + .tbi), .vcf (plain) or .bcf (BCF + .csi)")
    parser.add_argument("--output-type", "-O", metavar="z|v|b",
                        help="z bgzip VCF, v plain VCF, b BCF (default from the --out name)")
    parser.add_argument("--region", "-r", action="append", metavar="CHR:START-END",
                        help="region to call, 1-based inclusive (repeatable; default all contigs with reads)")
    parser.add_argument("--regions-file", "-R", metavar="BED", help="BED of regions to call (with --region)")
    parser.add_argument("--targets-file", "-T", metavar="BED",
                        help="write only records whose POS lies in these BED intervals")
    parser.add_argument("--ploidy", metavar="2|1|GRCh37|GRCh38",
                        help="copies per position: 2 (default), 1, or an assembly's sex-chromosome preset")
    parser.add_argument("--sex", default="F", metavar="F|M", help="sample sex for --ploidy presets (F)")
    parser.add_argument("--gvcf", action="store_true",
                        help="also write reference blocks over every position without a record (bcftools call -g)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--chunk-size", type=int, metavar="BP", help="target chunk length in bp")
    size.add_argument("--chunks", type=int, metavar="N",
                      help="number of chunks, balanced by data size (default 8, or one per 10 Mb)")
    parser.add_argument("--min-qual", type=float, default=20.0, help="QUAL below which FILTER is LowQual (20)")
    parser.add_argument("--min-mapq", type=int, default=0, help="skip reads below this MAPQ (0)")
    parser.add_argument("--min-baseq", type=int, default=13, help="skip bases below this quality (13)")
    parser.add_argument("--max-depth", type=int, default=250, help="reads used per position (250)")


def _build_call(args: argparse.Namespace) -> Job:
    job = build_call_job(args.bam, args.reference, args.out, regions=args.region, chunk_size=args.chunk_size,
                         chunks=args.chunks, min_qual=args.min_qual, min_mapq=args.min_mapq,
                         min_baseq=args.min_baseq, max_depth=args.max_depth, output_type=args.output_type,
                         ploidy=args.ploidy, sex=args.sex, regions_file=args.regions_file,
                         targets_file=args.targets_file, gvcf=args.gvcf)
    if getattr(args, "plan", False):
        groups = job.graph.stages["call"].over
        chunks = [c for g in groups for c in g.chunks]
        print(f"{len({c.index for c in chunks})} chunks in {len(groups)} tasks:")
        for g in groups:
            for c in g.chunks:
                print(f"  {c.index:>4}  {c}  ({c.end - c.start:,} bp)" + (f"  task {g.index}" if len(g.chunks) > 1 else ""))
    return job


def _fingerprint(out: str) -> str:
    """SHA-256 of the VCF's records (the header, which names the input and output paths, left out)."""
    digest = hashlib.sha256()
    with gzip.open(out, "rb") as handle:
        for line in handle:
            if not line.startswith(b"#"):
                digest.update(line)
    return digest.hexdigest()


def _sample(folder: str) -> list[str]:
    """Generate the 30x sample (deterministic) in ``folder``; the arguments that call it."""
    from .simulate import make_sample

    sample = make_sample(folder)
    return ["call", sample.bam, "--reference", sample.reference]


pipeline = Pipeline(
    name="genomics",
    help="region-chunked variant calling: BAM/CRAM + reference -> VCF",
    commands={"call": Command(help="call SNPs and indels of one or more samples into a bgzip VCF",
                              add_arguments=_add_call_arguments, build=_build_call,
                              fingerprint=_fingerprint, output_name="calls.vcf.gz", report=report)},
    sample=_sample,
)
