"""A scale model, labelled as one: wall time and cost of a measured run at 1-1000 serverless
functions against a Spark cluster of K executors.

Inputs are the measured per-task durations, bytes and memory of a kpi.json.
Each stage is list-scheduled (tasks in partition order onto the first free
slot) because stages run one after another.  Parameters and their sources:

- ``invocation_s`` 0.1 s per stage: the submit-to-start lag of one call of a
  warm function (Lithops TCC 2021: thousands of functions spawn "in a few
  seconds"; ../shared/research/core.md section 4).
- ``cold_start_s`` 2 s, paid once per function on its first stage (WoSC7 d6:
  "≤ 2 s cold start"; same note).
- ``bandwidth_mb_s`` 80 MB/s per function to object storage: an assumption,
  not measured here (typical of Lambda to S3); each task's bytes read and
  written are moved at this rate on top of its measured local duration.
- Prices: the run's own price model (default AWS Lambda x86).
- Spark: the session start and per-task overhead measured by
  ``benchmarks/bench_executors.py`` on this machine, tasks as measured.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from .kpi import PriceModel


@dataclass(frozen=True)
class ServerlessModel:
    """Parameters of the serverless side of the model (see the module docstring for sources)."""

    invocation_s: float = 0.1
    cold_start_s: float = 2.0
    bandwidth_mb_s: float = 80.0


@dataclass(frozen=True)
class SparkModel:
    """A Spark cluster: session start and per-task scheduling overhead (measured locally)."""

    start_s: float = 8.5
    per_task_s: float = 0.027


def makespan(durations: list[float], slots: int) -> float:
    """Finish time of ``durations`` list-scheduled in order onto ``slots`` identical slots."""
    free = [0.0] * max(1, min(slots, len(durations)))
    for duration in durations:
        heapq.heapreplace(free, free[0] + duration)
    return max(free) if durations else 0.0


def stage_tasks(kpi: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The successful attempt of every task, grouped by stage in run order."""
    stages: dict[str, list[dict[str, Any]]] = {s["name"]: [] for s in kpi["stages"]}
    for task in kpi["tasks"]:
        if task["status"] == "ok":
            stages[task["stage"]].append(task)
    return {name: sorted(tasks, key=lambda t: t["partition"]) for name, tasks in stages.items()}


def project_serverless(kpi: dict[str, Any], functions: int, model: ServerlessModel,
                       prices: PriceModel | None = None) -> dict[str, float]:
    """Projected wall time (s) and cost ($) of the run on ``functions`` concurrent functions."""
    prices = prices or PriceModel(**{k: v for k, v in kpi["price_model"].items()})
    wall, attempts, warm = 0.0, [], 0
    for tasks in stage_tasks(kpi).values():
        durations = [t["duration_s"] + (t["bytes_read"] + t["bytes_written"]) / (model.bandwidth_mb_s * 1e6)
                     for t in tasks]
        used = min(functions, len(tasks))
        cold = model.cold_start_s if used > warm else 0.0
        warm = max(warm, used)
        wall += model.invocation_s + cold + makespan(durations, functions)
        attempts += [{"memory_mb": t["memory_mb"], "duration_s": d, "requests": t.get("requests", {})}
                     for t, d in zip(tasks, durations)]
    cost = prices.cost(attempts, kpi["run"].get("driver_requests"))
    return {"wall_s": wall, "gb_s": cost["gb_s"], "cost_usd": cost["cost_usd"]}


def project_spark(kpi: dict[str, Any], executors: int, model: SparkModel) -> dict[str, float]:
    """Projected wall time (s) of the run on a Spark cluster with ``executors`` task slots."""
    wall = model.start_s + sum(makespan([t["duration_s"] + model.per_task_s for t in tasks], executors)
                               for tasks in stage_tasks(kpi).values())
    return {"wall_s": wall}


def stage_overheads(kpi: dict[str, Any]) -> dict[str, float]:
    """Per stage, the wall time not explained by list-scheduling its tasks: submit, driver and gaps."""
    workers = kpi["run"]["workers"]
    walls = {s["name"]: s["wall_s"] for s in kpi["stages"]}
    return {name: max(0.0, walls[name] - makespan([t["duration_s"] for t in tasks], workers))
            for name, tasks in stage_tasks(kpi).items()}


def predict_local(kpi: dict[str, Any], workers: int) -> float:
    """Predicted wall (s) of the same graph on ``workers`` local workers, from another run's task
    durations and per-stage overheads (how the model is checked against measured runs)."""
    overheads = stage_overheads(kpi)
    return kpi["run"]["start_cost_s"] + sum(overheads[name] + makespan([t["duration_s"] for t in tasks], workers)
                                            for name, tasks in stage_tasks(kpi).items())
