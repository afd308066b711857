"""cloudbutton core: stage graphs, executors, storage and partitioning, KPIs and CLI plumbing.

A pipeline declares a :class:`Graph` once; :func:`run` executes it unchanged on
``threads``, ``processes``, ``lithops`` or ``spark`` and records its KPIs.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: scipy's Delaunay is 10-80x slower without

from .errors import CloudbuttonError, InputError, TaskFailed, TaskTimeout  # noqa: E402
from .graph import Graph, Stage  # noqa: E402
from .hooks import Hook  # noqa: E402
from .job import Job, run_job  # noqa: E402
from .kpi import PriceModel  # noqa: E402
from .partitioners import ByteRange, ByteRangePartitioner, Partitioner, read_records  # noqa: E402
from .runner import RunOptions, RunResult, run  # noqa: E402

__all__ = [
    "ByteRange", "ByteRangePartitioner", "CloudbuttonError", "Graph", "Hook", "InputError", "Job",
    "Partitioner", "PriceModel", "RunOptions", "RunResult", "Stage", "TaskFailed", "TaskTimeout",
    "read_records", "run", "run_job",
]
