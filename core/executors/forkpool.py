"""A pool of forked worker processes that knows which task each worker runs.

Unlike :class:`concurrent.futures.ProcessPoolExecutor`, whose whole pool breaks
when one worker dies, a dead worker here fails only its own task, which is
reported by position, and is replaced by a fresh fork.  The driver also
enforces the task time limit (a worker stuck in native code past it is killed)
and the memory limit (:mod:`cloudbutton.core.memguard`).  Workers die with the
driver (``PR_SET_PDEATHSIG``), so a killed driver leaves no orphans.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence

from .. import memguard

_PR_SET_PDEATHSIG = 1
#: How often the driver checks busy workers' memory and time.
_TICK_S = 0.05


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); exit now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe to the driver closing still ends the worker
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _serve(conn: Connection, parent_pid: int) -> None:
    """Worker loop: receive ``(fn, item)``, send back ``(True, result)`` or ``(False, exception)``."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the driver's to handle
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if message is None:
            return
        fn, item = message
        try:
            reply: tuple[bool, Any] = (True, fn(item))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
            conn.send((False, RuntimeError(f"task result could not be sent back: {exc}")))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    position: int | None = None  # the task it runs, if any
    started: float = 0.0
    peak: int = 0  # largest private memory seen during the current task

    @property
    def busy(self) -> bool:
        return self.position is not None


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the out-of-memory killer sends it)" if exitcode == -signal.SIGKILL else ""
        return f"worker lost: its process was killed by {name}{hint}"
    return f"worker lost: its process exited with code {exitcode}"


class ForkPool:
    """``workers`` forked processes running one task at a time each.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    timeout_s : float, optional
        Task time limit; a worker still busy ``grace`` seconds after it (the task's own
        SIGALRM failed to stop it, e.g. inside native code) is killed.
    """

    def __init__(self, workers: int, timeout_s: float | None = None):
        self.size, self.timeout_s = workers, timeout_s
        self.grace = max(1.0, 0.2 * timeout_s) if timeout_s else 0.0
        self.context = multiprocessing.get_context("fork")
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        here, there = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(there, os.getpid()), daemon=True,
                                       name="cloudbutton-worker")
        process.start()
        there.close()
        return _Worker(process, here)

    def start(self) -> None:
        self.workers = [self._spawn() for _ in range(self.size)]

    def _kill(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join()
        worker.conn.close()

    def _replace(self, worker: _Worker) -> _Worker:
        self._kill(worker)
        fresh = self.workers[self.workers.index(worker)] = self._spawn()
        return fresh

    def _verdict(self, worker: _Worker, memory_mb: int | None, now: float) -> str | None:
        """Why a busy worker must be stopped now (over memory or time), if it must."""
        if memory_mb:
            worker.peak = max(worker.peak, memguard.private_bytes(worker.process.pid))
            over = memguard.exceeded(memory_mb, worker.peak)
            if over:
                return over
        if self.timeout_s and now - worker.started > self.timeout_s + self.grace:
            return f"TaskTimeout: timed out after {self.timeout_s:g} s (worker process stopped)"
        return None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], lost: Callable[[Any, str, float, int], Any], *,
            memory_mb: int | None = None) -> Iterator[tuple[int, Any]]:
        """Run ``fn`` on every item; yield ``(position, result)`` as each finishes.

        A task whose worker dies or is stopped yields ``lost(item, reason, started, worker pid)``.
        Leaving the iteration early kills the workers still running tasks of it.
        """
        queue = deque(range(len(items)))
        pending = len(items)
        try:
            while pending:
                for worker in list(self.workers):
                    if worker.busy or not queue:
                        continue
                    if not worker.process.is_alive():  # died while idle
                        worker = self._replace(worker)
                    position = queue.popleft()
                    worker.conn.send((fn, items[position]))
                    worker.position, worker.started, worker.peak = position, time.time(), 0
                busy = [w for w in self.workers if w.busy]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=_TICK_S))
                now = time.time()
                for worker in busy:
                    position = worker.position
                    assert position is not None
                    if worker.conn in ready or worker.conn.poll():
                        try:
                            ok, value = worker.conn.recv()
                        except (EOFError, OSError):
                            reason = _death(self._exitcode(worker))
                        else:
                            worker.position = None
                            pending -= 1
                            if not ok:
                                raise value
                            yield position, value
                            continue
                    elif worker.process.sentinel in ready:
                        reason = _death(self._exitcode(worker))
                    else:
                        verdict = self._verdict(worker, memory_mb, now)
                        if verdict is None:
                            continue
                        reason = verdict
                    started, pid = worker.started, worker.process.pid
                    self._replace(worker)
                    pending -= 1
                    yield position, lost(items[position], reason, started, pid)
        finally:
            for worker in list(self.workers):
                if worker.busy:  # abandoned: its result must not reach the next batch
                    self._replace(worker)

    @staticmethod
    def _exitcode(worker: _Worker) -> int | None:
        worker.process.join(1.0)
        return worker.process.exitcode

    def shutdown(self) -> None:
        """Ask idle workers to exit; kill busy ones."""
        for worker in self.workers:
            if worker.busy or not worker.process.is_alive():
                self._kill(worker)
                continue
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(5.0)
            self._kill(worker)
        self.workers = []
