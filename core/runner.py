"""Run a :class:`~cloudbutton.core.graph.Graph` on an executor, stage by stage, with KPIs."""
from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import storage
from .errors import TaskFailed
from .executors import ExecutorSettings, create_executor
from .graph import Graph, Stage
from .hooks import Hook, ProgressHook
from .interrupts import describe, interruptible
from .journal import Journal, JournalingExecutor, run_identity
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
        Folder or URI prefix for run folders (intermediates and journal); default the Lithops
        storage bucket for ``lithops``, else ``$CLOUDBUTTON_CACHE/runs`` (``~/.cache/cloudbutton/runs``).
    kpi_path : str, optional
        Where to write kpi.json (plus ``.timeline.png`` and ``.trace.json`` beside it).
    output : str, optional
        The job's main output, recorded in kpi.json (``run.options.output``) for its report.
    quiet : bool
        No progress bars.
    prices : PriceModel
        Cost model (default AWS Lambda x86).
    resume : bool
        Reuse every task an earlier run of the same command finished with the same key
        (see :mod:`cloudbutton.core.journal`); run only the rest.
    keep_scratch : bool
        Keep the run folder after a successful run (a failed one always keeps it, for ``resume``).
    overwrite : bool
        Let a job write into an output folder that holds other files (see :mod:`cloudbutton.core.outputs`).
    run_name : str, optional
        The run identity, instead of one derived from the graph and its outputs.
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
    resume: bool = False
    keep_scratch: bool = False
    overwrite: bool = False
    run_name: str | None = None


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
    """One execution of a graph: owns the executor, hooks, journal and stage outputs."""

    def __init__(self, graph: Graph, options: RunOptions, hooks: Sequence[Hook], outputs: Sequence[str],
                 inputs: Sequence[str]):
        self.graph, self.options = graph, options
        self.workers = options.workers or os.cpu_count() or 1
        self.lithops_config = load_lithops_config(options.lithops_config)
        self.executor = create_executor(options.executor, ExecutorSettings(
            self.workers, options.memory_mb, self.lithops_config, options.spark_master, options.task_timeout_s,
            options.retries))
        self.hooks = list(hooks)
        self.job_outputs, self.job_inputs = list(outputs), list(inputs)
        self.outputs: dict[str, list[Any]] = {}
        self.journal: Journal | None = None
        self.reused: dict[str, int] = {}

    def emit(self, event: str, **kwargs: Any) -> None:
        for hook in self.hooks:
            getattr(hook, event)(**kwargs)

    def _scratch_root(self) -> str | None:
        """``--scratch``, else the executor's object storage (Lithops), else None: the local runs folder."""
        if self.options.scratch:
            return self.options.scratch
        uri = self.executor.scratch_uri("runs") if self.executor.remote else None
        return uri if uri and storage.is_object_uri(uri) else None

    def execute(self) -> Any:
        started = time.time()
        self.executor.start()
        self.emit("executor_started", seconds=time.time() - started)
        identity = self.options.run_name or run_identity(
            self.graph.name, [(s.name, s.kind) for s in self.graph.stages.values()], self.job_outputs)
        self.journal = Journal(identity, self._scratch_root(), self.options.resume, exclude=self.job_outputs,
                               inputs=self.job_inputs)
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

    def _reusable(self, stage: Stage) -> bool:
        """The last stage writes the job's outputs: reuse it only while they all exist."""
        return stage is not self.graph.last or all(storage.exists(o) for o in self.job_outputs)

    def _stage(self, stage: Stage) -> list[Any]:
        journal = self.journal
        assert journal is not None
        if stage.kind == "shuffle":  # no tasks: bucket j of every upstream task forms partition j
            journal.keys.stage(stage.name, "shuffle", None, None, {}, range(stage.partitions or 1),
                               stage.upstream, None)
            return plan_buckets(self.outputs[stage.upstream or ""], stage.partitions or 1,  # core/shuffle.py
                                f"{journal.root}/{stage.name}/manifest.bin")
        items = self._inputs(stage)
        shuffle = self.graph.shuffle_after(stage.name)
        keys = journal.keys.stage(stage.name, stage.kind, stage.fn, stage.params, stage.side, items,
                                  stage.upstream, shuffle.partitions if shuffle else None)
        results: list[Any] = [None] * len(items)
        todo: list[int] = []
        for i, key in enumerate(keys):
            done, output = journal.finished(stage.name, i, key) if self._reusable(stage) else (False, None)
            if done:
                results[i] = output
            else:
                todo.append(i)
        self.reused[stage.name] = len(items) - len(todo)
        pending = set(todo)
        side = {name: SideInput(tuple(self.outputs[dep]), self.graph.stages[dep].kind == "reduce")
                for name, dep in stage.side.items()}
        # Remote executors store every output but the last stage's; threads keep outputs in memory
        # (plus a journal copy) and store only shuffle buckets, so the driver never holds a whole data set.
        stores = shuffle is not None or (self.executor.remote and stage is not self.graph.last)
        memory = stage.memory_mb or self.options.memory_mb
        params: Any = stage.params
        if self.executor.remote and todo:  # large inputs travel by reference (Lithops caps a job's data at 4 MiB)
            params = _by_reference(params, f"{journal.root}/{stage.name}/params.pkl")
            items = [_by_reference(items[i], f"{journal.root}/{stage.name}/input-{i}.pkl") if i in pending else items[i]
                     for i in range(len(items))]
        now = time.time()
        specs = [journal.spec(TaskSpec(stage.name, i, stage.fn, items[i], params, side,
                                       self.options.retries, self.options.task_timeout_s,
                                       journal.output_uri(stage.name, i) if stores else None,
                                       shuffle.partitions if shuffle else None, memory, self.lithops_config, now),
                              keys[i], copy=not stores)
                 for i in todo]
        specs.sort(key=_input_bytes, reverse=True)  # largest first: a shorter tail (results keep their order)
        self.emit("stage_start", stage=stage.name, kind=stage.kind, tasks=len(items), memory_mb=memory)
        for i in range(len(items)):
            if i not in pending:
                self.emit("task_end", stage=stage.name, partition=i, attempts=[])
        for position, outcome in run_with_retries(JournalingExecutor(self.executor), specs, memory_mb=memory):
            index = specs[position].partition
            if any((a["stage"], a["partition"]) != (stage.name, index) for a in outcome.attempts):
                raise RuntimeError(f"executor {self.executor.name!r} returned another task's result for stage "
                                   f"'{stage.name}' partition {index}: {outcome.attempts[-1]['stage']!r} "
                                   f"partition {outcome.attempts[-1]['partition']}")
            self.emit("task_end", stage=stage.name, partition=index, attempts=outcome.attempts)
            if outcome.error is not None:
                if outcome.input_error is not None:
                    raise outcome.input_error
                raise TaskFailed(stage.name, index, max(1, len(outcome.attempts)), outcome.error, outcome.traceback)
            results[index] = outcome.value
        self.emit("stage_end", stage=stage.name)
        return results


def run(graph: Graph, options: RunOptions | None = None, *, hooks: Sequence[Hook] = (),
        outputs: Sequence[str] = (), inputs: Sequence[str] = ()) -> RunResult:
    """Run ``graph`` and return the last stage's output with the run's KPIs.

    Parameters
    ----------
    graph : Graph
        The stages to run, in declaration order.
    options : RunOptions, optional
        Executor, workers, retries, resume, KPI path...; defaults to threads on every CPU.
    hooks : sequence of Hook
        Extra observers, called after the KPI recorder and the progress bars.
    outputs : sequence of str
        The files or folders the graph writes (:func:`~cloudbutton.core.job.run_job` passes the
        job's output): part of the run identity, never part of a task key, and while one is
        missing the last stage is not reused.
    inputs : sequence of str
        The files the graph reads (a job's inputs): where a stage's parameters name one, its
        content is part of the stage's task keys.  Files named by source partitions always are.

    Returns
    -------
    RunResult
        ``value`` is the last stage's output (a list for a map stage).  kpi.json is
        written when ``options.kpi_path`` is set, for failed and interrupted runs too
        (``"ok": false`` and the ``error``), before the error propagates.
    """
    options = options or RunOptions()
    recorder = KPIRecorder(options.prices)
    job = _Run(graph, options, [recorder, ProgressHook(options.quiet), *hooks], outputs, inputs)
    storage.configure(job.lithops_config)
    job.emit("run_start", graph=graph.name, executor=options.executor, workers=job.workers,
             options={"memory_mb": options.memory_mb, "retries": options.retries,
                      "task_timeout_s": options.task_timeout_s, "resume": options.resume, "output": options.output,
                      "spark_master": getattr(job.executor, "master", None)})
    ok, error = False, None
    try:
        with interruptible() as interruption:
            value = job.execute()
        ok = True
    except BaseException as exc:
        error = describe(exc, interruption)
        raise
    finally:
        job.executor.shutdown()
        job.emit("run_end", ok=ok)
        if job.journal is not None:
            job.journal.close(ok, options.keep_scratch)
        kpi = recorder.report()
        kpi["run"]["error"] = error
        kpi["run"]["reused_tasks"] = sum(job.reused.values())
        kpi["run"]["run_folder"] = job.journal.root if job.journal is not None else None
        for stage in kpi["stages"]:
            stage["reused"] = job.reused.get(stage["name"], 0)
            if stage["end_ts"] is None:  # the stage a failed run stopped in
                stage["end_ts"] = kpi["run"]["ended"]
        if options.kpi_path:
            try:
                write_kpi(kpi, options.kpi_path)
            except Exception as exc:  # noqa: BLE001 - never hide the run's own error
                if ok:
                    raise
                logging.getLogger("cloudbutton").warning("kpi.json of the failed run not written: %s", exc)
    return RunResult(value, kpi, options.kpi_path)
