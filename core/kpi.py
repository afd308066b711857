"""KPI recording (a :class:`~cloudbutton.core.hooks.Hook`), the cost model and the kpi.json schema.

kpi.json (schema ``cloudbutton.kpi/1``) holds ``run`` (totals), ``price_model``,
``stages`` (one summary per stage) and ``tasks`` (one record per task attempt);
see the README for every field.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from .hooks import Hook

SCHEMA = "cloudbutton.kpi/1"


@dataclass(frozen=True)
class PriceModel:
    """Serverless price: per request plus per GB-second of configured memory, billed per ``billing_ms``.

    The default is AWS Lambda x86 in us-east-1: $0.20 per million requests and
    $0.0000166667 per GB-second, duration rounded up to 1 ms.
    """

    name: str = "aws-lambda-x86"
    usd_per_request: float = 2e-7
    usd_per_gb_s: float = 0.0000166667
    billing_ms: int = 1

    def billed_seconds(self, duration_s: float) -> float:
        """Duration rounded up to the billing granularity."""
        step = self.billing_ms / 1000
        return math.ceil(round(duration_s / step, 9)) * step

    def cost(self, attempts: list[dict[str, Any]]) -> tuple[float, float]:
        """(GB-seconds, dollars) of a list of task attempts."""
        gb_s = sum(a["memory_mb"] / 1024 * self.billed_seconds(a["duration_s"]) for a in attempts)
        return gb_s, len(attempts) * self.usd_per_request + gb_s * self.usd_per_gb_s


def _distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0, "sum": 0.0, "min": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)
    return {
        "count": len(ordered), "sum": sum(ordered), "min": ordered[0],
        "median": statistics.median(ordered), "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1], "mean": sum(ordered) / len(ordered),
    }


def _totals(attempts: list[dict[str, Any]], wall: float, workers: int, prices: PriceModel) -> dict[str, Any]:
    busy = sum(a["duration_s"] for a in attempts)
    gb_s, usd = prices.cost(attempts)
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
        "gb_s": gb_s,
        "cost_usd": usd,
    }


class KPIRecorder(Hook):
    """Collects task attempts and stage timings; :meth:`report` builds the kpi.json content."""

    def __init__(self, prices: PriceModel | None = None):
        self.prices = prices or PriceModel()
        self.attempts: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}

    def run_start(self, *, graph: str, executor: str, workers: int, options: dict[str, Any]) -> None:
        self.info = {"graph": graph, "executor": executor, "workers": workers, "options": options,
                     "started": time.time(), "start_cost_s": 0.0}

    def executor_started(self, *, seconds: float) -> None:
        self.info["start_cost_s"] = seconds

    def stage_start(self, *, stage: str, kind: str, tasks: int, memory_mb: int) -> None:
        self.stages.append({"name": stage, "kind": kind, "partitions": tasks, "memory_mb": memory_mb,
                            "start_ts": time.time(), "end_ts": None})

    def task_end(self, *, stage: str, partition: int, attempts: list[dict[str, Any]]) -> None:
        self.attempts.extend(attempts)

    def stage_end(self, *, stage: str) -> None:
        self.stages[-1]["end_ts"] = time.time()

    def run_end(self, *, ok: bool) -> None:
        self.info["ended"] = time.time()
        self.info["ok"] = ok

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
        run.update(_totals(self.attempts, self.info["ended"] - self.info["started"], workers, self.prices))
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
    width = max([len("stage")] + [len(s["name"]) for s in kpi["stages"]]) + 2
    lines.append(f"  {'stage':<{width}}{'kind':<9}{'tasks':>6}{'wall s':>9}{'median s':>10}{'max s':>8}"
                 f"{'eff':>6}{'GB-s':>9}")
    for s in kpi["stages"]:
        t = s["task_time_s"]
        lines.append(f"  {s['name']:<{width}}{s['kind']:<9}{s['tasks']:>6}{s['wall_s']:>9.2f}{t['median']:>10.3f}"
                     f"{t['max']:>8.2f}{s['parallel_efficiency']:>6.0%}{s['gb_s']:>9.3f}")
    return "\n".join(lines)


COMPARED = ("wall_s", "start_cost_s", "cpu_s", "parallel_efficiency", "peak_rss_bytes",
            "bytes_read", "bytes_written", "gb_s", "cost_usd")


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Side-by-side run totals and per-stage wall times of two kpi.json documents, with B/A ratios."""
    ra, rb = a["run"], b["run"]
    lines = [f"A: {ra['graph']} on {ra['executor']}   B: {rb['graph']} on {rb['executor']}",
             f"  {'metric':<22}{'A':>14}{'B':>14}{'B/A':>9}"]

    def row(name: str, x: float, y: float) -> None:
        ratio = f"{y / x:.2f}x" if x else "-"
        lines.append(f"  {name:<22}{x:>14.4g}{y:>14.4g}{ratio:>9}")

    for key in COMPARED:
        row(key, ra[key], rb[key])
    row("task_time_s (sum)", ra["task_time_s"]["sum"], rb["task_time_s"]["sum"])
    b_stages = {s["name"]: s for s in b["stages"]}
    for s in a["stages"]:
        if s["name"] in b_stages:
            row(f"stage {s['name']} wall_s", s["wall_s"], b_stages[s["name"]]["wall_s"])
    return "\n".join(lines)
