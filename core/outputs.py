"""Output safety: a job never deletes or overwrites a file it did not write.

Checked before any work (:func:`check`), in the driver:

* an output that is one of the job's inputs, or a folder holding one, is refused;
* a folder output that holds files this tool did not write is refused unless
  ``overwrite``; with it, the job writes its own files beside them and replaces
  only files of the same names;
* a folder output that holds a finished earlier run's output is refused unless
  ``overwrite`` (or ``resume``); the files of a failed run (its kpi.json) are no obstacle;
* a single-file output (VCF, GeoTIFF) replaces an older file of the same name, as
  ``bcftools -o`` does, but never a folder.

What the tool wrote into a folder is listed in its manifest, ``.cloudbutton-outputs.json``
(:func:`record`), so a later run knows which files are its own.
"""
from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any, Iterator, Sequence

from . import storage
from .errors import InputError

MANIFEST = ".cloudbutton-outputs.json"

Snapshot = dict[str, tuple[int, int, int]]  # relative path -> (inode, size, mtime_ns)


def _real(uri: str) -> str:
    return uri.rstrip("/") if storage.is_object_uri(uri) else os.path.realpath(storage.local_path(uri))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/" + os.sep) + ("/" if "://" in folder else os.sep))


def _files(folder: str) -> Iterator[str]:
    """Relative paths of every file under ``folder`` except the manifest."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel != MANIFEST:
                yield rel


def read_manifest(folder: str) -> dict[str, Any]:
    """The manifest of an output folder (empty when there is none or it is unreadable)."""
    try:
        with open(os.path.join(folder, MANIFEST)) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def check(output: str, inputs: Sequence[str], *, is_dir: bool, overwrite: bool = False,
          resume: bool = False) -> None:
    """Refuse an output that would delete or overwrite what the tool did not write.

    Raises
    ------
    InputError
        One line naming the output and the problem (exit code 2).
    """
    out = _real(output)
    for given in inputs:
        source = _real(given)
        if source == out:
            raise InputError(output, f"is an input of this command ({given}); choose another output")
        if _inside(source, out):
            raise InputError(output, f"contains an input of this command ({given}); choose another output folder")
    if storage.is_object_uri(output):
        return
    if not is_dir:
        if os.path.isdir(out):
            raise InputError(output, "is a folder; give the path of the output file")
        return
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise InputError(output, "exists and is not a folder; give a new or empty folder")
    manifest = read_manifest(out)
    own = set(manifest.get("files", {}))
    foreign = [rel for rel in _files(out) if rel not in own]
    if foreign and not overwrite:
        raise InputError(output, f"folder is not empty ({len(foreign)} file(s) this tool did not write, e.g. "
                                 f"{foreign[0]}); choose a new or empty folder, or give --overwrite to write "
                                 "beside them (only files of the same names as the outputs are replaced)")
    if own and manifest.get("ok") and not (overwrite or resume):
        raise InputError(output, "holds the output of an earlier run; give --overwrite to replace it")


def snapshot(output: str, is_dir: bool) -> Snapshot:
    """(inode, size, mtime) of every file in a local output folder, to tell later what a run wrote."""
    folder = storage.local_path(output)
    if not is_dir or storage.is_object_uri(output) or not os.path.isdir(folder):
        return {}
    found: Snapshot = {}
    for rel in _files(folder):
        with contextlib.suppress(OSError):
            st = os.stat(os.path.join(folder, rel))
            found[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def record(output: str, is_dir: bool, before: Snapshot, ok: bool) -> None:
    """Add the files this run wrote into a local output folder to its manifest (with the run's status)."""
    folder = storage.local_path(output)
    if not is_dir or storage.is_object_uri(output) or not os.path.isdir(folder):
        return
    after = snapshot(output, True)
    listed = read_manifest(folder).get("files", {})
    written = {rel: list(stat) for rel, stat in after.items() if before.get(rel) != stat}
    kept = {rel: stat for rel, stat in listed.items() if rel in after and rel not in written}
    manifest = {"ok": ok, "files": dict(sorted({**kept, **written}.items()))}
    tmp = os.path.join(folder, f".{MANIFEST}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "w") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(tmp, os.path.join(folder, MANIFEST))
