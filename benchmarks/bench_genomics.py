"""Genomics benchmark: ``genomics call`` on four executors vs bcftools mpileup | call -mv.

Inputs: the NA12878 chr20 slice (../shared/data/genomics) and a synthetic >= 5 Mb
30x sample (generated once into data/samples/genomics/generated/, deterministic).
Every measurement is a child process timed with /usr/bin/time (wall, peak RSS of
the largest process); the pipeline's own kpi.json wall (graph only) is reported too.
F1 is exact-match at QUAL >= 20 after ``bcftools norm`` (confident BED for NA12878).

Run: ``python benchmarks/bench_genomics.py [--synthetic-mb 5]``; writes
``benchmarks/results/genomics.md`` and ``genomics.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cloudbutton.core.machine import describe, time_command  # noqa: E402
from cloudbutton.pipelines.genomics.evaluate import evaluate  # noqa: E402
from cloudbutton.pipelines.genomics.simulate import PRESETS, make_sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLOUDBUTTON_SHARED_DATA", ROOT.parent / "shared" / "data")) / "genomics"
RESULTS = ROOT / "benchmarks" / "results"
EXECUTORS = ("threads", "processes", "lithops", "spark")

ANCHOR = """
import sys
from cloudbutton.pipelines.genomics.anchor import run_bcftools
run_bcftools(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] or None)
"""

# bcftools over 2 regions at once (the anchor a user with 2 cores would pick), then concatenated
ANCHOR_2 = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pysam import bcftools
from cloudbutton.pipelines.genomics.anchor import run_bcftools
bam, ref, out, a, b = sys.argv[1:6]
with ThreadPoolExecutor(2) as pool:
    parts = list(pool.map(lambda x: run_bcftools(bam, ref, out + x[0] + ".vcf.gz", x[1]), (("a", a), ("b", b))))
bcftools.concat("-Oz", "-o", out, *parts, catch_stdout=False)
"""


def timed(cmd: list[str], repeats: int) -> tuple[float, float, float]:
    """Run ``cmd`` under /usr/bin/time ``repeats`` times; medians of (wall s, CPU s, peak RSS MB)."""
    runs = [time_command(cmd) for _ in range(repeats)]
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))


def bench_dataset(name, bam, reference, truth, bed, region, work: Path, repeats: int) -> list[dict]:
    """bcftools, then the pipeline on every executor with 2 workers (medians of ``repeats`` runs)."""
    rows = []
    anchor_vcf = str(work / f"{name}.bcftools.vcf.gz")
    wall, cpu, rss = timed([sys.executable, "-c", ANCHOR, bam, reference, anchor_vcf, region or ""], repeats)
    f1 = evaluate(anchor_vcf, truth, reference, bed)["ALL"].f1
    rows.append({"data": name, "tool": "bcftools mpileup+call -mv (1 process)", "wall": wall, "cpu": cpu,
                 "rss": rss, "graph_wall": None, "f1": f1, "anchor": wall})
    halves = _halves(bam, reference, region)
    two_vcf = str(work / f"{name}.bcftools2.vcf.gz")
    wall2, cpu2, rss2 = timed([sys.executable, "-c", ANCHOR_2, bam, reference, two_vcf, *halves], repeats)
    rows.append({"data": name, "tool": f"bcftools over 2 regions in parallel ({' + '.join(halves)})",
                 "wall": wall2, "cpu": cpu2, "rss": rss2, "graph_wall": None,
                 "f1": evaluate(two_vcf, truth, reference, bed)["ALL"].f1, "anchor": wall, "anchor2": wall2})
    plan_cmd = [sys.executable, "-m", "cloudbutton.core.cli", "genomics", "call", bam, "--reference", reference,
                "--out", str(work / "plan.vcf.gz"), "--plan", *(["--region", region] if region else [])]
    wall, cpu, rss = timed(plan_cmd, repeats)
    rows.append({"data": name, "tool": "cloudbutton --plan only (start-up + planning, no calling)", "wall": wall,
                 "cpu": cpu, "rss": rss, "graph_wall": None, "f1": float("nan"), "anchor": rows[0]["wall"]})
    for executor in EXECUTORS:
        out = work / executor / f"{name}.vcf.gz"
        cmd = [sys.executable, "-m", "cloudbutton.core.cli", "genomics", "call", bam, "--reference", reference,
               "--out", str(out), "--executor", executor, "--workers", "2", "--quiet"]
        if region:
            cmd += ["--region", region]
        wall, cpu, rss = timed(cmd, repeats)
        kpi = json.loads((out.parent / "kpi.json").read_text())
        f1 = evaluate(str(out), truth, reference, bed)["ALL"].f1
        rows.append({"data": name, "tool": f"cloudbutton {executor} (2 workers)", "wall": wall, "cpu": cpu, "rss": rss,
                     "graph_wall": kpi["run"]["wall_s"], "task_rss": kpi["run"]["peak_rss_bytes"] / 2**20,
                     "f1": f1, "anchor": rows[0]["wall"], "anchor2": wall2})
    return rows


def _halves(bam: str, reference: str, region: str | None) -> tuple[str, str]:
    """``region`` (or the BAM's first contig) cut into two equal halves, as 1-based region strings."""
    import pysam
    if region:
        contig, span = region.split(":")
        start, end = (int(x) for x in span.split("-"))
    else:
        with pysam.AlignmentFile(bam) as aln:
            contig, start, end = aln.references[0], 1, aln.lengths[0]
    mid = (start + end) // 2
    return f"{contig}:{start}-{mid}", f"{contig}:{mid + 1}-{end}"


def _replicate(src_bam: str, contig: str, start: int, end: int, copies: int, limit: int | None, path: Path) -> float:
    """The reads over ``[start, end)`` (the first ``limit``) each written ``copies`` times under new
    names (base qualities jittered in the copies) to an indexed BAM; returns its mean depth over the region."""
    import numpy as np
    import pysam
    rng = np.random.default_rng(7)
    with pysam.AlignmentFile(src_bam) as src, pysam.AlignmentFile(str(path) + ".tmp", "wb", template=src) as dst:
        for n, read in enumerate(src.fetch(contig, start, end)):
            if limit is not None and n >= limit:
                break
            for k in range(copies):
                copy = pysam.AlignedSegment.fromstring(read.to_string(), src.header)
                copy.query_name = f"{read.query_name}:{k}"
                if k:  # copies differ in base qualities (+-1), so they compress like distinct reads
                    qual = np.asarray(read.query_qualities, dtype=np.int64)
                    copy.query_qualities = np.clip(qual + rng.integers(-1, 2, qual.size), 2, 60).astype(np.uint8)
                dst.write(copy)
    pysam.sort("-o", str(path), str(path) + ".tmp")
    pysam.index(str(path))
    with pysam.AlignmentFile(str(path)) as aln:
        return sum(r.query_alignment_length for r in aln.fetch(contig, start, end)) / (end - start)


def _task_rss(bam: Path, reference: str, region: str, out: Path) -> dict:
    """One chunk on the processes executor: wall, CPU, largest task's peak RSS (MB) and its calling windows."""
    import pysam
    from cloudbutton.pipelines.genomics.plan import parse_region, plan_chunks
    cmd = [sys.executable, "-m", "cloudbutton.core.cli", "genomics", "call", str(bam), "--reference", reference,
           "--out", str(out), "--region", region, "--executor", "processes", "--workers", "2", "--chunks", "1",
           "--quiet"]
    wall, cpu, _ = time_command(cmd)
    kpi = json.loads((out.parent / "kpi.json").read_text())
    with pysam.AlignmentFile(str(bam)) as aln, pysam.FastaFile(reference) as fasta:
        plan = plan_chunks(str(bam), aln, fasta, [parse_region(region, dict(zip(aln.references, aln.lengths)))],
                           chunks=1)
    windows = sum(len(g.chunks) for g in plan)
    return {"wall": wall, "cpu": cpu, "task_rss": kpi["run"]["peak_rss_bytes"] / 2**20, "windows": windows}


def bench_depth(work: Path, sim_bam: str, sim_reference: str) -> list[dict]:
    """Peak task RSS (processes executor, one chunk): a 2 kb NA12878 region holding one read (the
    worker's fixed memory: interpreter, numpy, pysam), at ~52x and replicated to ~3,100x;
    then 200 kb of the synthetic sample at 30x and replicated to 300x (calling windows follow the
    index bytes, so the deep copy is called in shorter windows)."""
    rows = []
    cases = [("NA12878 2 kb, 1 read", str(SHARED / "NA12878_S1.chr20.10_10p1mb.bam"),
              str(SHARED / "ucsc.hg19.chr20.unittest.fasta.gz"), ("chr20", 10_010_000, 10_012_000), 1, 1),
             ("NA12878 2 kb, x1", None, None, None, 1, None), ("NA12878 2 kb, x60", None, None, None, 60, None),
             ("synthetic 200 kb, x1", sim_bam, sim_reference, ("sim", 1_000_000, 1_200_000), 1, None),
             ("synthetic 200 kb, x10", None, None, None, 10, None)]
    for n, (label, bam, reference, region, copies, limit) in enumerate(cases):
        if bam is not None:
            src, ref, (contig, start, end) = bam, reference, region
        path = work / f"depth{n}.bam"
        depth = _replicate(src, contig, start - 1000, end + 1000, copies, limit, path)
        row = _task_rss(path, ref, f"{contig}:{start + 1}-{end}", work / f"depth{n}" / "calls.vcf.gz")
        rows.append({"label": label, "depth": depth, **row})
    return rows


def write_report(rows: list[dict], header: str, synthetic: str, depth: list[dict]) -> None:
    """Markdown table + PNG bar chart."""
    lines = ["# Genomics benchmark: `genomics call` vs bcftools", "", f"{header}", "",
             f"Data: NA12878 chr20:10.0-10.1 Mb slice (52k reads, ~52x; F1 inside the 8,999 bp confident BED); "
             f"{synthetic}.", "",
             "Wall = whole process (interpreter start, planning, calling, merge) under /usr/bin/time; "
             "graph wall = the pipeline's kpi.json `run.wall_s`; RSS = peak of the largest process "
             "(for the pipeline rows also the largest task's peak from kpi.json). "
             "CPU = user + system of the whole process tree (Spark's JVM included). "
             "Ratio = wall / bcftools wall measured in the same run. Each figure is the median of the runs "
             "given in the data column; the machine is shared with other jobs (load average above and "
             f"{os.getloadavg()[0]:.2f} at the end), so wall ratios within about ±20 % are noise.", "",
             "| data | tool | wall s | CPU s | graph wall s | ratio vs bcftools | vs bcftools x2 regions | "
             "peak RSS MB | F1 (QUAL>=20) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        graph = f"{r['graph_wall']:.2f}" if r["graph_wall"] is not None else "-"
        rss = f"{r['rss']:.0f}" + (f" (task {r['task_rss']:.0f})" if "task_rss" in r else "")
        f1 = "-" if r["f1"] != r["f1"] else f"{r['f1']:.4f}"
        two = f"{r['wall'] / r['anchor2']:.2f}x" if "anchor2" in r else "-"
        lines.append(f"| {r['data']} | {r['tool']} | {r['wall']:.2f} | {r['cpu']:.2f} | {graph} | "
                     f"{r['wall'] / r['anchor']:.2f}x | {two} | {rss} | {f1} |")
    lines += ["", "## Against the targets (<= 0.6x bcftools, <= 1.0x bcftools over 2 regions; 2 workers)", ""]
    for r in rows:
        if r["graph_wall"] is None:
            continue
        ratio, ratio2 = r["wall"] / r["anchor"], r["wall"] / r["anchor2"]
        lines.append(f"- {r['data']}, {r['tool']}: {ratio:.2f}x bcftools ({'met' if ratio <= 0.6 else 'NOT met'}), "
                     f"{ratio2:.2f}x bcftools over 2 regions ({'met' if ratio2 <= 1.0 else 'NOT met'}).")
    lines += ["", "## Memory at depth (processes executor, one chunk, --max-depth 250)", "",
              "| input | mean depth | calling windows | wall s | CPU s | peak task RSS MB | added by the reads MB |",
              "|---|---|---|---|---|---|---|"]
    base = depth[0]["task_rss"] if depth else 0.0
    for d in depth:
        lines.append(f"| {d['label']} | {d['depth']:.0f}x | {d['windows']} | {d['wall']:.2f} | {d['cpu']:.2f} | "
                     f"{d['task_rss']:.0f} | {d['task_rss'] - base:.0f} |")
    if len(depth) == 5:
        shallow, deep = depth[1]["task_rss"], depth[2]["task_rss"]
        lines.append(f"\nDeep / shallow task RSS (2 kb): {deep / shallow:.2f}x (target <= 1.5x: "
                     f"{'met' if deep / shallow <= 1.5 else 'NOT met'}). Above the one-read run (the worker's fixed "
                     f"memory: interpreter, numpy, pysam), the reads add {shallow - base:.0f} MB at "
                     f"~{depth[1]['depth']:.0f}x and {deep - base:.0f} MB at ~{depth[2]['depth']:.0f}x. Over 200 kb "
                     f"the read cap alone would let a fixed 200 kb window hold ~250x; the calling windows follow the "
                     f"index bytes instead: {depth[4]['task_rss'] / depth[3]['task_rss']:.2f}x the task RSS at "
                     f"~{depth[4]['depth']:.0f}x as at ~{depth[3]['depth']:.0f}x.")
    lines += ["", "The `--plan only` row is the fixed cost of any CLI run before calling starts (interpreter start, "
              "loading the genomics plugin, planning from the index). Each run also writes kpi.json, the timeline PNG "
              "and the Chrome trace after the graph; both sit outside the graph wall."]
    (RESULTS / "genomics.md").write_text("\n".join(lines) + "\n")
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.6))
    for ax, data in zip(axes if len(datasets) > 1 else [axes], datasets):
        sub = [r for r in rows if r["data"] == data and "--plan" not in r["tool"]]
        labels = [r["tool"].split(" (")[0].replace("cloudbutton ", "").replace(" mpileup+call -mv", "")
                  for r in sub]
        ax.bar(labels, [r["wall"] for r in sub], color=["grey"] + ["C0"] * (len(sub) - 1), label="process wall")
        ax.bar(labels, [r["graph_wall"] or 0 for r in sub], color="C1", width=0.4, label="graph wall (kpi.json)")
        ax.legend(fontsize=8)
        ax.axhline(sub[0]["wall"], color="grey", ls="--", lw=1)
        ax.set_title(data)
        ax.set_ylabel("wall time, s (2 workers)")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(RESULTS / "genomics.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-mb", type=float, default=5.0, help="synthetic reference length (Mb)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement on the NA12878 slice")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = describe(("cloudbutton", "pysam", "lithops", "pyspark", "numpy"))
    gen = ROOT / "data" / "samples" / "genomics" / "generated" / f"bench{args.synthetic_mb:g}mb"
    spec = replace(PRESETS["30x"], length=int(args.synthetic_mb * 1e6), seed=11)
    sim = make_sample(str(gen), spec) if not (gen / "sim.bam.bai").exists() else None
    if sim is None:
        from cloudbutton.pipelines.genomics.simulate import Sample
        sim = Sample(str(gen / "sim.fa"), str(gen / "sim.bam"), str(gen / "sim.truth.vcf.gz"),
                     str(gen / "sim.bed"), "sim", spec.length)
    synthetic = (f"synthetic {spec.length / 1e6:g} Mb random reference with homopolymers/STRs, 30x 2x150 bp, "
                 f"0.1-1 % error, {spec.length // 900} SNPs + {spec.length // 4300} indels, aligned with mappy")
    with tempfile.TemporaryDirectory(prefix="bench-genomics-") as tmp:
        work = Path(tmp)
        rows = bench_dataset(f"NA12878 slice ({args.repeats} runs)", str(SHARED / "NA12878_S1.chr20.10_10p1mb.bam"),
                             str(SHARED / "ucsc.hg19.chr20.unittest.fasta.gz"),
                             str(SHARED / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz"),
                             str(SHARED / "test_nist.b37_chr20_100kbp_at_10mb.bed"), "chr20:10000000-10100000", work,
                             args.repeats)
        rows += bench_dataset(f"synthetic {spec.length / 1e6:g} Mb 30x (1 run)", sim.bam, sim.reference,
                              sim.truth, sim.bed, None, work, 1)
        depth = bench_depth(work, sim.bam, sim.reference)
    write_report(rows, header, synthetic, depth)
    print((RESULTS / "genomics.md").read_text())


if __name__ == "__main__":
    main()
