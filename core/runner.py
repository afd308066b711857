"""Run a :class:`~cloudbutton.core.graph.Graph` on an executor, stage by stage, with KPIs."""
from __future__ import annotations

import json
import os
import pickle
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import storage
from .errors import TaskFailed
from .executors import ExecutorSettings, create_executor
from .executors.base import local_scratch
from .graph import Graph, Stage
from .hooks import Hook, ProgressHook
from .kpi import KPIRecorder, PriceModel
from .retry import run_with_retries
from .shuffle import plan_buckets
from .tasks import Gather, ShuffleInput, SideInput, TaskSpec
from .timeline import write_chrome_trace, write_timeline_png


@dataclass
class RunOptions:
    """How to run a graph (the CLI's common options).

    Parameters
    ----------
    executor : str
        ``threads`` (default), ``processes``, ``lithops`` or ``spark``.
    workers : int, optional
        Parallel tasks; default the CPU count.
    memory_mb : int
        Memory per task: Lithops function size and the cost model's GB-seconds.
    retries : int
        Extra attempts for a failing task (default 2).
    task_timeout_s : float, optional
        Time limit of one task attempt.
    lithops_config : str or dict, optional
        Lithops config file or dict (default: localhost backend, version 1, this interpreter).
    spark_master : str, optional
        Spark master URL (default ``local[workers]``).
    scratch : str, optional
        URI prefix for intermediates of remote executors (default: the executor's choice).
    kpi_path : str, optional
        Where to write kpi.json (plus ``.timeline.png`` and ``.trace.json`` beside it).
    output : str, optional
        The job's main output, recorded in kpi.json (``run.options.output``) for its report.
    quiet : bool
        No progress bars.
    prices : PriceModel
        Cost model (default AWS Lambda x86).
    """

    executor: str = "threads"
    workers: int | None = None
    memory_mb: int = 1024
    retries: int = 2
    task_timeout_s: float | None = None
    lithops_config: str | dict[str, Any] | None = None
    spark_master: str | None = None
    scratch: str | None = None
    kpi_path: str | None = None
    output: str | None = None
    quiet: bool = False
    prices: PriceModel = field(default_factory=PriceModel)


@dataclass
class RunResult:
    """The last stage's output, the run's KPI document and where it was written."""

    value: Any
    kpi: dict[str, Any]
    kpi_path: str | None = None


def load_lithops_config(config: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Read a Lithops YAML config; pin localhost runs to version 1 and this interpreter."""
    if config is None:
        return None
    if not isinstance(config, dict):
        import yaml

        with open(config) as handle:
            config = yaml.safe_load(handle) or {}
    config = {key: dict(value) if isinstance(value, dict) else value for key, value in config.items()}
    if config.get("lithops", {}).get("backend", "localhost") == "localhost":
        config.setdefault("localhost", {}).setdefault("runtime", sys.executable)
        config["localhost"].setdefault("version", 1)
    return config


def write_kpi(kpi: dict[str, Any], path: str) -> None:
    """Write kpi.json and, beside it, the timeline PNG and the Chrome trace."""
    stem = path[:-5] if path.endswith(".json") else path
    with storage.atomic_output(path) as tmp:
        with open(tmp, "w") as handle:
            json.dump(kpi, handle, indent=1)
    with storage.atomic_output(stem + ".timeline.png") as tmp:
        write_timeline_png(kpi, tmp)
    with storage.atomic_output(stem + ".trace.json") as tmp:
        write_chrome_trace(kpi, tmp)


#: Task inputs bigger than this (pickled) are stored in scratch and passed as a Ref.
INLINE_LIMIT = 256 * 1024


def _by_reference(value: Any, uri: str) -> Any:
    """``value`` itself when small, else a Ref to it stored at ``uri``."""
    if isinstance(value, (storage.Ref, Gather, ShuffleInput)):
        return value
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= INLINE_LIMIT:
        return value
    storage.write_bytes(uri, data)
    return storage.Ref(uri, len(data))


def _input_bytes(spec: TaskSpec) -> int:
    """Stored bytes a task will read from its shuffle bucket (0 when unknown, e.g. in memory)."""
    return spec.item.nbytes if isinstance(spec.item, ShuffleInput) else 0


class _Run:
    """One execution of a graph: owns the executor, hooks and stage outputs."""

    def __init__(self, graph: Graph, options: RunOptions, hooks: Sequence[Hook]):
        self.graph, self.options = graph, options
        self.workers = options.workers or os.cpu_count() or 1
        self.lithops_config = load_lithops_config(options.lithops_config)
        self.executor = create_executor(options.executor, ExecutorSettings(
            self.workers, options.memory_mb, self.lithops_config, options.spark_master, options.task_timeout_s,
            options.retries))
        self.hooks = list(hooks)
        self.outputs: dict[str, list[Any]] = {}
        self.run_id = uuid.uuid4().hex[:12]
        self.scratch: str | None = None
        # An executor that keeps intermediates in memory still spills shuffle buckets to local files,
        # so the driver does not hold a whole data set between two stages.
        self.spill: str | None = None

    def emit(self, event: str, **kwargs: Any) -> None:
        for hook in self.hooks:
            getattr(hook, event)(**kwargs)

    def execute(self) -> Any:
        started = time.time()
        self.executor.start()
        self.emit("executor_started", seconds=time.time() - started)
        if self.executor.remote:
            self.scratch = (f"{self.options.scratch.rstrip('/')}/{self.run_id}" if self.options.scratch
                            else self.executor.scratch_uri(self.run_id))
        elif any(stage.kind == "shuffle" for stage in self.graph.stages.values()):
            self.spill = local_scratch(self.run_id)
        for stage in self.graph.stages.values():
            self.outputs[stage.name] = self._stage(stage)
        final = self.outputs[self.graph.last.name]
        values = [storage.load(v) if isinstance(v, storage.Ref) else v for v in final]
        return values[0] if self.graph.last.kind == "reduce" else values

    def _inputs(self, stage: Stage) -> list[Any]:
        if stage.upstream is None:
            return self.graph.source_items(stage)
        upstream = self.outputs[stage.upstream]
        return [Gather(tuple(upstream))] if stage.kind == "reduce" else list(upstream)

    def _stage(self, stage: Stage) -> list[Any]:
        if stage.kind == "shuffle":  # no tasks: bucket j of every upstream task forms partition j
            return plan_buckets(self.outputs[stage.upstream or ""], stage.partitions or 1,  # core/shuffle.py
                                f"{self.scratch or self.spill}/{stage.name}/manifest.bin")
        items = self._inputs(stage)
        side = {name: SideInput(tuple(self.outputs[dep]), self.graph.stages[dep].kind == "reduce")
                for name, dep in stage.side.items()}
        shuffle = self.graph.shuffle_after(stage.name)
        spill_to = self.scratch or (self.spill if shuffle else None)
        spill = spill_to is not None and stage is not self.graph.last
        memory = stage.memory_mb or self.options.memory_mb
        params: Any = stage.params
        if self.scratch is not None:  # large inputs travel by reference (Lithops caps a job's task data at 4 MiB)
            params = _by_reference(params, f"{self.scratch}/{stage.name}/params.pkl")
            items = [_by_reference(item, f"{self.scratch}/{stage.name}/input-{i}.pkl") for i, item in enumerate(items)]
        now = time.time()
        specs = [TaskSpec(stage.name, i, stage.fn, item, params, side,
                          self.options.retries, self.options.task_timeout_s,
                          f"{spill_to}/{stage.name}/{i}.pkl" if spill else None,
                          shuffle.partitions if shuffle else None, memory, self.lithops_config, now)
                 for i, item in enumerate(items)]
        specs.sort(key=_input_bytes, reverse=True)  # largest first: a shorter tail (results keep their order)
        self.emit("stage_start", stage=stage.name, kind=stage.kind, tasks=len(specs), memory_mb=memory)
        results: list[Any] = [None] * len(specs)
        for position, outcome in run_with_retries(self.executor, specs, memory_mb=memory):
            index = specs[position].partition
            self.emit("task_end", stage=stage.name, partition=index, attempts=outcome.attempts)
            if outcome.error is not None:
                if outcome.input_error is not None:
                    raise outcome.input_error
                raise TaskFailed(stage.name, index, max(1, len(outcome.attempts)), outcome.error, outcome.traceback)
            results[index] = outcome.value
        self.emit("stage_end", stage=stage.name)
        return results


def run(graph: Graph, options: RunOptions | None = None, *, hooks: Sequence[Hook] = ()) -> RunResult:
    """Run ``graph`` and return the last stage's output with the run's KPIs.

    Parameters
    ----------
    graph : Graph
        The stages to run, in declaration order.
    options : RunOptions, optional
        Executor, workers, retries, KPI path...; defaults to threads on every CPU.
    hooks : sequence of Hook
        Extra observers, called after the KPI recorder and the progress bars.

    Returns
    -------
    RunResult
        ``value`` is the last stage's output (a list for a map stage).  kpi.json
        is written only when the run succeeds and ``options.kpi_path`` is set.
    """
    options = options or RunOptions()
    recorder = KPIRecorder(options.prices)
    job = _Run(graph, options, [recorder, ProgressHook(options.quiet), *hooks])
    storage.configure(job.lithops_config)
    job.emit("run_start", graph=graph.name, executor=options.executor, workers=job.workers,
             options={"memory_mb": options.memory_mb, "retries": options.retries,
                      "task_timeout_s": options.task_timeout_s,
                      "spark_master": getattr(job.executor, "master", None), "output": options.output})
    ok = False
    try:
        value = job.execute()
        ok = True
    finally:
        job.executor.shutdown()
        job.emit("run_end", ok=ok)
        for scratch in (job.scratch, job.spill):
            if scratch is not None:
                storage.delete_prefix(scratch)
    kpi = recorder.report()
    if options.kpi_path:
        write_kpi(kpi, options.kpi_path)
    return RunResult(value, kpi, options.kpi_path)
