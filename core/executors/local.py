"""In-machine executors over ``concurrent.futures``: threads (default) and processes."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import tempfile
import time
from typing import Any, Callable, Iterator, Sequence

from ..errors import TaskTimeout
from .base import ExecutorSettings


class _PoolExecutor:
    """Shared logic: submit every task, yield results in completion order."""

    name = "pool"
    remote = False

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.timeout_s = settings.task_timeout_s
        self.pool: cf.Executor | None = None

    def _make_pool(self) -> cf.Executor:
        raise NotImplementedError

    def start(self) -> None:
        self.pool = self._make_pool()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        assert self.pool is not None, "start() the executor first"
        futures = {self.pool.submit(fn, item): i for i, item in enumerate(items)}
        # Worker-side timeouts (SIGALRM) cannot interrupt a thread, so the driver also
        # bounds the whole batch: no task may take longer than the limit, and at most
        # ceil(n / workers) of them run one after another on a worker.
        deadline = None
        if self.timeout_s:
            rounds = -(-len(items) // self.workers)
            deadline = time.monotonic() + self.timeout_s * rounds + 5
        pending = set(futures)
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = cf.wait(pending, timeout=left, return_when=cf.FIRST_COMPLETED)
            if not done:
                for future in pending:
                    future.cancel()
                raise TaskTimeout(f"tasks still running after the {self.timeout_s:g} s task time limit")
            for future in done:
                yield futures[future], future.result()

    def shutdown(self) -> None:
        """Cancel what has not started; do not wait for a timed-out thread that cannot be killed."""
        if self.pool is not None:
            self.pool.shutdown(wait=not isinstance(self.pool, cf.ThreadPoolExecutor), cancel_futures=True)
            self.pool = None

    def scratch_uri(self, run_id: str) -> str | None:
        return os.path.join(tempfile.gettempdir(), f"cloudbutton-scratch-{run_id}") if self.remote else None


class ThreadsExecutor(_PoolExecutor):
    """Tasks run in this process's threads: no serialisation, results stay in memory."""

    name = "threads"

    def _make_pool(self) -> cf.Executor:
        return cf.ThreadPoolExecutor(self.workers, thread_name_prefix="cloudbutton")


class ProcessesExecutor(_PoolExecutor):
    """Tasks run in a pool of local processes (forkserver); intermediates go through files."""

    name = "processes"
    remote = True

    def _make_pool(self) -> cf.Executor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["cloudbutton.core.tasks"])
        return cf.ProcessPoolExecutor(self.workers, mp_context=context)
