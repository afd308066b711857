"""VCF 4.2 text for the caller's records, and bgzip + tabix output."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import pysam

from .caller import Variant

def header(contigs: Sequence[tuple[str, int]], reference: str, sample: str,
           command: str, min_qual: float) -> str:
    """VCF header: contigs with lengths, reference, command line and field definitions."""
    lines = [
        "##fileformat=VCFv4.2",
        "##source=cloudbutton.genomics",
        f"##reference=file://{os.path.abspath(reference)}",
        f"##cloudbutton_command={command}",
        *(f"##contig=<ID={name},length={length}>" for name, length in contigs),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        f'##FILTER=<ID=LowQual,Description="QUAL below {min_qual:g}">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Read depth used for the call">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths (REF, ALT...)">',
        '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype likelihoods">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]),
    ]
    return "\n".join(lines) + "\n"


def record(contig: str, v: Variant, min_qual: float) -> str:
    """One VCF data line (no newline)."""
    filters = (*(("LowQual",) if v.qual < min_qual else ()), *v.filters)
    sample = ":".join([f"{v.genotype[0]}/{v.genotype[1]}", str(v.gq), str(v.dp),
                       ",".join(map(str, v.ad)), ",".join(map(str, v.pl))])
    return "\t".join([contig, str(v.pos), ".", v.ref, ",".join(v.alts), f"{v.qual:.2f}",
                      ";".join(filters) or "PASS", f"DP={v.dp}", "GT:GQ:DP:AD:PL", sample])


def write_bgzip(path: str, text_header: str, lines: Iterable[str]) -> None:
    """Write ``path`` (``.vcf.gz``) bgzip-compressed with a tabix index beside it.

    ``path`` is written via a plain temporary file next to it, then compressed.
    """
    plain = path + ".plain.tmp"
    try:
        with open(plain, "w") as fh:
            fh.write(text_header)
            for line in lines:
                fh.write(line + "\n")
        pysam.tabix_compress(plain, path, force=True)
    finally:
        if os.path.exists(plain):
            os.remove(plain)
    pysam.tabix_index(path, preset="vcf", force=True)
