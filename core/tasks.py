"""What one task is, and how a worker runs one attempt of it: inputs resolved, timeout, KPIs.

:func:`execute_task` is the only function the executors ship to workers.  It
never raises: failures come back in the :class:`TaskOutcome` so that every
executor (threads, processes, Lithops, Spark) reports them the same way.
Retries are the driver's job (:mod:`cloudbutton.core.retry`): each attempt is
submitted anew, so a task whose worker died runs again on a fresh one.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy/scipy load in a fresh worker

from . import storage, telemetry
from .errors import InputError, TaskTimeout
from .shuffle import ShuffleInput, read_bucket, write_map_output


@dataclass(frozen=True)
class Gather:
    """A reduce task's input: every upstream output, in partition order."""

    parts: tuple[Any, ...]


@dataclass(frozen=True)
class SideInput:
    """A side input: one upstream output (``single``) or the list of them."""

    parts: tuple[Any, ...]
    single: bool


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to run one partition of one stage."""

    stage: str
    partition: int
    fn: Callable[..., Any]
    item: Any
    params: dict[str, Any] | storage.Ref = field(default_factory=dict)
    side: dict[str, SideInput] = field(default_factory=dict)
    retries: int = 2
    timeout_s: float | None = None
    output_uri: str | None = None  # store the result here and return a Ref
    buckets: int | None = None  # split the emitted (key, value) pairs into this many buckets
    memory_mb: int = 1024
    storage_config: dict[str, Any] | None = None
    submit_ts: float = 0.0
    attempt: int = 0  # this attempt's number: 0 first, up to ``retries``


@dataclass
class TaskOutcome:
    """A task's result (value or Ref, or one per bucket) and one KPI record per attempt."""

    value: Any
    attempts: list[dict[str, Any]]
    error: str | None = None
    traceback: str = ""
    input_error: InputError | None = None  # a bad input is reported as such, not as a crash


def attempt_record(spec: TaskSpec, attempt: int, error: str | None, *, worker: str = "lost worker",
                   start_ts: float | None = None, end_ts: float | None = None) -> dict[str, Any]:
    """One KPI record of an attempt; the resource fields are zero unless the worker measured them."""
    end = time.time() if end_ts is None else end_ts
    start = end if start_ts is None else start_ts
    return {
        "stage": spec.stage, "partition": spec.partition, "attempt": attempt,
        "status": "ok" if error is None else "failed", "error": error,
        "worker": worker, "cold_start": False,
        "submit_ts": spec.submit_ts, "start_ts": start, "end_ts": end,
        "duration_s": end - start, "cpu_s": 0.0, "peak_rss_bytes": 0,
        "bytes_read": 0, "bytes_written": 0, "memory_mb": spec.memory_mb,
    }


def crashed(spec: TaskSpec, error: str, *, worker: str = "lost worker", start_ts: float | None = None) -> TaskOutcome:
    """The outcome of an attempt that never reported back: its worker died, was stopped or abandoned."""
    return TaskOutcome(None, [attempt_record(spec, spec.attempt, error, worker=worker, start_ts=start_ts)], error)


def _load(part: Any) -> Any:
    return storage.load(part) if isinstance(part, storage.Ref) else part


def _resolve(value: Any) -> Any:
    """Turn a task input (descriptor, Ref, Gather, SideInput, ShuffleInput) into data."""
    if isinstance(value, SideInput):
        parts = [_load(p) for p in value.parts]
        return parts[0] if value.single else parts
    if isinstance(value, Gather):
        return [_load(p) for p in value.parts]
    if isinstance(value, ShuffleInput):
        return read_bucket(value)
    return _load(value)


def _call(spec: TaskSpec) -> Any:
    kwargs = dict(_load(spec.params))
    kwargs.update({name: _resolve(side) for name, side in spec.side.items()})
    result = spec.fn(_resolve(spec.item), **kwargs)
    if spec.buckets is not None:  # one object holding every bucket (core/shuffle.py); the runner gives its URI
        return write_map_output(result, spec.buckets, spec.output_uri or "")
    if spec.output_uri is None:
        return result
    return storage.store(result, spec.output_uri)


class _Alarm:
    """SIGALRM-based timeout, used when the task runs in a process's main thread."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds if threading.current_thread() is threading.main_thread() else None

    def _fire(self, *_: Any) -> None:
        raise TaskTimeout(f"timed out after {self.seconds:g} s")

    def __enter__(self) -> None:
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *_: Any) -> None:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def execute_task(spec: TaskSpec) -> TaskOutcome:
    """Run attempt ``spec.attempt`` of ``spec``; record start/end, CPU, peak RSS and I/O."""
    storage.configure(spec.storage_config)
    sampler = telemetry.sampler()
    token = sampler.begin()
    cold = telemetry.cold_start()
    init_s = telemetry.process_age_s() if cold else 0.0  # a cold worker's start-up: billed INIT time
    modules0, requests0 = telemetry.modules(), storage.requests()
    read0, written0 = telemetry.thread_io()
    cpu0, start = time.thread_time(), time.time()
    value, error, trace, failure = None, None, "", None
    try:
        with _Alarm(spec.timeout_s):
            value = _call(spec)
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, never lost
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        error, trace, failure = f"{type(exc).__name__}: {exc}", traceback.format_exc(), exc
    end, cpu1 = time.time(), time.thread_time()
    storage.settle()  # what a native reader fetched through the gateway is this task's too
    read1, written1 = telemetry.thread_io()
    record = attempt_record(spec, spec.attempt, error, worker=telemetry.worker_id(), start_ts=start, end_ts=end)
    requests1 = storage.requests()
    record.update(cold_start=cold, cpu_s=cpu1 - cpu0, peak_rss_bytes=sampler.end(token),
                  bytes_read=max(0, read1 - read0 - telemetry.import_bytes(modules0)),  # data, not library code
                  bytes_written=written1 - written0, init_s=init_s,
                  requests={kind: n - requests0[kind] for kind, n in requests1.items()})
    input_error = failure if isinstance(failure, InputError) else None  # retrying cannot fix a bad input
    return TaskOutcome(value, [record], error, trace, input_error)
