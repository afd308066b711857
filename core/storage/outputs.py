"""Outputs that appear whole or not at all, on local disks and in object storage; inputs as local files."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from typing import Iterator
from urllib.parse import urlparse

from . import objects
from .io import copy_object, delete, delete_prefix, head, local_path, read_range, upload_file

_TMP_TAG = ".tmp-"


def _temporary_name(name: str) -> str:
    return f".{name}{_TMP_TAG}{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def atomic_output(uri: str, *, directory: bool = False) -> Iterator[str]:
    """Yield a temporary local path; move it to ``uri`` only if the block succeeds.

    Readers never see a half-written output: on error the temporary file or
    folder is removed and any previous output is left as it was.  An object
    URI is uploaded to a temporary key first, then copied to its final key and
    the temporary key deleted (for a folder: every file uploaded before any is
    copied into place; other objects under the folder's prefix are left alone).

    Parameters
    ----------
    uri : str
        Final location (local path or object URI).
    directory : bool
        Produce a folder rather than a file.  Into an existing local folder each file produced
        moves to its place, replacing a file of the same name; no other file is touched.
    """
    remote = objects.is_object_uri(uri)
    if remote:
        parent = tempfile.mkdtemp(prefix="cloudbutton-out-")
        name = os.path.basename(urlparse(uri).path.rstrip("/")) or "output"
    else:
        final = os.path.abspath(local_path(uri))
        parent, name = os.path.dirname(final), os.path.basename(final)
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, _temporary_name(name))
    if directory:
        os.makedirs(tmp)
    try:
        yield tmp
        if remote:
            _publish(tmp, uri, directory)
        else:
            if directory and os.path.isdir(final):  # only the files produced move in; nothing else is touched
                _merge_into(tmp, final)
            else:
                os.replace(tmp, final)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        if remote:
            shutil.rmtree(parent, ignore_errors=True)


def _merge_into(tmp: str, final: str) -> None:
    """Move every file under folder ``tmp`` to the same relative path under ``final``."""
    for root, _, files in os.walk(tmp):
        target = os.path.join(final, os.path.relpath(root, tmp))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.replace(os.path.join(root, name), os.path.join(target, name))


def _publish(path: str, uri: str, directory: bool) -> None:
    """Upload ``path`` under a temporary key beside ``uri``, copy it to ``uri``, delete the temporary key."""
    base, _, name = uri.rstrip("/").rpartition("/")
    staging = f"{base}/{_temporary_name(name)}"
    files = ([os.path.relpath(os.path.join(root, f), path) for root, _, names in os.walk(path) for f in names]
             if directory else [""])
    try:
        for rel in files:
            upload_file(os.path.join(path, rel) if rel else path, f"{staging}/{rel}" if rel else staging)
        for rel in sorted(files):
            final = f"{uri.rstrip('/')}/{rel}" if rel else uri
            copy_object(f"{staging}/{rel}" if rel else staging, final)
    finally:
        if directory:
            delete_prefix(staging + "/")
        else:
            delete(staging)


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[str]:
    """Yield a local path for ``uri``, downloading object URIs to a temporary file.

    Libraries that need a real file (pysam, laspy, rasterio) read through this.
    """
    if not objects.is_object_uri(uri):
        yield local_path(uri)
        return
    suffix = os.path.basename(urlparse(uri).path)
    with tempfile.TemporaryDirectory(prefix="cloudbutton-in-") as tmp:
        path = os.path.join(tmp, suffix)
        with open(path, "wb") as handle:
            handle.write(read_range(uri))
        yield path


def cached_copy(uri: str) -> str:
    """A local copy of the small object ``uri`` (an index, a ``.fai``), downloaded once per content.

    Kept in ``$CLOUDBUTTON_CACHE/objects`` under a key of the URI, size and ETag, so a
    changed object is fetched again; written atomically, so concurrent tasks share it.
    Local paths are returned as they are.
    """
    if not objects.is_object_uri(uri):
        return local_path(uri)
    from ..journal import cache_dir  # the journal imports storage: import it only when needed

    meta = head(uri)
    key = hashlib.sha256(f"{uri}\0{meta.get('content-length')}\0{meta.get('etag')}".encode()).hexdigest()
    path = os.path.join(cache_dir(), "objects", key[:32], os.path.basename(urlparse(uri).path))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(read_range(uri))
        os.replace(tmp, path)
    return path
