"""A Job: a graph plus where its output goes; what pipeline commands build and run."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import outputs, storage
from .graph import Graph
from .report import write_report, write_run_report
from .placement import check_reachable
from .runner import RunOptions, RunResult, load_lithops_config, run


@dataclass
class Job:
    """A graph ready to run, with its main output.

    Parameters
    ----------
    graph : Graph
        The stages.
    output : str
        The main output (file or folder); kpi.json goes beside it.
    output_is_dir : bool
        ``output`` is a folder: kpi.json goes inside it.
    summary : callable, optional
        Turns the run's value into a one-line result summary for the CLI.
    inputs : list of str
        The files (or folders) the job reads; the output may be none of them and hold none of them.
    """

    graph: Graph
    output: str
    output_is_dir: bool = False
    summary: Callable[[Any], str] | None = None
    inputs: list[str] = field(default_factory=list)

    def default_kpi_path(self) -> str:
        """``<output>/kpi.json`` for a folder, ``<folder of output>/kpi.json`` for a file."""
        folder = self.output if self.output_is_dir else os.path.dirname(self.output.rstrip("/"))
        return os.path.join(folder or ".", "kpi.json")


def use_storage_of(lithops_config: str | dict[str, Any] | None) -> None:
    """Point this process's object storage at ``lithops_config``'s before a job is planned.

    Planning reads input headers and indexes, so an ``s3://`` input needs the
    configured endpoint and credentials already (the run itself applies them again).
    """
    storage.configure(load_lithops_config(lithops_config))


def plan_and_run(build: Callable[[], Job], *, executor: str = "threads", workers: int | None = None,
                 **run_options: Any) -> RunResult:
    """What a pipeline's Python API does: point object storage at ``run_options``' Lithops config
    (planning may read ``s3://`` inputs), plan the job with ``build()``, and run it on
    ``executor`` with ``workers`` and the other ``run_options`` (:class:`RunOptions` fields)."""
    use_storage_of(run_options.get("lithops_config"))
    return run_job(build(), executor=executor, workers=workers, **run_options)


def run_job(job: Job, options: RunOptions | None = None, **overrides: Any) -> RunResult:
    """Run ``job`` with ``options`` (or RunOptions(**overrides)); KPIs default beside the output.

    Before any work the output is checked (:func:`cloudbutton.core.outputs.check`): an output
    that is or holds an input, or a folder holding files this tool did not write (unless
    ``overwrite``), is refused with an :class:`~cloudbutton.core.errors.InputError`.
    ``report.html`` (:mod:`~cloudbutton.core.report`) is written beside kpi.json after the
    run, and after a failed run whose kpi.json was written.
    """
    options = replace(options, **overrides) if options else RunOptions(**overrides)
    if options.kpi_path is None:
        options = replace(options, kpi_path=job.default_kpi_path())
    options = replace(options, output=job.output if storage.is_object_uri(job.output) else os.path.abspath(job.output))
    check_reachable(options.executor, spark_master=options.spark_master, scratch=options.scratch,
                    lithops_config=load_lithops_config(options.lithops_config), outputs=[job.output])
    outputs.check(job.output, job.inputs, is_dir=job.output_is_dir, overwrite=options.overwrite,
                  resume=options.resume)
    before = outputs.snapshot(job.output, job.output_is_dir)
    ok, started = False, time.time()
    try:
        result = run(job.graph, options, outputs=[job.output], inputs=job.inputs)
        ok = True
        write_report(options.kpi_path)
    finally:
        if not ok:
            write_run_report(options.kpi_path, started)
        outputs.record(job.output, job.output_is_dir, before, ok)
    return result
