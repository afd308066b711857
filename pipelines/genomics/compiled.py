"""Compile numeric kernels with numba on first call (cached on disk, run without the GIL).

Importing numba and loading its compiler costs about 0.8 s, so kernels are compiled
lazily: planning and start-up never import it, and a worker process pays once (the
machine code is cached beside the module; threads wait for the first compile instead
of repeating it).
"""
from __future__ import annotations

import threading
from functools import wraps
from typing import Callable

_LOCK = threading.Lock()


def kernel(func: Callable) -> Callable:
    """``func`` compiled by ``numba.njit(cache=True, nogil=True)`` the first time it is called."""
    compiled: list[Callable] = []

    @wraps(func)
    def run(*args):
        if not compiled:
            with _LOCK:
                if not compiled:
                    import numba
                    try:
                        compiled.append(numba.njit(cache=True, nogil=True)(func))
                    except RuntimeError:  # nowhere to write the cache (e.g. a read-only install): compile per process
                        compiled.append(numba.njit(nogil=True)(func))
        return compiled[0](*args)

    return run
