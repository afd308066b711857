"""VCF 4.2 text for the caller's records, and bgzip + tabix output."""
from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterable, Sequence

import pysam
from pysam import bcftools

from cloudbutton.core.storage import is_object_uri

from .caller import Block, Variant

def header(contigs: Sequence[tuple[str, int]], reference: str, samples: Sequence[str],
           command: str, min_qual: float, gvcf: bool = False) -> str:
    """VCF header: contigs with lengths, reference, the calling command, field definitions (with
    the reference-block fields when ``gvcf``) and one column per sample."""
    lines = [
        "##fileformat=VCFv4.2",
        "##source=cloudbutton.genomics",
        f"##reference={reference if is_object_uri(reference) else 'file://' + os.path.abspath(reference)}",
        f"##cloudbutton_callCommand={command}",
        *(f"##contig=<ID={name},length={length}>" for name, length in contigs),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        f'##FILTER=<ID=LowQual,Description="QUAL below {min_qual:g}">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Read depth used for the call">',
        '##INFO=<ID=INDEL,Number=0,Type=Flag,Description="Indel record">',
        '##INFO=<ID=IDV,Number=1,Type=Integer,Description="Read pairs whose alignment carries the indel '
        '(the best-supported one)">',
        '##INFO=<ID=IMF,Number=1,Type=Float,Description="IDV as a fraction of the read pairs at the site">',
        '##INFO=<ID=SGB,Number=1,Type=Float,Description="Segregation based metric (bcftools SGB): log-ratio of the '
        'samples\' ALT read counts under a real variant against scattered errors">',
        '##INFO=<ID=MQ,Number=1,Type=Float,Description="Mean mapping quality of the reads used (capped at 60)">',
        '##INFO=<ID=MQ0F,Number=1,Type=Float,Description="Fraction of the reads used with MAPQ 0">',
        '##INFO=<ID=DP4,Number=4,Type=Integer,Description="Reads used: REF forward, REF reverse, '
        'ALT forward, ALT reverse">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths (REF, ALT...)">',
        '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype likelihoods">',
        *(['##ALT=<ID=*,Description="Any allele other than REF (reference block)">',
           '##INFO=<ID=END,Number=1,Type=Integer,Description="Last position of the reference block">',
           '##INFO=<ID=MinDP,Number=1,Type=Integer,Description="Lowest depth in the reference block">']
          if gvcf else []),
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    return "\n".join(lines) + "\n"


def record(contig: str, v: Variant, min_qual: float) -> str:
    """One VCF data line (no newline); a sample without reads there is a no-call (``./.``)."""
    filters = (*(("LowQual",) if v.qual < min_qual else ()), *v.filters)
    copies = max(len(s.genotype) for s in v.samples)
    samples = [":".join(["/".join(map(str, s.genotype)) or "/".join("." * copies), str(s.gq), str(s.dp),
                         ",".join(map(str, s.ad)), ",".join(map(str, s.pl))]) for s in v.samples]
    return "\t".join([contig, str(v.pos), ".", v.ref, ",".join(v.alts), f"{v.qual:.2f}",
                      ";".join(filters) or "PASS", ";".join([f"DP={v.dp}", *v.info]), "GT:GQ:DP:AD:PL", *samples])


def block_record(contig: str, b: Block) -> str:
    """One gVCF reference-block line: per sample ``./.`` where no read covers, else ``0/0``, with
    its lowest depth; INFO MinDP is the lowest over the samples."""
    samples = [f"{'0/0' if band else './.'}:{dp}" for band, dp in zip(b.band, b.min_dp)]
    return "\t".join([contig, str(b.pos), ".", b.ref, "<*>", ".", "PASS", f"END={b.end};MinDP={min(b.min_dp)}",
                      "GT:DP", *samples])


#: Longest contig a tabix (.tbi) index can address; longer ones need CSI.
TBI_MAX_LENGTH = (1 << 29) - 1


def index_suffix(kind: str, contigs: Sequence[tuple[str, int]]) -> str | None:
    """Index written beside an output of ``kind`` (z, v, b): .tbi, .csi or none."""
    if kind == "v":
        return None
    if kind == "b" or any(length > TBI_MAX_LENGTH for _, length in contigs):
        return ".csi"
    return ".tbi"


#: The empty BGZF block that ends a BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def bgzf_block(lines: Iterable[str]) -> bytes:
    """``lines`` (newline-terminated here) as BGZF blocks without the end-of-file block.

    Such pieces concatenate into one valid BGZF stream, so each map task compresses its
    own records and the merge only copies bytes.
    """
    fd, tmp = tempfile.mkstemp(suffix=".bgzf")
    os.close(fd)
    try:
        with pysam.BGZFile(tmp, "wb") as out:
            for line in lines:
                out.write((line + "\n").encode())
        with open(tmp, "rb") as fh:
            data = fh.read()
    finally:
        os.remove(tmp)
    return data[:-len(BGZF_EOF)] if data.endswith(BGZF_EOF) else data


def write(path: str, text_header: str, parts: Iterable[bytes], kind: str, index: str | None) -> None:
    """Write the header and the BGZF ``parts`` (in order) as bgzip VCF (``z``), plain VCF (``v``)
    or BCF (``b``), and the index named by suffix ``index``.

    Parts are copied (or decompressed) one at a time; htslib converts to BCF and builds
    the index from the written file.
    """
    body = path if kind == "z" else path + ".bgzf.tmp"
    try:
        with open(body if kind != "v" else path, "wb") as fh:
            fh.write(bgzf_block(text_header.splitlines()) if kind != "v" else text_header.encode())
            for part in parts:
                fh.write(part if kind != "v" else gzip.decompress(part))
            if kind != "v":
                fh.write(BGZF_EOF)
        if kind == "z":
            pysam.tabix_index(path, preset="vcf", force=True, csi=index == ".csi", index=path + index)
        elif kind == "b":
            bcftools.view("--no-version", "-Ob", "-o", path, body, catch_stdout=False)
            bcftools.index("-f", "-c", "-o", path + index, path, catch_stdout=False)
    finally:
        if body != path and os.path.exists(body):
            os.remove(body)
