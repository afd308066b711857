"""cloudbutton core: stage graphs, executors, storage and partitioning, KPIs and CLI plumbing.

A pipeline declares a :class:`Graph` once; :func:`run` executes it unchanged on
``threads``, ``processes``, ``lithops`` or ``spark`` and records its KPIs.

Names are imported on first use, so a worker that unpickles a task imports
only what the task needs (a Lithops call pays every import on every call).
"""
from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: scipy's Delaunay is 10-80x slower without

_EXPORTS = {
    "ByteRange": "partitioners", "ByteRangePartitioner": "partitioners", "Partitioner": "partitioners",
    "read_records": "partitioners", "CloudbuttonError": "errors", "InputError": "errors",
    "TaskFailed": "errors", "TaskTimeout": "errors", "Graph": "graph", "Stage": "graph", "Hook": "hooks",
    "Job": "job", "plan_and_run": "job", "run_job": "job", "use_storage_of": "job", "PriceModel": "kpi", "RunOptions": "runner", "RunResult": "runner",
    "run": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
