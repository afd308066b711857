"""``cloudbutton bench``: one pipeline on several executors, outputs checked identical, KPIs compared.

Writes ``DIR/bench.json`` (every run's KPIs), ``DIR/bench.md`` (a table per
executor with speed-up against Spark, the scale projection and the model's
check against local runs), ``DIR/bench.png``, ``DIR/projection.png`` and ``DIR/bench.html`` (all of
it on one self-contained page, :func:`cloudbutton.core.report.bench_page`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from typing import Any, Sequence

from .errors import CloudbuttonError
from .job import run_job
from .kpi import PriceModel
from .projection import (ServerlessModel, SparkModel, makespan, predict_local, project_serverless,
                         project_spark, stage_tasks)
from .report import write_bench_page
from .storage import atomic_output
from .timeline import plot_timeline

FUNCTIONS = (1, 10, 100, 1000)


def bench_options() -> argparse.ArgumentParser:
    """The bench command's own options (they may come before or after the pipeline arguments)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("benchmark")
    group.add_argument("--executors", default="threads,processes,lithops,spark",
                       help="comma-separated executors to compare (default: all four)")
    group.add_argument("--repeat", type=int, default=3, help="runs per executor (default 3)")
    group.add_argument("--out", default="out/bench", help="folder for bench.json, bench.md and plots")
    group.add_argument("--workers", type=int, default=os.cpu_count(), help="workers per run (default: CPUs)")
    group.add_argument("--memory", type=int, default=1024, metavar="MB", help="memory per task (default 1024)")
    group.add_argument("--lithops-config", metavar="PATH", help="Lithops config file (default: localhost)")
    group.add_argument("--spark-master", metavar="URL", help="Spark master (default: local[WORKERS])")
    return parser


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-executor medians of the bench table's columns."""
    table: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["executor"] for r in runs):
        kpis = [r["kpi"]["run"] for r in runs if r["executor"] == name]
        table[name] = {
            "wall_s": _stats([k["wall_s"] for k in kpis]),
            "start_cost_s": statistics.median(k["start_cost_s"] for k in kpis),
            "first_start_s": kpis[0]["start_cost_s"],
            "task_time_s": statistics.median(k["task_time_s"]["sum"] for k in kpis),
            "parallel_efficiency": statistics.median(k["parallel_efficiency"] for k in kpis),
            "peak_rss_bytes": max(k["peak_rss_bytes"] for k in kpis),
            "gb_s": statistics.median(k["gb_s"] for k in kpis),
            "cost_usd": statistics.median(k["cost_usd"] for k in kpis),
            "requests": statistics.median(sum(k.get("requests", {}).values()) for k in kpis),
            "requests_usd": statistics.median(k.get("requests_usd", 0.0) for k in kpis),
        }
    spark = table.get("spark", {}).get("wall_s", {}).get("median")
    for row in table.values():
        row["speedup_vs_spark"] = spark / row["wall_s"]["median"] if spark else None
    return table


def spark_model(runs: list[dict[str, Any]], workers: int) -> SparkModel:
    """Spark's start and per-task overhead as measured in these runs (defaults when Spark was not run)."""
    spark = [r["kpi"] for r in runs if r["executor"] == "spark"]
    if not spark:
        return SparkModel()
    overheads = []
    for kpi in spark:
        tasks = stage_tasks(kpi)
        ideal = sum(makespan([t["duration_s"] for t in ts], workers) for ts in tasks.values())
        n = sum(len(ts) for ts in tasks.values())
        overheads.append(max(0.0, kpi["run"]["wall_s"] - kpi["run"]["start_cost_s"] - ideal) / max(1, n))
    return SparkModel(start_s=max(k["run"]["start_cost_s"] for k in spark),
                      per_task_s=statistics.median(overheads))


def projection(kpi: dict[str, Any], spark: SparkModel, model: ServerlessModel) -> list[dict[str, float]]:
    """Projected wall and cost at 1-1000 functions, and Spark wall at as many executors."""
    rows = []
    for n in FUNCTIONS:
        serverless = project_serverless(kpi, n, model)
        rows.append({"n": n, "serverless_wall_s": serverless["wall_s"], "serverless_cost_usd": serverless["cost_usd"],
                     "spark_wall_s": project_spark(kpi, n, spark)["wall_s"]})
    return rows


def _markdown(report: dict[str, Any]) -> str:
    table = report["table"]
    lines = [f"# Benchmark: {report['pipeline']} {report['command']}", "",
             f"{report['machine']} Workers per run: {report['workers']}; {report['repeat']} runs per "
             f"executor; arguments: `{' '.join(report['argv'])}`.", "",
             f"Outputs identical across all {len(report['runs'])} runs: **{report['identical']}** "
             f"(fingerprint `{report['fingerprint'][:16]}`).", "",
             "| executor | wall median (s) | min | max | fixed start (s) | Σ task time (s) | parallel eff. "
             "| peak RSS/task (MB) | GB-s | storage requests | $ requests | $ cost | speed-up vs Spark |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        speed = f"{row['speedup_vs_spark']:.2f}×" if row["speedup_vs_spark"] else "-"
        lines.append(f"| {name} | {row['wall_s']['median']:.2f} | {row['wall_s']['min']:.2f} | "
                     f"{row['wall_s']['max']:.2f} | {row['first_start_s']:.2f} (first), {row['start_cost_s']:.2f} "
                     f"| {row['task_time_s']:.2f} | {row['parallel_efficiency']:.0%} | "
                     f"{row['peak_rss_bytes'] / 2**20:.0f} | {row['gb_s']:.3f} | {row['requests']:.0f} | "
                     f"{row['requests_usd']:.6f} | {row['cost_usd']:.6f} | {speed} |")
    per_stage = {}
    for run in report["runs"]:
        for stage in run["kpi"]["stages"]:
            per_stage.setdefault(stage["name"], {}).setdefault(run["executor"], []).append(stage["wall_s"])
    lines += ["", "Where the time goes (median stage wall, s):", "",
              "| stage | " + " | ".join(table) + " |", "|---|" + "---|" * len(table)]
    for stage, by_exec in per_stage.items():
        lines.append(f"| {stage} | " + " | ".join(f"{statistics.median(by_exec[e]):.2f}" if e in by_exec else "-"
                                                  for e in table) + " |")
    proj, model, spark = report["projection"], report["serverless_model"], report["spark_model"]
    lines += ["", "## Scale projection (a model, not a measurement)", "",
              f"From the task durations, bytes and memory of the `{report['projection_source']}` run: serverless "
              f"functions with {model['invocation_s']} s invocation per stage, {model['cold_start_s']} s cold "
              f"start, {model['bandwidth_mb_s']} MB/s per function to storage (sources in "
              "`cloudbutton/core/projection.py`), against a Spark cluster with the start "
              f"({spark['start_s']:.2f} s) and per-task overhead ({spark['per_task_s'] * 1e3:.1f} ms) "
              + ("measured in these runs." if "spark" in table else "of ../shared/research/core.md (Spark not run here)."),
              "", "| functions / executors | serverless wall (s) | serverless $ | Spark wall (s) |", "|---|---|---|---|"]
    for row in proj:
        lines.append(f"| {row['n']} | {row['serverless_wall_s']:.2f} | {row['serverless_cost_usd']:.6f} | "
                     f"{row['spark_wall_s']:.2f} |")
    val = report["validation"]
    lines += ["", "## Model check against measured local runs", "",
              f"Task durations and per-stage overheads of the `{val['source']}` run, list-scheduled onto 1 and 2 "
              "workers, against separate measured runs:", "",
              "| workers | predicted (s) | measured (s) | error |", "|---|---|---|---|"]
    for row in val["rows"]:
        lines.append(f"| {row['workers']} | {row['predicted_s']:.2f} | {row['measured_s']:.2f} | "
                     f"{row['error']:+.1%} |")
    lines += ["", "![bench](bench.png)", "", "![projection](projection.png)", ""]
    return "\n".join(lines)


def _plots(report: dict[str, Any], folder: str) -> None:
    from matplotlib.figure import Figure

    table = report["table"]
    firsts = {}
    for run in report["runs"]:
        firsts.setdefault(run["executor"], run["kpi"])
    fig = Figure(figsize=(12, 3 + 2.2 * len(firsts)))
    grid = fig.add_gridspec(len(firsts), 2, width_ratios=[1, 2])
    bars = fig.add_subplot(grid[:, 0])
    names = list(table)
    medians = [table[n]["wall_s"]["median"] for n in names]
    errors = [[m - table[n]["wall_s"]["min"] for n, m in zip(names, medians)],
              [table[n]["wall_s"]["max"] - m for n, m in zip(names, medians)]]
    bars.bar(names, medians, yerr=errors, capsize=4, color="tab:blue")
    bars.set_ylabel("wall time (s), median with min-max")
    bars.set_title(f"{report['pipeline']} {report['command']}")
    for i, (name, kpi) in enumerate(firsts.items()):
        plot_timeline(kpi, fig.add_subplot(grid[i, 1]))
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "bench.png"), dpi=90)
    fig = Figure(figsize=(10, 3.8))
    wall, cost = fig.subplots(1, 2)
    ns = [r["n"] for r in report["projection"]]
    wall.plot(ns, [r["serverless_wall_s"] for r in report["projection"]], "o-", label="serverless (model)")
    wall.plot(ns, [r["spark_wall_s"] for r in report["projection"]], "s--", label="Spark cluster (model)")
    wall.set_xscale("log")
    wall.set_yscale("log")
    wall.set_xlabel("functions / Spark executors")
    wall.set_ylabel("projected wall (s)")
    wall.legend()
    cost.plot(ns, [r["serverless_cost_usd"] for r in report["projection"]], "o-", color="tab:green")
    cost.set_xscale("log")
    cost.set_xlabel("functions")
    cost.set_ylabel("projected serverless cost ($)")
    fig.suptitle("Scale projection: a model, not a measurement")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "projection.png"), dpi=90)


def run_bench(pipeline: Any, argv: Sequence[str], options: argparse.Namespace,
              common: argparse.ArgumentParser) -> dict[str, Any]:
    """Run ``pipeline``'s command (``argv[0]``) on every executor; write and return the report."""
    from .cli import options_from_args
    from .machine import describe

    folder = os.path.abspath(options.out)
    os.makedirs(folder, exist_ok=True)
    if not argv:
        if pipeline.sample is None:
            raise CloudbuttonError(f"pipeline {pipeline.name!r} has no sample data: give its arguments")
        argv = pipeline.sample(os.path.join(folder, "sample"))
    name, *rest = argv
    command = pipeline.commands.get(name)
    if command is None or command.fingerprint is None:
        raise CloudbuttonError(f"{pipeline.name} {name}: not a command that can be benchmarked "
                               f"(choose from {', '.join(n for n, c in pipeline.commands.items() if c.fingerprint)})")
    parser = argparse.ArgumentParser(prog=f"cloudbutton bench {pipeline.name} {name}", parents=[common])
    command.add_arguments(parser)
    placeholder = [] if "--out" in rest else ["--out", os.path.join(folder, "unused")]
    args = parser.parse_args([*rest, *placeholder])
    for key in ("workers", "memory", "lithops_config", "spark_master"):
        setattr(args, key, getattr(options, key))
    args.quiet = True

    def one(executor: str, workers: int, label: str) -> dict[str, Any]:
        run_dir = os.path.join(folder, "runs", label)
        args.out = os.path.join(run_dir, command.output_name)
        args.executor, args.workers, args.kpi = executor, workers, os.path.join(run_dir, "kpi.json")
        result = run_job(command.build(args), options_from_args(args))
        return {"executor": executor, "workers": workers, "label": label,
                "fingerprint": command.fingerprint(args.out), "kpi": result.kpi}

    executors = [e.strip() for e in options.executors.split(",") if e.strip()]
    runs = [one(e, options.workers, f"{e}-{i}") for e in executors for i in range(options.repeat)]
    checks = {w: one("processes", w, f"model-check-{w}w") for w in (1, 2)}
    fingerprints = {r["fingerprint"] for r in runs} | {r["fingerprint"] for r in checks.values()}
    source = next((r for r in runs if r["executor"] == "lithops"), runs[0])
    basis = next((r for r in runs if r["executor"] == "processes"), checks[2])
    spark = spark_model(runs, options.workers)
    model = ServerlessModel()
    report = {
        "pipeline": pipeline.name, "command": name, "argv": list(argv), "workers": options.workers,
        "repeat": options.repeat, "machine": describe(), "platform": platform.platform(),
        "identical": len(fingerprints) == 1, "fingerprint": sorted(fingerprints)[0],
        "table": summarise(runs), "runs": runs, "projection_source": source["label"],
        "projection": projection(source["kpi"], spark, model), "serverless_model": vars(model),
        "spark_model": vars(spark), "price_model": vars(PriceModel()),
        "validation": {"source": basis["label"], "rows": [
            {"workers": w, "predicted_s": (p := predict_local(basis["kpi"], w)),
             "measured_s": (m := checks[w]["kpi"]["run"]["wall_s"]), "error": (p - m) / m}
            for w in (1, 2)]},
    }
    with atomic_output(os.path.join(folder, "bench.json")) as tmp, open(tmp, "w") as handle:
        json.dump(report, handle, indent=1)
    _plots(report, folder)
    write_bench_page(report, folder)
    with atomic_output(os.path.join(folder, "bench.md")) as tmp, open(tmp, "w") as handle:
        handle.write(_markdown(report))
    if not report["identical"]:
        differing = {r["label"]: r["fingerprint"][:12] for r in [*runs, *checks.values()]}
        raise CloudbuttonError(f"outputs differ between executors: {differing} (see {folder}/bench.json)")
    return report
