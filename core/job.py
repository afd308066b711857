"""A Job: a graph plus where its output goes; what pipeline commands build and run."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Callable

from .graph import Graph
from .runner import RunOptions, RunResult, run


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
    """

    graph: Graph
    output: str
    output_is_dir: bool = False
    summary: Callable[[Any], str] | None = None

    def default_kpi_path(self) -> str:
        """``<output>/kpi.json`` for a folder, ``<folder of output>/kpi.json`` for a file."""
        folder = self.output if self.output_is_dir else os.path.dirname(self.output.rstrip("/"))
        return os.path.join(folder or ".", "kpi.json")


def run_job(job: Job, options: RunOptions | None = None, **overrides: Any) -> RunResult:
    """Run ``job`` with ``options`` (or RunOptions(**overrides)); KPIs default beside the output."""
    options = replace(options, **overrides) if options else RunOptions(**overrides)
    if options.kpi_path is None:
        options = replace(options, kpi_path=job.default_kpi_path())
    return run(job.graph, options)
