"""Interrupted runs: SIGINT and SIGTERM end a run like Ctrl-C, so it still writes kpi.json and keeps its folder.

Without this, SIGTERM (what ``kill``, batch schedulers and container runtimes send)
would end the driver at once, without KPIs.  The signal received is remembered,
because an executor may turn the KeyboardInterrupt into an error of its own
(a broken Py4J call, for Spark).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator


class Interruption:
    """The name of the signal that interrupted the run, once one has (``signal``)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def handler(self, signum: int, frame: Any) -> None:
        self.signal = signal.Signals(signum).name
        raise KeyboardInterrupt(self.signal)


_ours: set[Any] = set()


def _defaults_in_child() -> None:
    """A forked worker must not turn SIGTERM into an exception in its task: default handling there."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) in _ours:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


os.register_at_fork(after_in_child=_defaults_in_child)


@contextlib.contextmanager
def interruptible() -> Iterator[Interruption]:
    """Within the block (main thread only), SIGINT and SIGTERM raise KeyboardInterrupt and are recorded;
    handlers set by the application are left alone."""
    state = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {signum: signal.getsignal(signum) for signum in defaults}
    mine = [signum for signum, default in defaults.items() if previous[signum] is default]
    _ours.add(state.handler)
    for signum in mine:
        signal.signal(signum, state.handler)
    try:
        yield state
    finally:
        for signum in mine:
            signal.signal(signum, previous[signum])
        _ours.discard(state.handler)


def describe(exc: BaseException, state: Interruption) -> str:
    """One line for kpi.json: ``interrupted (SIGTERM)`` or the error."""
    from .errors import CloudbuttonError

    if state.signal or isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({state.signal or 'SIGINT'})"
    return str(exc) if isinstance(exc, CloudbuttonError) else f"{type(exc).__name__}: {exc}"
