"""Per-task resource probes that run inside workers: RSS peak, thread I/O, cold start.

Cheap by design (a few microseconds per task): one sampler thread per worker
process tracks the resident set size while tasks run; I/O comes from the
kernel's per-thread counters (``/proc/thread-self/io``), so it includes what
libraries such as htslib or GDAL read, not only the core's own storage calls.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from . import storage

_PAGE = os.sysconf("SC_PAGE_SIZE")
_SAMPLE_S = 0.01


class _RssSampler:
    """Samples this process's RSS every 10 ms while at least one task is active."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[int, int] = {}  # token -> peak RSS seen while that task ran
        self.next_token = 0
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.fd = os.open("/proc/self/statm", os.O_RDONLY)

    def rss(self) -> int:
        return int(os.pread(self.fd, 128, 0).split()[1]) * _PAGE

    def begin(self) -> int:
        now = self.rss()
        with self.lock:
            token = self.next_token = self.next_token + 1
            self.active[token] = now
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="cloudbutton-rss", daemon=True)
                self.thread.start()
        if not self.wake.is_set():
            self.wake.set()
        return token

    def end(self, token: int) -> int:
        now = self.rss()
        with self.lock:
            return max(self.active.pop(token), now)

    def _loop(self) -> None:
        while True:
            if not self.active:
                self.wake.clear()
                self.wake.wait()
            now = self.rss()
            with self.lock:
                for token, peak in self.active.items():
                    if now > peak:
                        self.active[token] = now
            time.sleep(_SAMPLE_S)


_sampler: _RssSampler | None = None
_thread_io = threading.local()
_warm = False


def _reset_after_fork() -> None:
    global _sampler, _thread_io, _warm
    _sampler, _thread_io, _warm = None, threading.local(), False


os.register_at_fork(after_in_child=_reset_after_fork)


def sampler() -> _RssSampler:
    """The process-wide RSS sampler (created on first use, recreated after fork)."""
    global _sampler
    if _sampler is None:
        _sampler = _RssSampler()
    return _sampler


def thread_io() -> tuple[int, int]:
    """Bytes (read, written) by the calling thread so far, syscalls plus network storage."""
    fd = getattr(_thread_io, "fd", None)
    if fd is None:
        fd = _thread_io.fd = os.open("/proc/thread-self/io", os.O_RDONLY)
    fields = os.pread(fd, 512, 0).split(maxsplit=4)
    net_read, net_written = storage.remote_bytes()
    return int(fields[1]) + net_read, int(fields[3]) + net_written


def modules() -> frozenset[str]:
    """Names of the modules imported so far (to tell import reads from data reads)."""
    return frozenset(sys.modules.copy())  # a copy: another thread may be importing


def import_bytes(before: frozenset[str]) -> int:
    """Bytes of the compiled files of the modules imported since ``before`` was taken: what
    ``thread_io`` counted for reading library code, not data (extension modules are mapped, not read)."""
    total = 0
    for name in sys.modules.copy().keys() - before:
        path = getattr(sys.modules.get(name), "__cached__", None)
        if path:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
    return total


def process_age_s() -> float:
    """Seconds since this process started (a cold worker's start-up, the serverless INIT phase)."""
    with open("/proc/self/stat") as handle:
        ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))


def cold_start() -> bool:
    """True for the first task run in this worker process."""
    global _warm
    cold, _warm = not _warm, True
    return cold


def worker_id() -> str:
    """host:pid:thread-name of the calling worker (one timeline row each; executors name their
    threads by slot, so a slot keeps its row from stage to stage)."""
    name = getattr(_thread_io, "worker", None)
    if name is None:
        name = _thread_io.worker = f"{os.uname().nodename}:{os.getpid()}:{threading.current_thread().name}"
    return name
