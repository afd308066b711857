"""In-machine executors: threads (default) and processes."""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator, Sequence

from ..tasks import crashed
from .base import ExecutorSettings, local_scratch
from .forkpool import ForkPool


class ThreadsExecutor:
    """Tasks run in this process's threads: no serialisation, results stay in memory.

    A thread cannot be stopped, so the task time limit is kept by the driver: a
    task past it is reported as timed out (and retried) at once, its thread is
    abandoned - it keeps running until the task returns, and its result is
    ignored - and a new thread takes its place.  A task that kills its worker
    kills the whole run here; use ``processes`` for tasks that may.
    """

    name = "threads"
    remote = False

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.timeout_s = settings.task_timeout_s

    def start(self) -> None:
        """Threads are started per batch; nothing to acquire."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        todo = deque(range(len(items)))
        lock, stop = threading.Lock(), threading.Event()
        running: dict[int, tuple[int, float]] = {}  # thread slot -> (position, start time)
        abandoned: set[int] = set()
        results: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = queue.SimpleQueue()

        def work(slot: int) -> None:
            while not stop.is_set():
                with lock:
                    if not todo:
                        return
                    position = todo.popleft()
                    running[slot] = (position, time.time())
                try:
                    reply = (position, fn(items[position]), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the driver
                    reply = (position, None, exc)
                with lock:
                    running.pop(slot, None)
                    if slot in abandoned:  # reported as timed out already: drop the late result
                        return
                results.put(reply)

        threads: list[threading.Thread] = []

        def add_thread() -> None:
            slot = len(threads)
            threads.append(threading.Thread(target=work, args=(slot,), name=f"cloudbutton-worker-{slot}",
                                            daemon=True))
            threads[-1].start()

        for _ in range(min(self.workers, len(items))):
            add_thread()
        try:
            remaining = len(items)
            while remaining:
                try:
                    position, value, error = results.get(timeout=self._wait(lock, running))
                except queue.Empty:
                    for slot, position, started in self._expired(lock, running, abandoned):
                        remaining -= 1
                        add_thread()
                        yield position, crashed(
                            items[position], f"TaskTimeout: timed out after {self.timeout_s:g} s (thread "
                            "abandoned: it keeps running, its result is ignored)", start_ts=started,
                            worker=f"{os.uname().nodename}:{os.getpid()}:cloudbutton-worker-{slot}")
                    continue
                remaining -= 1
                if error is not None:
                    raise error
                yield position, value
        finally:
            stop.set()  # a failed or abandoned batch starts no further tasks...
            for slot, thread in enumerate(threads):  # ...and lets running ones finish: a thread left inside
                if slot not in abandoned:  # native code when the interpreter exits aborts it
                    thread.join()

    def _wait(self, lock: threading.Lock, running: dict[int, tuple[int, float]]) -> float | None:
        """Seconds until the first running task reaches its time limit (None: no limit)."""
        if not self.timeout_s:
            return None
        with lock:
            first = min((started for _, started in running.values()), default=time.time())
        return max(0.0, first + self.timeout_s - time.time()) + 0.01

    def _expired(self, lock: threading.Lock, running: dict[int, tuple[int, float]],
                 abandoned: set[int]) -> list[tuple[int, int, float]]:
        """Abandon the threads whose task is past the time limit: (slot, position, start time) each."""
        if not self.timeout_s:
            return []
        now = time.time()
        with lock:
            late = [(slot, position, started) for slot, (position, started) in running.items()
                    if now - started >= self.timeout_s]
            for slot, _, _ in late:
                abandoned.add(slot)
                del running[slot]
        return late

    def shutdown(self) -> None:
        """Worker threads end with their batch."""

    def scratch_uri(self, run_id: str) -> None:
        return None


class ProcessesExecutor:
    """Tasks run in a pool of forked local processes; intermediates go through files.

    Fork (not spawn) keeps worker start-up to milliseconds and needs no
    ``if __name__ == "__main__"`` guard in user scripts.  A task whose worker
    dies, runs past the time limit or goes over ``memory_mb`` of private memory
    loses only that worker, which is replaced; the task is reported by position.
    """

    name = "processes"
    remote = True

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.timeout_s = settings.task_timeout_s
        self.pool: ForkPool | None = None

    def start(self) -> None:
        self.pool = ForkPool(self.workers, self.timeout_s)
        self.pool.start()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        assert self.pool is not None, "start() the executor first"
        def lost(spec: Any, error: str, started: float, pid: int) -> Any:
            return crashed(spec, error, worker=f"{os.uname().nodename}:{pid}:MainThread", start_ts=started)

        yield from self.pool.map(fn, items, lost, memory_mb=memory_mb)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def scratch_uri(self, run_id: str) -> str:
        return local_scratch(run_id)
