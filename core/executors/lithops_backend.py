"""Lithops executor: tasks as serverless functions (AWS Lambda, IBM, GCP, Azure, Kubernetes or localhost)."""
from __future__ import annotations

import math
import os
import sys
import threading
from typing import Any, Callable, Iterator, Sequence

from ..storage import SCHEME_OF_BACKEND
from ..tasks import crashed
from .base import ExecutorSettings


def localhost_config(workers: int) -> dict[str, Any]:
    """Lithops on this machine: localhost v1 (one process per job, ~12 ms per task, not v2's
    ~400 ms) running this interpreter, so workers see the same installed packages."""
    return {
        "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
        "localhost": {"version": 1, "worker_processes": workers, "runtime": sys.executable},
    }


class LithopsExecutor:
    """Runs each task as a Lithops function call; intermediates go through Lithops storage.

    With no configuration it uses :func:`localhost_config`; pass any Lithops
    config (``--lithops-config``) to run on a cloud backend, whose runtime must
    have ``cloudbutton`` installed.
    """

    name = "lithops"
    remote = True

    def __init__(self, settings: ExecutorSettings):
        self.workers = settings.workers
        self.config = settings.lithops_config or localhost_config(settings.workers)
        self.timeout_s = settings.task_timeout_s
        self.fexec: Any = None
        self.queue_watch: _LocalhostQueueWatch | None = None

    @property
    def localhost(self) -> bool:
        return self.config.get("lithops", {}).get("backend", "localhost") == "localhost"

    def start(self) -> None:
        import logging

        import lithops

        # A driver started by a process that used Lithops inherits its session id and executor count:
        # two such drivers would get the same executor id, and with it each other's call results.
        # Without the inherited pair Lithops draws a new session (this process's own count carries on).
        for inherited in ("__LITHOPS_SESSION_ID", "__LITHOPS_TOTAL_EXECUTORS"):
            os.environ.pop(inherited, None)
        self.fexec = lithops.FunctionExecutor(config=self.config)
        # A call that died is reported (and retried) by the core, in one line: no Lithops warning per call.
        # (Set after the executor exists: it reconfigures Lithops' loggers.)
        logging.getLogger("lithops.future").setLevel(logging.ERROR)
        if self.localhost:
            self.queue_watch = _LocalhostQueueWatch(self.fexec.compute_handler)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, memory_mb: int) -> Iterator[tuple[int, Any]]:
        from lithops.wait import ANY_COMPLETED

        futures = self.fexec.map(
            fn, [(item,) for item in items],
            runtime_memory=None if self.localhost else memory_mb,
            # the task's own alarm stops it at the limit; Lithops kills a call stuck past it (native code)
            timeout=math.ceil(self.timeout_s * 1.2) + 3 if self.timeout_s else None,
        )
        index = {id(f): i for i, f in enumerate(futures)}
        pending = list(futures)
        while pending:
            done, pending = self.fexec.wait(pending, return_when=ANY_COMPLETED, throw_except=False,
                                            show_progressbar=False, wait_dur_sec=0.05)
            pending = list(pending)
            for future in done:
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - the function died (timeout, memory) before returning
                    outcome = crashed(items[index[id(future)]], f"worker lost: {type(exc).__name__}: {exc}")
                if "worker_cold_start" in future.stats and outcome.attempts:
                    outcome.attempts[0]["cold_start"] = bool(future.stats["worker_cold_start"])
                if "worker_exec_time" in future.stats and outcome.attempts:  # what the function was billed for
                    outcome.attempts[0]["function_s"] = float(future.stats["worker_exec_time"])
                yield index[id(future)], outcome

    def shutdown(self) -> None:
        """Stop Lithops' job monitor and invoker, and kill calls still running (a failed or interrupted
        run does not wait for them)."""
        if self.queue_watch is not None:
            self.queue_watch.stop()
            self.queue_watch = None
        if self.fexec is not None:
            self.fexec.__exit__(None, None, None)
            self.fexec = None

    def scratch_uri(self, run_id: str) -> str:
        from lithops import Storage

        store = Storage(config=self.config)
        scheme = SCHEME_OF_BACKEND.get(store.backend, store.backend)
        return f"{scheme}://{store.bucket}/cloudbutton-scratch/{run_id}"


class _LocalhostQueueWatch:
    """Restarts the Lithops localhost job manager when it stopped with a job still queued.

    In Lithops 3.8's localhost handler the manager thread can decide the queue is
    empty and exit while ``invoke()`` queues the next job and still sees the exiting
    thread as running: that job never starts and ``wait()`` polls forever (seen here
    between two stages of a run on a loaded machine).  A daemon thread checks twice a
    second and starts a manager for such an orphaned job.
    """

    def __init__(self, handler: Any, period_s: float = 0.5):
        self.handler, self.period_s = handler, period_s
        self.stopped = threading.Event()
        if hasattr(handler, "job_queue") and hasattr(handler, "start_manager"):
            threading.Thread(target=self._watch, name="cloudbutton-lithops-queue", daemon=True).start()

    def _watch(self) -> None:
        while not self.stopped.wait(self.period_s):
            if getattr(self.handler, "job_manager", None) is None and not self.handler.job_queue.empty():
                self.handler.start_manager()

    def stop(self) -> None:
        self.stopped.set()
