"""Executor overhead: 100 and 1000 no-op tasks, and a 2-stage graph, on every executor.

Per-task cost is the slope between the 100- and 1000-task stage wall times;
the fixed cost per stage is what remains of the 100-task wall; the executor's
start cost (pools, Spark session, Lithops client) is reported separately.
Writes benchmarks/results/executors.md and executors.png.
"""
from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from cloudbutton.core import Graph, RunOptions, run
from cloudbutton.core.machine import describe

RESULTS = Path(__file__).resolve().parent / "results"
EXECUTORS = ("threads", "processes", "lithops", "spark")


def noop(item: int) -> None:
    """A task that does nothing: what remains is the executor's overhead."""


def total(items: list[None]) -> int:
    return len(items)


def one_stage(n: int) -> Graph:
    return Graph(f"noop{n}").map("noop", noop, over=list(range(n)))


def two_stage(n: int) -> Graph:
    return Graph(f"map-reduce{n}").map("noop", noop, over=list(range(n))).reduce("total", total, over="noop")


def measure(executor: str, workers: int, repeat: int) -> dict[str, float]:
    """Median stage walls and start costs of one executor."""
    options = RunOptions(executor=executor, workers=workers, quiet=True)
    first = run(one_stage(10), options).kpi["run"]["start_cost_s"]  # warm-up; first start is the cold one
    walls: dict[str, list[float]] = {"100": [], "1000": [], "two_stage": [], "start": []}
    for _ in range(repeat):
        for n in (100, 1000):
            kpi = run(one_stage(n), options).kpi
            walls[str(n)].append(kpi["stages"][0]["wall_s"])
            walls["start"].append(kpi["run"]["start_cost_s"])
        kpi = run(two_stage(100), options).kpi
        walls["two_stage"].append(kpi["run"]["wall_s"] - kpi["run"]["start_cost_s"])
    med = {key: statistics.median(values) for key, values in walls.items()}
    per_task = (med["1000"] - med["100"]) / 900
    return {"first_start_s": first, "start_s": med["start"], "wall100_s": med["100"], "wall1000_s": med["1000"],
            "per_task_ms": per_task * 1e3, "fixed_per_stage_s": max(0.0, med["100"] - 100 * per_task),
            "two_stage_s": med["two_stage"]}


def write_results(rows: dict[str, dict[str, float]], workers: int, repeat: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    lines = [
        "# Executor overhead", "",
        f"{describe()} Workers: {workers}; median of {repeat} repeats; made by `benchmarks/bench_executors.py`"
        " (`make bench`).", "",
        "| executor | first start (s) | start, warm (s) | 100 tasks (s) | 1000 tasks (s) | per task (ms) "
        "| fixed per stage (s) | 2-stage map+reduce, 100 tasks (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['first_start_s']:.3f} | {r['start_s']:.3f} | {r['wall100_s']:.3f} "
                     f"| {r['wall1000_s']:.3f} | {r['per_task_ms']:.3f} | {r['fixed_per_stage_s']:.3f} "
                     f"| {r['two_stage_s']:.3f} |")
    lines += ["", "Per task = (wall of 1000 tasks − wall of 100 tasks) / 900, stage walls as recorded in kpi.json;",
              "fixed per stage = wall of 100 tasks − 100 × per task. Targets: threads ≤ 0.1 ms, processes ≤ 1 ms.",
              "Lithops runs its localhost backend (version 1, this interpreter); Spark runs `local[N]`, its session",
              "started once per process (\"first start\") and reused.", "", "![executor overhead](executors.png)", ""]
    (RESULTS / "executors.md").write_text("\n".join(lines))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = list(rows)
    left.bar(names, [rows[n]["per_task_ms"] for n in names], color="tab:blue")
    left.set_yscale("log")
    left.set_ylabel("ms per task (log)")
    left.set_title("per-task overhead")
    right.bar(names, [rows[n]["first_start_s"] for n in names], color="tab:orange", label="executor first start")
    right.bar(names, [rows[n]["fixed_per_stage_s"] for n in names], bottom=[rows[n]["first_start_s"] for n in names],
              color="tab:green", label="fixed per stage")
    right.set_ylabel("seconds")
    right.set_title("fixed costs")
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "executors.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executors", default=",".join(EXECUTORS))
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = {}
    for executor in args.executors.split(","):
        rows[executor] = measure(executor, args.workers, args.repeat)
        print(executor, {k: round(v, 4) for k, v in rows[executor].items()}, flush=True)
    write_results(rows, args.workers, args.repeat)


if __name__ == "__main__":
    main()
