"""``cloudbutton clean``: remove the run folders (scratch) that failed or kept runs left behind.

Every run has a local marker folder ``$CLOUDBUTTON_CACHE/runs/<identity>`` whose
``run.json`` names its scratch (the same folder, another ``--scratch`` folder, or an
object-storage prefix).  A run still in progress holds a lock on it and is never removed.
Cached input digests (``$CLOUDBUTTON_CACHE/digests``) older than the same age go too.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass

from . import storage
from .errors import InputError
from .journal import LOCK_FILE, RUN_FILE, cache_dir, default_runs_dir

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise InputError("--older-than", f"{text!r} is not an age such as 7d, 12h or 30m")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass(frozen=True)
class RunFolder:
    """One run's marker folder and what its ``run.json`` says."""

    marker: str
    scratch: str
    status: str
    updated: float
    nbytes: int


def _size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove_unless_in_use(run: RunFolder) -> bool:
    """Remove ``run``'s scratch and marker while holding its lock; False when a live run holds it."""
    with open(os.path.join(run.marker, LOCK_FILE), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if run.scratch != run.marker:
            storage.delete_prefix(run.scratch)
        shutil.rmtree(run.marker, ignore_errors=True)
    return True


def run_folders(runs_dir: str | None = None) -> list[RunFolder]:
    """The run folders under ``runs_dir`` (default ``$CLOUDBUTTON_CACHE/runs``), oldest first."""
    runs_dir = runs_dir or default_runs_dir()
    found = []
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        marker = os.path.join(runs_dir, name)
        if not os.path.isdir(marker):
            continue
        try:
            with open(os.path.join(marker, RUN_FILE)) as handle:
                info = json.load(handle)
        except (OSError, ValueError):
            info = {}
        updated = float(info.get("updated") or os.path.getmtime(marker))
        found.append(RunFolder(marker, str(info.get("scratch") or marker), str(info.get("status", "unknown")),
                               updated, _size(marker)))
    return sorted(found, key=lambda r: r.updated)


def clean(older_than_s: float = 0.0, runs_dir: str | None = None, dry_run: bool = False) -> list[RunFolder]:
    """Remove the run folders last updated more than ``older_than_s`` ago (their scratch too),
    except those of runs in progress (with ``dry_run``, those too); return what was (or, with ``dry_run``, would be) removed."""
    now = time.time()
    removed = []
    for run in run_folders(runs_dir):
        if now - run.updated >= older_than_s and (dry_run or _remove_unless_in_use(run)):
            removed.append(run)
    if not dry_run:
        _forget_old_digests(now - older_than_s)
    return removed


def _forget_old_digests(before: float) -> None:
    """Drop cached input digests written before ``before`` (a later run re-reads those inputs)."""
    for root, _, files in os.walk(os.path.join(cache_dir(), "digests")):
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if os.path.getmtime(path) < before:
                    os.remove(path)
