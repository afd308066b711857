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
                     "f1": f1, "anchor": rows[0]["wall"]})
    return rows


def write_report(rows: list[dict], header: str, synthetic: str) -> None:
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
             "| data | tool | wall s | CPU s | graph wall s | ratio vs bcftools | peak RSS MB | F1 (QUAL>=20) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        graph = f"{r['graph_wall']:.2f}" if r["graph_wall"] is not None else "-"
        rss = f"{r['rss']:.0f}" + (f" (task {r['task_rss']:.0f})" if "task_rss" in r else "")
        f1 = "-" if r["f1"] != r["f1"] else f"{r['f1']:.4f}"
        lines.append(f"| {r['data']} | {r['tool']} | {r['wall']:.2f} | {r['cpu']:.2f} | {graph} | "
                     f"{r['wall'] / r['anchor']:.2f}x | {rss} | {f1} |")
    lines += ["", "## Against the target (<= 1.0x bcftools wall with 2 workers)", ""]
    for r in rows:
        if r["graph_wall"] is None:
            continue
        ratio, graph_ratio = r["wall"] / r["anchor"], r["graph_wall"] / r["anchor"]
        lines.append(f"- {r['data']}, {r['tool']}: process {ratio:.2f}x ({'met' if ratio <= 1.0 else 'NOT met'}), "
                     f"graph only {graph_ratio:.2f}x ({'met' if graph_ratio <= 1.0 else 'NOT met'}).")
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
    write_report(rows, header, synthetic)
    print((RESULTS / "genomics.md").read_text())


if __name__ == "__main__":
    main()
