"""The ``genomics call`` stage graph: plan -> call (map per chunk) -> merge (reduce).

``build_call_job`` is shared by the CLI and the Python API :func:`call`.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from cloudbutton.core import Graph, Job, RunResult, plan_and_run
from cloudbutton.core.errors import InputError
from cloudbutton.core.storage import atomic_output

from . import vcf
from .caller import Block, CallParams, Variant, call_chunk, join_blocks
from .inputs import check_chunking, merge_regions, open_alignments, open_reference, read_bed, resolve_regions
from .inputs import output_type as output_type_of
from .plan import ChunkGroup, plan_chunks
from .ploidy import Ploidy
from .reads import ReadFilters
from .samples import SampleReads, check_same_contigs, check_unique_samples, file_samples


@dataclass(frozen=True)
class ChunkCalls:
    """One task's records as BGZF blocks (no end-of-file block), with their counts.

    With gVCF blocks, a reference block that opens (``head``) or closes (``tail``) the
    task's records is kept apart, so the merge can join it with its neighbour task's.
    """

    group: ChunkGroup
    bgzf: bytes
    records: int
    passing: int
    snps: int
    indels: int
    head: tuple[str, Block] | None = None
    tail: tuple[str, Block] | None = None


@dataclass(frozen=True)
class CallSummary:
    """What the merge wrote."""

    path: str
    records: int
    passing: int
    snps: int
    indels: int
    chunks: int

    def __str__(self) -> str:
        return (f"{self.path}: {self.records} records ({self.passing} PASS; {self.snps} SNPs, "
                f"{self.indels} indels) from {self.chunks} chunks")


def call_task(group: ChunkGroup, *, samples: list[SampleReads], reference: str, params: CallParams,
              regions: list[tuple[str, int, int]],
              targets: list[tuple[str, int, int]] | None = None) -> ChunkCalls:
    """Map task: the records owned by the group's chunks (parts of ``regions``; only those
    whose POS lies in ``targets`` when given), every sample called jointly, compressed, in
    position order."""
    records: list[tuple[str, Variant | Block]] = []
    for chunk in group.chunks:
        region_start = max(s for c, s, _ in regions if c == chunk.contig and s <= chunk.start)
        found = call_chunk(samples, reference, chunk.contig, chunk.start, chunk.end, params,
                           written_from=region_start)
        if targets is not None:
            mine = [(s, e) for c, s, e in targets if c == chunk.contig and s < chunk.end and e > chunk.start]
            found = [v for v in found if any(s <= v.pos - 1 < e for s, e in mine)]
        variants = [v for v in found if isinstance(v, Variant)]
        keys = [(v.pos, v.ref, v.alts) for v in variants]
        if len(set(keys)) != len(keys) or keys != sorted(keys):
            raise AssertionError(f"chunk {chunk}: records out of order or duplicated")
        if records and records[-1][0] == chunk.contig:  # join blocks across the group's chunk boundaries
            joined = join_blocks([records.pop()[1], *found])
        else:
            joined = found
        records += [(chunk.contig, r) for r in joined]
    head = records.pop(0) if records and isinstance(records[0][1], Block) else None
    tail = records.pop() if records and isinstance(records[-1][1], Block) else None
    lines, counts = [], [0, 0, 0]
    for contig, r in records:
        if isinstance(r, Block):
            lines.append(vcf.block_record(contig, r))
            continue
        line = vcf.record(contig, r, params.min_qual)
        lines.append(line)
        counts[0] += "\tPASS\t" in line
        counts[1 if not r.is_indel else 2] += 1
    n_variants = counts[1] + counts[2]
    return ChunkCalls(group, vcf.bgzf_block(lines), n_variants, *counts, head=head, tail=tail)


def _pieces(parts: list[ChunkCalls]):
    """The parts' BGZF bytes in order, with boundary reference blocks joined across parts."""
    pending: tuple[str, Block] | None = None
    for part in parts:
        for item in (part.head, part.bgzf, part.tail):
            if item is None or item == b"":
                continue
            if isinstance(item, bytes):
                if pending is not None:
                    yield vcf.bgzf_block([vcf.block_record(*pending)])
                    pending = None
                yield item
                continue
            contig, block = item
            if pending is not None and pending[0] == contig:
                joined = join_blocks([pending[1], block])
                if len(joined) == 1:
                    pending = (contig, joined[0])
                    continue
            if pending is not None:
                yield vcf.bgzf_block([vcf.block_record(*pending)])
            pending = item
    if pending is not None:
        yield vcf.bgzf_block([vcf.block_record(*pending)])


def merge_task(parts: list[ChunkCalls], *, out: str, header: str, kind: str = "z",
               index: str | None = ".tbi") -> CallSummary:
    """Reduce task: copy the tasks' compressed records in reference order into the output
    (``kind`` z, v or b) and build its ``index`` (suffix), atomically.

    Chunks own disjoint position ranges, so the parts need no sorting or de-duplication:
    the merge holds only compressed bytes and streams them out (joining gVCF reference
    blocks that meet at a task boundary).
    """
    parts = sorted(parts, key=lambda p: p.group.index)
    if index is None:
        with atomic_output(out) as tmp:
            vcf.write(tmp, header, _pieces(parts), kind, None)
    else:
        with atomic_output(out) as tmp, atomic_output(out + index) as tmp_index:
            vcf.write(tmp, header, _pieces(parts), kind, index)
            os.replace(tmp + index, tmp_index)
    return CallSummary(path=out, records=sum(p.records for p in parts), passing=sum(p.passing for p in parts),
                       snps=sum(p.snps for p in parts), indels=sum(p.indels for p in parts),
                       chunks=len({c.index for p in parts for c in p.group.chunks}))


def _call_command(paths: list[str], reference: str, *, regions: list[str] | None, min_qual: float,
                  min_mapq: int, min_baseq: int, max_depth: int, ploidy: str | None, sex: str,
                  regions_file: str | None, targets_file: str | None, gvcf: bool) -> str:
    """The ``genomics call`` command line that gives these records, for the VCF header: inputs
    and calling options only (not the output name), so the header is the same on every executor,
    any chunking and after a resume (the command actually typed may differ in all three)."""
    words = ["cloudbutton", "genomics", "call", *paths, "--reference", reference]
    words += [w for r in regions or [] for w in ("--region", r)]
    words += ["--regions-file", regions_file] if regions_file else []
    words += ["--targets-file", targets_file] if targets_file else []
    words += ["--min-qual", f"{min_qual:g}", "--min-mapq", str(min_mapq), "--min-baseq", str(min_baseq),
              "--max-depth", str(max_depth)]
    words += ["--ploidy", ploidy, "--sex", sex] if ploidy else []
    words += ["--gvcf"] if gvcf else []
    return " ".join(shlex.quote(w) for w in words)


def build_call_job(bam: str | Sequence[str], reference: str, out: str, *, regions: list[str] | None = None,
                   chunk_size: int | None = None, chunks: int | None = None, min_qual: float = 20.0,
                   min_mapq: int = 0, min_baseq: int = 13, max_depth: int = 250,
                   output_type: str | None = None, ploidy: str | None = None, sex: str = "F",
                   regions_file: str | None = None, targets_file: str | None = None, gvcf: bool = False) -> Job:
    """Check the inputs, plan the chunks and build the call graph (nothing is called yet).

    Parameters
    ----------
    bam : str or list of str
        Coordinate-sorted BAM or CRAM (indexed here if it has no index), or several called
        jointly into one multi-sample VCF (a file whose read groups name several samples
        gives one column per sample).
    reference : str
        FASTA (plain or bgzip) the reads were aligned to; also decodes CRAM.
    out : str
        Output ``.vcf.gz`` (bgzip + .tbi), ``.vcf`` (plain text) or ``.bcf`` (BCF + .csi).
    regions : list of str, optional
        ``CHR[:START-END]`` (1-based); default every contig with mapped reads.
    chunk_size, chunks : int, optional
        Target chunk length in bp, or total chunk count (see :func:`plan.plan_chunks`).
    min_qual, min_mapq, min_baseq, max_depth :
        Caller thresholds (bcftools-like defaults).
    output_type : str, optional
        ``z``, ``v`` or ``b`` (bcftools ``--output-type``); default from ``out``'s name.
    ploidy, sex : str, optional
        ``2`` (default), ``1`` or an assembly preset (``GRCh37``, ``GRCh38``: haploid X
        outside the PARs and Y for ``sex`` M, no Y calls for F, haploid mitochondria).
    regions_file : str, optional
        BED of regions to call (bcftools ``-R``), added to ``regions``.
    targets_file : str, optional
        BED of targets (bcftools ``-T``): only records whose POS lies in one are written;
        without regions, only the targets are called.
    gvcf : bool
        Also write reference blocks (``<*>``, END, MinDP; GT ``./.`` where no read covers)
        over every position without a record (bcftools ``call -g``); not with ``targets_file``.

    Raises
    ------
    InputError
        On a missing/unreadable input, contig mismatch, a sample named twice, bad region,
        non-positive chunk count or size, or unknown output type.
    """
    kind = output_type_of(out, output_type)
    check_chunking(chunks, chunk_size)
    if gvcf and targets_file:
        raise InputError(targets_file, "--gvcf blocks cover whole regions: use --regions-file, not --targets-file")
    copies = Ploidy.parse(ploidy, sex)
    paths = [bam] if isinstance(bam, str) else list(bam)
    if not paths:
        raise InputError("INPUT.bam", "no alignment file given")
    with ExitStack() as stack:
        fasta = stack.enter_context(open_reference(reference))
        opened = []
        for path in paths:
            aln, index = open_alignments(path, reference)
            opened.append((path, stack.enter_context(aln), index))
        samples = [(path, name, SampleReads(path, index, groups))
                   for path, aln, index in opened for name, groups in file_samples(path, aln)]
        check_unique_samples([(path, name) for path, name, _ in samples])
        first, aln, bam_index = opened[0]
        lengths = dict(zip(aln.references, aln.lengths))
        targets = merge_regions(read_bed(targets_file, lengths), list(aln.references)) if targets_file else None
        bed_regions = read_bed(regions_file, lengths) if regions_file else None
        if targets is not None and not regions and bed_regions is None:
            bed_regions = targets
        found = [r for path, other, index in opened
                 for r in resolve_regions(path, other, fasta, reference, regions, index, bed_regions)]
        for path, other, _ in opened[1:]:
            check_same_contigs(path, other, first, aln, sorted({c for c, _, _ in found}))
        wanted = merge_regions(found, list(aln.references))
        plan = plan_chunks(first, aln, fasta, wanted, chunk_size=chunk_size, chunks=chunks, index=bam_index)
        ref_len = dict(zip(fasta.references, fasta.lengths))
        contigs = [(n, ln) for n, ln in zip(aln.references, aln.lengths) if ref_len.get(n) == ln]
    params = CallParams(filters=ReadFilters(min_mapq=min_mapq, min_baseq=min_baseq, max_depth=max_depth),
                        min_qual=min_qual, ploidy=copies, gvcf=gvcf)
    command = _call_command(paths, reference, regions=regions, min_qual=min_qual, min_mapq=min_mapq,
                            min_baseq=min_baseq, max_depth=max_depth, ploidy=ploidy, sex=sex,
                            regions_file=regions_file, targets_file=targets_file, gvcf=gvcf)
    header = vcf.header(contigs, reference, [name for _, name, _ in samples], command, min_qual, gvcf)
    g = Graph("genomics.call")
    g.map("call", call_task, over=plan,
          params={"samples": [s for _, _, s in samples], "reference": reference, "params": params,
                  "regions": wanted, "targets": targets})
    g.reduce("merge", merge_task, over="call",
             params={"out": out, "header": header, "kind": kind, "index": vcf.index_suffix(kind, contigs)})
    return Job(graph=g, output=out, summary=str, inputs=[*paths, reference])


def call(bam: str | Sequence[str], reference: str, out: str, *, regions: list[str] | None = None,
         chunk_size: int | None = None, chunks: int | None = None, min_qual: float = 20.0,
         min_mapq: int = 0, min_baseq: int = 13, max_depth: int = 250, output_type: str | None = None,
         ploidy: str | None = None, sex: str = "F", regions_file: str | None = None,
         targets_file: str | None = None, gvcf: bool = False, executor: str = "threads", workers: int | None = None,
         **run_options: Any) -> RunResult:
    """Call SNPs and indels: BAM/CRAM + reference -> VCF (bgzip + index, plain or BCF).

    ``bam`` is one file or a list called jointly into one multi-sample VCF (bcftools
    ``mpileup a.bam b.bam | call -m``).

    Same as ``cloudbutton genomics call``; ``run_options`` are further
    :class:`cloudbutton.core.RunOptions` fields (``kpi_path``, ``lithops_config``, ...).
    ``result.value`` is a :class:`CallSummary`; ``result.kpi`` the run's KPIs.
    """
    return plan_and_run(lambda: build_call_job(
        bam, reference, out, regions=regions, chunk_size=chunk_size, chunks=chunks, min_qual=min_qual,
        min_mapq=min_mapq, min_baseq=min_baseq, max_depth=max_depth, output_type=output_type, ploidy=ploidy, sex=sex,
        regions_file=regions_file, targets_file=targets_file, gvcf=gvcf), executor=executor, workers=workers,
        **run_options)
