"""Lifecycle hooks: how telemetry (KPIs, progress bars) observes a run without touching stages."""
from __future__ import annotations

import sys
from typing import Any


class Hook:
    """Base class: override the events you need.  Called in the driver, in order."""

    def run_start(self, *, graph: str, executor: str, workers: int, options: dict[str, Any]) -> None:
        """The run begins (before the executor starts)."""

    def executor_started(self, *, seconds: float) -> None:
        """The executor is ready; ``seconds`` is its fixed start cost."""

    def stage_start(self, *, stage: str, kind: str, tasks: int, memory_mb: int) -> None:
        """A stage is about to submit ``tasks`` tasks."""

    def task_end(self, *, stage: str, partition: int, attempts: list[dict[str, Any]]) -> None:
        """A task finished (successfully or not); one KPI record per attempt."""

    def stage_end(self, *, stage: str) -> None:
        """Every task of the stage has finished."""

    def run_end(self, *, ok: bool) -> None:
        """The run is over."""


class ProgressHook(Hook):
    """One progress bar per stage on a terminal; silent when stderr is not a TTY or ``quiet``."""

    def __init__(self, quiet: bool = False):
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Any = None

    def stage_start(self, *, stage: str, kind: str, tasks: int, memory_mb: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=tasks, desc=f"{stage:<12}", unit="task", leave=True, file=sys.stderr)

    def task_end(self, *, stage: str, partition: int, attempts: list[dict[str, Any]]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def stage_end(self, *, stage: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def run_end(self, *, ok: bool) -> None:
        self.stage_end(stage="")  # a failed stage leaves its bar open
