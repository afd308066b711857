"""Executors by name: ``threads`` (default), ``processes``, ``lithops``, ``spark``.

Third parties add one with :func:`register_executor` or through the
``cloudbutton.executors`` entry-point group (a factory taking :class:`ExecutorSettings`).
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable

from .base import Executor, ExecutorSettings
from .local import ProcessesExecutor, ThreadsExecutor


def _lithops(settings: ExecutorSettings) -> Executor:
    from .lithops_backend import LithopsExecutor

    return LithopsExecutor(settings)


def _spark(settings: ExecutorSettings) -> Executor:
    from .spark_backend import SparkExecutor

    return SparkExecutor(settings)


EXECUTORS: dict[str, Callable[[ExecutorSettings], Executor]] = {
    "threads": ThreadsExecutor,
    "processes": ProcessesExecutor,
    "lithops": _lithops,
    "spark": _spark,
}


def register_executor(name: str, factory: Callable[[ExecutorSettings], Executor]) -> None:
    """Make ``factory`` available as executor ``name``."""
    EXECUTORS[name] = factory


def executor_names() -> list[str]:
    """Built-in and entry-point executors."""
    names = dict.fromkeys(EXECUTORS)
    names.update(dict.fromkeys(ep.name for ep in metadata.entry_points(group="cloudbutton.executors")))
    return list(names)


def create_executor(name: str, settings: ExecutorSettings) -> Executor:
    """Build executor ``name`` (raises ValueError listing the known names)."""
    factory = EXECUTORS.get(name)
    if factory is None:
        found = [ep for ep in metadata.entry_points(group="cloudbutton.executors") if ep.name == name]
        if not found:
            raise ValueError(f"unknown executor {name!r} (known: {', '.join(executor_names())})")
        factory = found[0].load()
    return factory(settings)


__all__ = ["Executor", "ExecutorSettings", "create_executor", "executor_names", "register_executor"]
