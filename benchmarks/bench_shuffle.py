"""Shuffle benchmark: all-to-all and sparse shuffles of small records on every executor, and PySpark's own.

Cases (N map tasks x M buckets, small records):

* all-to-all N x N (N = 100, 500): map task i sends one record to every bucket;
  threads, processes, lithops (localhost) and the same shuffle written natively in
  PySpark (``groupByKey``, ``local[2]``, session start excluded), in the same run;
* 100 x 1,000 all-to-all on Lithops (the case that failed at submission before);
* sparse 2,000 x 2,000: map task i sends 5 records to 5 buckets.

Each case runs in its own process, so the driver's peak RSS (``ru_maxrss``) is
the case's own.  Writes benchmarks/results/shuffle.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from cloudbutton.core import Graph, RunOptions, run
from cloudbutton.core.kpi import request_line
from cloudbutton.core.machine import describe

RESULTS = Path(__file__).resolve().parent / "results"
SPARSE_FANOUT = 5
CASES = [  # (label, maps, buckets, fan-out or None for all-to-all, executors)
    ("all-to-all 100 x 100", 100, 100, None, ("threads", "processes", "lithops", "spark")),
    ("all-to-all 500 x 500", 500, 500, None, ("threads", "processes", "lithops", "spark")),
    ("all-to-all 100 x 1,000", 100, 1000, None, ("lithops",)),
    ("sparse 2,000 x 2,000", 2000, 2000, SPARSE_FANOUT, ("threads", "processes")),
]


def records(task: int, *, buckets: int, fanout: int | None) -> list[tuple[int, tuple[int, int]]]:
    """Map task ``task``: one small record per bucket, or ``fanout`` records to buckets spread over the range."""
    keys = range(buckets) if fanout is None else [(task * 7919 + k * (buckets // fanout)) % buckets
                                                  for k in range(fanout)]
    return [(key, (task, key)) for key in keys]


def group_size(group: dict[int, list[tuple[int, int]]]) -> tuple[int, int]:
    """Bucket task: records received (summed by the driver to check completeness)."""
    return len(group), sum(len(values) for values in group.values())


def graph(maps: int, buckets: int, fanout: int | None) -> Graph:
    g = Graph(f"shuffle{maps}x{buckets}")
    g.map("emit", records, over=list(range(maps)), params={"buckets": buckets, "fanout": fanout})
    g.shuffle("by_key", over="emit", partitions=buckets)
    g.map("group", group_size, over="by_key")
    return g


def run_core(executor: str, maps: int, buckets: int, fanout: int | None) -> dict:
    result = run(graph(maps, buckets, fanout), RunOptions(executor=executor, workers=2, quiet=True))
    kpi = result.kpi
    stages = {s["name"]: s["wall_s"] for s in kpi["stages"]}
    return {"wall_s": kpi["run"]["wall_s"] - kpi["run"]["start_cost_s"], "records": sum(n for _, n in result.value),
            "requests": kpi["run"]["requests"], "requests_usd": kpi["run"]["requests_usd"],
            "map_s": stages["emit"], "bucket_s": stages["group"]}


def run_spark(maps: int, buckets: int, fanout: int | None) -> dict:
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("shuffle-bench").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    started = time.time()
    pairs = spark.sparkContext.parallelize(range(maps), maps).flatMap(
        lambda task: records(task, buckets=buckets, fanout=fanout))
    sizes = pairs.groupByKey(numPartitions=buckets).mapValues(len).values().collect()
    wall = time.time() - started
    spark.stop()
    return {"wall_s": wall, "records": sum(sizes), "requests": {}, "requests_usd": 0.0}


def one_case(executor: str, maps: int, buckets: int, fanout: int | None) -> dict:
    row = run_spark(maps, buckets, fanout) if executor == "spark" else run_core(executor, maps, buckets, fanout)
    row["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def measure(label: str, maps: int, buckets: int, fanout: int | None, executor: str) -> dict:
    """Run one case in a fresh interpreter (its own driver RSS); return its row."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable}
    out = subprocess.run([sys.executable, __file__, "--one", executor, str(maps), str(buckets), str(fanout or 0)],
                         capture_output=True, text=True, env=env, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    expected = maps * (buckets if fanout is None else fanout)
    assert row["records"] == expected, (label, executor, row["records"], expected)
    return {"case": label, "executor": executor, **row}


def write_results(rows: list[dict], machine: str, started: float) -> None:
    spark = {r["case"]: r["wall_s"] for r in rows if r["executor"] == "spark"}
    lines = ["# Shuffle benchmark", "", machine,
             "Workers: 2 per run; one run per cell (the machine is shared with other jobs, so walls vary by tens of "
             "percent from run to run: compare cells of the same run, not across runs). Wall excludes the executor's "
             "start (pools, Lithops client, Spark session). Lithops: localhost backend v1 with localhost storage, so "
             "its storage calls are counted as requests; threads/processes use the same layout on local files "
             "(one spill file per map task, one manifest), which are files, not requests.", "",
             "| case | executor | wall (s) | vs PySpark groupByKey | map stage (s) | bucket stage (s) | "
             "storage requests | $ requests | driver peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['wall_s'] / spark[r['case']]:.2f}×" if r["case"] in spark and r["executor"] != "spark" else "-"
        lines.append(f"| {r['case']} | {r['executor']} | {r['wall_s']:.2f} | {ratio} | {r.get('map_s', 0):.2f} | "
                     f"{r.get('bucket_s', 0):.2f} | {request_line(r['requests'])} | {r['requests_usd']:.6f} | "
                     f"{r['driver_peak_rss_mb']:.0f} |")
    lines += ["", "Storage requests of the object-storage layout for N map tasks and M bucket tasks: N PUTs (one "
              "object per map task), N GETs of the map objects' offset indexes by the driver, 1 manifest PUT (+ its "
              "HEAD), and per bucket task 1 manifest GET + one ranged GET per map object that sent it data, none for an "
              "empty bucket: N + 1 + N + M + (non-empty map/bucket pairs). The old layout wrote one object per "
              "non-empty map/bucket pair (N x M PUTs and files).", "",
             f"Total benchmark time {time.time() - started:.0f} s. Run: `python benchmarks/bench_shuffle.py`."]
    (RESULTS / "shuffle.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=4, metavar=("EXECUTOR", "MAPS", "BUCKETS", "FANOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        executor, maps, buckets, fanout = args.one[0], *map(int, args.one[1:])
        print(json.dumps(one_case(executor, maps, buckets, fanout or None)))
        return
    started, machine = time.time(), describe()
    rows = []
    for label, maps, buckets, fanout, executors in CASES:
        for executor in executors:
            rows.append(measure(label, maps, buckets, fanout, executor))
            print(f"{label:>24} {executor:>10}: {rows[-1]['wall_s']:7.2f} s, "
                  f"driver {rows[-1]['driver_peak_rss_mb']:.0f} MB", flush=True)
    write_results(rows, machine, started)


if __name__ == "__main__":
    main()
