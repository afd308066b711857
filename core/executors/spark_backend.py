"""Spark executor: one Spark task per cloudbutton task, on ``local[N]`` or any master URL."""
from __future__ import annotations

import atexit
import os
import re
import sys
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Iterator, Sequence

from ..tasks import TaskOutcome, TaskSpec, attempt_record
from .base import ExecutorSettings, local_scratch

_session: Any = None
_base_master = ""  # the running session's master, before local mode's ",F"
_max_failures = 0  # Spark attempts per task in the running session

#: "Task 2 in stage 7.0 failed 3 times, most recent failure: Lost task 2.2 in stage 7.0 (TID 9) (host executor
#: driver): <exception class>: <message>" - the one line of a Spark job abort the user needs.
_ABORT = re.compile(r"Task (\d+) in stage \S+ failed (\d+) times?, most recent failure: Lost task \S+ in stage \S+ "
                    r"\([^)]*\) \([^)]*\): (?:[\w.$]+(?:Exception|Error): )?([^\n]*)")
_LOST = "worker lost: Spark task attempt failed (its Python worker died or its executor was lost)"


def _attempt(fn: Callable[[TaskSpec], TaskOutcome], pair: tuple[int, TaskSpec]) -> tuple[int, TaskOutcome]:
    """Run in a Spark worker: Spark attempts before this one died, so count them as lost attempts."""
    from pyspark import TaskContext

    position, spec = pair
    context = TaskContext.get()
    lost = context.attemptNumber() if context is not None else 0
    records = [attempt_record(spec, spec.attempt + k, _LOST) for k in range(lost)]
    spec = replace(spec, attempt=spec.attempt + lost)
    outcome = TaskOutcome(None, [], _LOST) if spec.attempt > spec.retries else fn(spec)
    outcome.attempts[:0] = records
    return position, outcome


def _stop_session() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None


class SparkExecutor:
    """Runs tasks as Spark tasks through PySpark.

    The session is created once per Python process and reused by later runs
    (its start-up, ~8 s locally, is reported as the first run's fixed cost).
    Spark itself re-runs a task whose Python worker or executor died, up to
    ``retries`` times (``spark.task.maxFailures``, or ``local[N,F]``); the core
    counts those lost attempts and retries tasks that raised.
    For a cluster, give ``--spark-master`` and a ``--scratch`` URI every node can reach.
    """

    name = "spark"
    remote = True

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.failures = settings.retries + 1
        self.base_master = settings.spark_master or f"local[{settings.workers}]"
        # local mode ignores spark.task.maxFailures: its attempts per task go in the master URL
        self.master = settings.spark_master or f"local[{settings.workers},{self.failures}]"

    def start(self) -> None:
        global _session, _base_master, _max_failures
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        if _session is not None and (_base_master != self.base_master or _max_failures < self.failures):
            _stop_session()  # a session allowing more attempts than a run's retries is fine: tasks count them
        if _session is None:
            from pyspark.sql import SparkSession

            _session = (SparkSession.builder.master(self.master).appName("cloudbutton")
                        .config("spark.ui.enabled", "false")
                        .config("spark.ui.showConsoleProgress", "false")
                        .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
                        .config("spark.python.worker.reuse", "true")
                        .config("spark.task.maxFailures", str(self.failures))
                        .getOrCreate())
            _session.sparkContext.setLogLevel("OFF")  # a failed job is reported in one line, below
            _base_master, _max_failures = self.base_master, self.failures
            atexit.register(_stop_session)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        context = _session.sparkContext
        rdd = context.parallelize(list(enumerate(items)), max(1, len(items)))
        try:
            results = rdd.map(partial(_attempt, fn)).collect()
        except Exception as exc:  # noqa: BLE001 - a task failed every Spark attempt: the job was aborted
            abort = _ABORT.search(str(exc))
            if abort is None:
                raise RuntimeError(f"Spark job failed: {str(exc).strip().splitlines()[0]}") from None
            position, failures = int(abort[1]), int(abort[2])
            cause = abort[3].split(". ")[0].strip()  # Spark appends configuration hints after the cause
            spec = items[position]
            error = f"worker lost: {cause}"
            records = [attempt_record(spec, spec.attempt + k, error) for k in range(failures)]
            yield position, TaskOutcome(None, records, error)
            return
        yield from results

    def shutdown(self) -> None:
        """Keep the session for later runs in this process; it stops at exit."""

    def scratch_uri(self, run_id: str) -> str:
        return local_scratch(run_id)
