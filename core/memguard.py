"""Per-task memory limit for local worker processes: the ``--memory`` a cloud function would have.

The driver watches each busy worker's private memory (what the task itself
allocated or wrote, not the pages a forked worker still shares with the
driver) and kills a worker that goes over its task's limit, so a task that
would be killed in the cloud fails here too, as "task exceeded N MB".
A watchdog outside the worker works even while the task holds the GIL or
runs in native code (numpy, htslib), where an in-process thread or
``RLIMIT_AS`` (which counts reserved address space, not memory) would not.
"""
from __future__ import annotations

_MB = 1024 * 1024


def private_bytes(pid: int) -> int:
    """Private (unshared) resident plus swapped memory of process ``pid``; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            text = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    total_kb = 0
    for line in text.splitlines():
        if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Swap:")):
            total_kb += int(line.split()[1])
    return total_kb * 1024


def exceeded(limit_mb: int, used_bytes: int) -> str | None:
    """The failure message when ``used_bytes`` is over ``limit_mb``, else None."""
    if used_bytes <= limit_mb * _MB:
        return None
    return f"task exceeded {limit_mb} MB (worker used {used_bytes / _MB:.0f} MB and was stopped)"
