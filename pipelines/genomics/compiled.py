"""Compile numeric kernels with numba on first call (cached on disk, run without the GIL).

Importing numba costs about 0.4 s, so kernels are compiled lazily: planning and
start-up never import it, and a worker pays once per process (the machine code is
cached beside the module).
"""
from __future__ import annotations

from functools import wraps
from typing import Callable


def kernel(func: Callable) -> Callable:
    """``func`` compiled by ``numba.njit(cache=True, nogil=True)`` the first time it is called."""
    compiled: list[Callable] = []

    @wraps(func)
    def run(*args):
        if not compiled:
            import numba
            compiled.append(numba.njit(cache=True, nogil=True)(func))
        return compiled[0](*args)

    return run
