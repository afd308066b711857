"""KPI recording (a :class:`~cloudbutton.core.hooks.Hook`) and the kpi.json schema; prices in :mod:`.cost`.

kpi.json (schema ``cloudbutton.kpi/1``) holds ``run`` (totals), ``price_model``,
``stages`` (one summary per stage) and ``tasks`` (one record per task attempt);
see the README for every field.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict
from typing import Any

from . import storage
from .cost import PriceModel, add_requests
from .hooks import Hook

SCHEMA = "cloudbutton.kpi/1"


def _distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0, "sum": 0.0, "min": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)
    return {
        "count": len(ordered), "sum": sum(ordered), "min": ordered[0],
        "median": statistics.median(ordered), "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1], "mean": sum(ordered) / len(ordered),
    }


def _totals(attempts: list[dict[str, Any]], wall: float, workers: int, prices: PriceModel,
            driver_requests: dict[str, int] | None = None) -> dict[str, Any]:
    busy = sum(a["duration_s"] for a in attempts)
    cost = prices.cost(attempts, driver_requests)
    return {
        "wall_s": wall,
        "tasks": len({(a["stage"], a["partition"]) for a in attempts}),
        "attempts": len(attempts),
        "retries": sum(1 for a in attempts if a["attempt"] > 0),
        "task_time_s": _distribution([a["duration_s"] for a in attempts]),
        "cpu_s": sum(a["cpu_s"] for a in attempts),
        "parallel_efficiency": busy / (wall * workers) if wall > 0 and workers else 0.0,
        "peak_rss_bytes": max((a["peak_rss_bytes"] for a in attempts), default=0),
        "bytes_read": sum(a["bytes_read"] for a in attempts),
        "bytes_written": sum(a["bytes_written"] for a in attempts),
        "cold_starts": sum(1 for a in attempts if a["cold_start"]),
        "requests": add_requests([a.get("requests", {}) for a in attempts] + [driver_requests or {}]),
        **cost,
    }


class KPIRecorder(Hook):
    """Collects task attempts and stage timings; :meth:`report` builds the kpi.json content."""

    def __init__(self, prices: PriceModel | None = None):
        self.prices = prices or PriceModel()
        self.attempts: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.driver_start: dict[str, int] = {}
        self.driver_requests: dict[str, int] = {}

    def run_start(self, *, graph: str, executor: str, workers: int, options: dict[str, Any]) -> None:
        self.info = {"graph": graph, "executor": executor, "workers": workers, "options": options,
                     "started": time.time(), "start_cost_s": 0.0}
        self.driver_start = storage.requests()  # the driver's own storage calls (plans, manifests, outputs)

    def executor_started(self, *, seconds: float) -> None:
        self.info["start_cost_s"] = seconds

    def stage_start(self, *, stage: str, kind: str, tasks: int, memory_mb: int) -> None:
        self.stages.append({"name": stage, "kind": kind, "partitions": tasks, "memory_mb": memory_mb,
                            "start_ts": time.time(), "end_ts": None})

    def task_end(self, *, stage: str, partition: int, attempts: list[dict[str, Any]]) -> None:
        driver = f":{os.getpid()}:"
        for attempt in attempts:  # a task in the driver's own process (threads) had no function to start
            if driver in attempt.get("worker", ""):
                attempt["init_s"] = 0.0
        self.attempts.extend(attempts)

    def stage_end(self, *, stage: str) -> None:
        self.stages[-1]["end_ts"] = time.time()

    def run_end(self, *, ok: bool) -> None:
        self.info["ended"] = time.time()
        self.info["ok"] = ok
        now = storage.requests()
        self.driver_requests = {kind: n - self.driver_start.get(kind, 0) for kind, n in now.items()}

    def report(self) -> dict[str, Any]:
        """The kpi.json document of the run."""
        workers = self.info["workers"]
        stages = []
        for stage in self.stages:
            mine = [a for a in self.attempts if a["stage"] == stage["name"]]
            wall = (stage["end_ts"] or time.time()) - stage["start_ts"]
            stages.append({**stage, **_totals(mine, wall, workers, self.prices)})
        run = {key: self.info[key] for key in ("graph", "executor", "workers", "started", "ended", "ok",
                                               "start_cost_s", "options")}
        run.update(_totals(self.attempts, self.info["ended"] - self.info["started"], workers, self.prices,
                           self.driver_requests))
        run["driver_requests"] = self.driver_requests
        return {"schema": SCHEMA, "run": run, "price_model": asdict(self.prices),
                "stages": stages, "tasks": sorted(self.attempts, key=lambda a: (a["start_ts"], a["stage"]))}


def _bytes(n: float) -> str:
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1024
        if abs(n) < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GB"


def request_line(requests: dict[str, int]) -> str:
    """``GET 12, HEAD 3, PUT 4`` (kinds with a count only), or ``none``."""
    return ", ".join(f"{kind.upper()} {n}" for kind, n in requests.items() if n) or "none"


def summary(kpi: dict[str, Any]) -> str:
    """A readable multi-line summary of a kpi.json document."""
    run = kpi["run"]
    lines = [
        f"{run['graph']} on {run['executor']} ({run['workers']} workers): "
        f"wall {run['wall_s']:.2f} s (start cost {run['start_cost_s']:.2f} s), "
        f"{run['tasks']} tasks, {run['retries']} retries",
        f"  task time {run['task_time_s']['sum']:.2f} s, CPU {run['cpu_s']:.2f} s, "
        f"parallel efficiency {run['parallel_efficiency']:.0%}, peak RSS/task {_bytes(run['peak_rss_bytes'])}",
        f"  read {_bytes(run['bytes_read'])}, written {_bytes(run['bytes_written'])}, "
        f"{run['gb_s']:.3f} GB-s, ${run['cost_usd']:.6f} ({kpi['price_model']['name']})",
    ]
    if run.get("ok") is False:  # a failed or interrupted run (kpi.json written by the runner all the same)
        lines.insert(0, f"FAILED: {run.get('error') or 'unknown error'}")
    if run.get("reused_tasks"):
        lines.append(f"  resumed: {run['reused_tasks']} finished task(s) reused from the run folder")
    if "requests" in run:  # kpi.json files before request counting have none
        lines.append(f"  storage requests {request_line(run['requests'])}: ${run['requests_usd']:.6f} "
                     f"of the cost (compute ${run['compute_usd']:.6f})")
    width = max([len("stage")] + [len(s["name"]) for s in kpi["stages"]]) + 2
    lines.append(f"  {'stage':<{width}}{'kind':<9}{'tasks':>6}{'wall s':>9}{'median s':>10}{'max s':>8}"
                 f"{'eff':>6}{'GB-s':>9}")
    for s in kpi["stages"]:
        t = s["task_time_s"]
        lines.append(f"  {s['name']:<{width}}{s['kind']:<9}{s['tasks']:>6}{s['wall_s']:>9.2f}{t['median']:>10.3f}"
                     f"{t['max']:>8.2f}{s['parallel_efficiency']:>6.0%}{s['gb_s']:>9.3f}")
    return "\n".join(lines)


COMPARED = ("wall_s", "start_cost_s", "cpu_s", "parallel_efficiency", "peak_rss_bytes",
            "bytes_read", "bytes_written", "gb_s", "requests_usd", "cost_usd")


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Side-by-side run totals and per-stage wall times of two kpi.json documents, with B/A ratios."""
    ra, rb = a["run"], b["run"]
    lines = [f"A: {ra['graph']} on {ra['executor']}   B: {rb['graph']} on {rb['executor']}",
             f"  {'metric':<22}{'A':>14}{'B':>14}{'B/A':>9}"]

    def row(name: str, x: float, y: float) -> None:
        ratio = f"{y / x:.2f}x" if x else "-"
        lines.append(f"  {name:<22}{x:>14.4g}{y:>14.4g}{ratio:>9}")

    for key in COMPARED:
        row(key, ra.get(key, 0.0), rb.get(key, 0.0))
    row("task_time_s (sum)", ra["task_time_s"]["sum"], rb["task_time_s"]["sum"])
    b_stages = {s["name"]: s for s in b["stages"]}
    for s in a["stages"]:
        if s["name"] in b_stages:
            row(f"stage {s['name']} wall_s", s["wall_s"], b_stages[s["name"]]["wall_s"])
    return "\n".join(lines)
