"""Spark executor: one Spark task per cloudbutton task, on ``local[N]`` or any master URL."""
from __future__ import annotations

import atexit
import os
import sys
from typing import Any, Callable, Iterator, Sequence

from .base import ExecutorSettings, local_scratch

_session: Any = None


def _indexed(fn: Callable[[Any], Any], pair: tuple[int, Any]) -> tuple[int, Any]:
    return pair[0], fn(pair[1])


def _stop_session() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None


class SparkExecutor:
    """Runs tasks as Spark tasks through PySpark.

    The session is created once per Python process and reused by later runs
    (its start-up, ~8 s locally, is reported as the first run's fixed cost).
    For a cluster, give ``--spark-master`` and a ``--scratch`` URI every node can reach.
    """

    name = "spark"
    remote = True

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.master = settings.spark_master or f"local[{settings.workers}]"

    def start(self) -> None:
        global _session
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        if _session is not None and _session.sparkContext.master != self.master:
            _stop_session()
        if _session is None:
            from pyspark.sql import SparkSession

            _session = (SparkSession.builder.master(self.master).appName("cloudbutton")
                        .config("spark.ui.enabled", "false")
                        .config("spark.ui.showConsoleProgress", "false")
                        .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
                        .config("spark.python.worker.reuse", "true")
                        .config("spark.task.maxFailures", "1")  # retries are the core's job
                        .getOrCreate())
            _session.sparkContext.setLogLevel("ERROR")
            atexit.register(_stop_session)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        from functools import partial

        context = _session.sparkContext
        rdd = context.parallelize(list(enumerate(items)), max(1, len(items)))
        yield from rdd.map(partial(_indexed, fn)).collect()

    def shutdown(self) -> None:
        """Keep the session for later runs in this process; it stops at exit."""

    def scratch_uri(self, run_id: str) -> str:
        return local_scratch(run_id)
