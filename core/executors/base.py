"""The executor protocol: anything that can run a batch of tasks and yield results as they finish."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ExecutorSettings:
    """What every executor is created from (the CLI's common options)."""

    workers: int
    memory_mb: int = 1024
    lithops_config: dict[str, Any] | None = None
    spark_master: str | None = None
    task_timeout_s: float | None = None
    retries: int = 2  # extra attempts per task (Spark re-runs a task whose worker died this many times)


class Executor(Protocol):
    """Runs tasks somewhere.  ``remote`` executors get intermediates by reference."""

    name: str
    workers: int
    remote: bool

    def start(self) -> None:
        """Acquire pools, sessions or clients (its duration is the run's fixed start cost)."""

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, memory_mb: int) -> Iterator[tuple[int, R]]:
        """Run ``fn`` on every item; yield ``(index, result)`` as each task finishes."""

    def shutdown(self) -> None:
        """Release what :meth:`start` acquired."""

    def scratch_uri(self, run_id: str) -> str | None:
        """Where this executor's intermediates go (None: kept in memory)."""


def local_scratch(run_id: str) -> str:
    """A scratch folder of this machine for the intermediates of run ``run_id``."""
    return os.path.join(tempfile.gettempdir(), f"cloudbutton-scratch-{run_id}")
