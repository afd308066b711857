"""In-machine executors: threads (default) and processes."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import queue
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from ..errors import TaskTimeout
from ..tasks import crashed
from .base import ExecutorSettings, local_scratch


def _batch_limit(timeout_s: float | None, tasks: int, workers: int) -> float | None:
    """Driver-side bound on a batch: at most ceil(tasks / workers) task limits in a row, plus slack.

    Worker-side timeouts (SIGALRM) cannot interrupt a thread, so the driver bounds the batch too.
    """
    return None if not timeout_s else timeout_s * -(-tasks // workers) + 5


class ThreadsExecutor:
    """Tasks run in this process's threads: no serialisation, results stay in memory.

    Worker threads pull the next task from a shared iterator (no future per
    task), which keeps the per-task overhead to a few microseconds.
    """

    name = "threads"
    remote = False

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.timeout_s = settings.task_timeout_s

    def start(self) -> None:
        """Threads are started per batch; nothing to acquire."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        source = iter(enumerate(items))
        lock, stop = threading.Lock(), threading.Event()
        results: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = queue.SimpleQueue()

        def work() -> None:
            while not stop.is_set():
                with lock:
                    nxt = next(source, None)
                if nxt is None:
                    return
                try:
                    results.put((nxt[0], fn(nxt[1]), None))
                except BaseException as exc:  # noqa: BLE001 - handed to the driver
                    results.put((nxt[0], None, exc))

        threads = [threading.Thread(target=work, name=f"cloudbutton-worker-{slot}", daemon=True)
                   for slot in range(min(self.workers, len(items)))]
        for thread in threads:
            thread.start()
        limit = _batch_limit(self.timeout_s, len(items), self.workers)
        deadline = None if limit is None else time.monotonic() + limit
        timed_out = False
        try:
            for _ in range(len(items)):
                try:
                    index, value, error = results.get(
                        timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    timed_out = True
                    raise TaskTimeout(f"tasks still running after the {self.timeout_s:g} s task time limit") from None
                if error is not None:
                    raise error
                yield index, value
        finally:
            stop.set()  # a failed or abandoned batch starts no further tasks...
            if not timed_out:  # ...and lets running ones finish: a thread left inside native code
                for thread in threads:  # when the interpreter exits aborts it
                    thread.join()

    def shutdown(self) -> None:
        """Worker threads end with their batch."""

    def scratch_uri(self, run_id: str) -> None:
        return None


class ProcessesExecutor:
    """Tasks run in a pool of forked local processes; intermediates go through files.

    Fork (not spawn) keeps worker start-up to milliseconds and needs no
    ``if __name__ == "__main__"`` guard in user scripts.
    """

    name = "processes"
    remote = True

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.timeout_s = settings.task_timeout_s
        self.pool: cf.ProcessPoolExecutor | None = None

    def start(self) -> None:
        self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        assert self.pool is not None, "start() the executor first"
        futures = {self.pool.submit(fn, item): i for i, item in enumerate(items)}
        limit = _batch_limit(self.timeout_s, len(items), self.workers)
        try:
            for future in cf.as_completed(futures, timeout=limit):
                try:
                    outcome = future.result()
                except cf.process.BrokenProcessPool as exc:  # a worker was killed (e.g. out of memory)
                    outcome = crashed(exc)
                yield futures[future], outcome
        except cf.TimeoutError:
            raise TaskTimeout(f"tasks still running after the {self.timeout_s:g} s task time limit") from None
        finally:
            for future in futures:
                future.cancel()

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def scratch_uri(self, run_id: str) -> str:
        return local_scratch(run_id)
