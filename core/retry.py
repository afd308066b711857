"""The retry policy: every attempt of a task is a submission of its own.

A task that fails (raises, times out, or loses its worker to a kill, the
out-of-memory killer or a memory guard) is submitted again, up to its
``retries``, after the current batch: on processes, Lithops and Spark that is a
fresh worker process or function call.  A bad input is never retried.  Every
attempt, lost ones included, stays in the task's KPI records.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterator, Sequence

from .executors.base import Executor
from .tasks import TaskOutcome, TaskSpec, execute_task


def _settled(outcome: TaskOutcome, spec: TaskSpec, attempts_so_far: int) -> bool:
    """True when ``outcome`` is final: a success, a bad input, or the last attempt allowed."""
    return outcome.error is None or outcome.input_error is not None or attempts_so_far > spec.retries


def run_with_retries(executor: Executor, specs: Sequence[TaskSpec], *, memory_mb: int
                     ) -> Iterator[tuple[int, TaskOutcome]]:
    """Run ``specs`` on ``executor``; yield ``(position, outcome)`` once per task, as each settles.

    The outcome's ``attempts`` hold one KPI record per attempt, in order.  Tasks
    the executor could not report on (a Spark job aborted by another task's
    failure) are submitted again without using up an attempt.
    """
    history: list[list[dict]] = [[] for _ in specs]
    todo = list(range(len(specs)))
    while todo:
        now = time.time()
        batch = [replace(specs[i], attempt=len(history[i]), submit_ts=now if history[i] else specs[i].submit_ts)
                 for i in todo]
        reported: set[int] = set()
        retry: list[int] = []
        for j, outcome in executor.map(execute_task, batch, memory_mb=memory_mb):
            position = todo[j]
            reported.add(position)
            history[position].extend(outcome.attempts)
            if _settled(outcome, specs[position], len(history[position])):
                yield position, replace(outcome, attempts=history[position])
            else:
                retry.append(position)
        if not reported:
            name = getattr(executor, "name", type(executor).__name__)
            raise RuntimeError(f"executor {name!r} reported none of {len(todo)} task(s)")
        todo = sorted(retry + [i for i in todo if i not in reported])
