"""Reading, writing, listing and deleting by URI: local paths and objects, each call counted."""
from __future__ import annotations

import fnmatch
import glob
import math
import os
import shutil
from typing import BinaryIO

from . import objects
from .ranged import buffered

#: boto3 uploads a file in one PUT up to this size, in parts of this size above it.
MULTIPART_BYTES = 8 * 2**20
#: The largest object a single COPY request may copy (S3's limit).
COPY_LIMIT = 5 * 2**30
#: Keys per LIST page and per multi-object DELETE (S3's limits).
PAGE_KEYS = 1000
#: Object backends whose client is a boto3 S3 client (server-side copy).
_BOTO3_BACKENDS = (*objects.S3_COMPATIBLE, "ibm_cos")


def local_path(uri: str | os.PathLike) -> str:
    """The filesystem path of a local URI (``file://`` stripped)."""
    uri = os.fspath(uri)
    return uri[len("file://"):] if uri.startswith("file://") else uri


def head(uri: str) -> dict[str, str]:
    """An object's metadata, keys lower-cased (``content-length``, and ``etag`` where the store gives one)."""
    client, bucket, key = objects.client(uri)
    objects.count("head")
    return {k.lower(): v for k, v in client.head_object(bucket, key).items()}


def size(uri: str) -> int:
    """Size in bytes of the object or file at ``uri``."""
    if objects.is_object_uri(uri):
        return int(head(uri)["content-length"])
    return os.path.getsize(local_path(uri))


def exists(uri: str) -> bool:
    """Whether ``uri`` exists (errors other than "not found", e.g. bad credentials, are raised)."""
    if objects.is_object_uri(uri):
        from lithops.storage.utils import StorageNoSuchKeyError  # lithops loads only where objects are used

        try:
            size(uri)
            return True
        except StorageNoSuchKeyError:
            return False
    return os.path.exists(local_path(uri))


def read_range(uri: str, start: int = 0, end: int | None = None) -> bytes:
    """Read bytes ``[start, end)`` of ``uri`` (to the end when ``end`` is None).

    Only that byte range is transferred: a task reads its own slice of a large input.
    """
    if end is not None and end <= start:
        return b""
    if objects.is_object_uri(uri):
        client, bucket, key = objects.client(uri)
        if start == 0 and end is None:
            data = client.get_object(bucket, key)
        else:  # explicit last byte: not every backend accepts an open-ended range
            last = (size(uri) if end is None else end) - 1
            data = client.get_object(bucket, key, extra_get_args={"Range": f"bytes={start}-{last}"})
        objects.count("get", read=len(data))
        return data
    with open(local_path(uri), "rb") as handle:
        handle.seek(start)
        return handle.read(-1 if end is None else end - start)


def open_ranged(uri: str, buffer_size: int = 1 << 20) -> BinaryIO:
    """A seekable binary file over ``uri`` that transfers only what is read (in ``buffer_size`` blocks).

    For libraries that accept file objects (laspy, lazrs): a task decoding one
    range of a large object fetches that range and the headers, not the whole object.
    """
    if not objects.is_object_uri(uri):
        return open(local_path(uri), "rb")
    return buffered(size(uri), lambda start, end: read_range(uri, start, end), buffer_size)


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` (parent folders created for local paths)."""
    if objects.is_object_uri(uri):
        client, bucket, key = objects.client(uri)
        client.put_object(bucket, key, data)
        objects.count("put", written=len(data))
        return
    path = local_path(uri)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def upload_file(path: str, uri: str) -> None:
    """Copy local file ``path`` to ``uri`` (multipart above :data:`MULTIPART_BYTES` for objects)."""
    if not objects.is_object_uri(uri):
        os.makedirs(os.path.dirname(os.path.abspath(local_path(uri))), exist_ok=True)
        shutil.copyfile(path, local_path(uri))
        return
    client, bucket, key = objects.client(uri)
    nbytes = os.path.getsize(path)
    client.upload_file(path, bucket, key)
    parts = math.ceil(nbytes / MULTIPART_BYTES)
    objects.count("put", 1 if parts <= 1 else parts + 2, written=nbytes)  # + create and complete


def copy_object(source: str, target: str) -> None:
    """Server-side copy of object ``source`` to ``target`` in the same backend."""
    client, bucket, key = objects.client(target)
    _, src_bucket, src_key = objects.client(source)
    if client.backend not in _BOTO3_BACKENDS:  # no server-side copy: read and write again
        data = read_range(source)
        write_bytes(target, data)
        return
    s3 = client.get_client()
    nbytes = size(source)
    copy_from = {"Bucket": src_bucket, "Key": src_key}
    if nbytes <= COPY_LIMIT:
        s3.copy_object(Bucket=bucket, Key=key, CopySource=copy_from)
        objects.count("copy")
    else:
        s3.copy(copy_from, bucket, key)
        objects.count("copy", math.ceil(nbytes / MULTIPART_BYTES) + 2)


def delete(uri: str) -> None:
    """Remove one file or object (nothing when it is absent)."""
    if objects.is_object_uri(uri):
        client, bucket, key = objects.client(uri)
        client.delete_object(bucket, key)
        objects.count("delete")
    elif os.path.exists(local_path(uri)):
        os.remove(local_path(uri))


def delete_prefix(uri: str) -> None:
    """Remove everything under a folder or object prefix (scratch clean-up)."""
    if objects.is_object_uri(uri):
        keys = [u.split("/", 3)[3] for u in list_prefix(uri)]
        if keys:
            client, bucket, _ = objects.client(uri)
            client.delete_objects(bucket, keys)
            objects.count("delete", math.ceil(len(keys) / PAGE_KEYS))
        return
    shutil.rmtree(local_path(uri), ignore_errors=True)


def list_prefix(uri: str) -> list[str]:
    """Every object (or file, for a local folder) under ``uri``, recursively, sorted by URI."""
    if not objects.is_object_uri(uri):
        root = local_path(uri)
        return sorted(os.path.join(base, name) for base, _, names in os.walk(root) for name in names)
    client, bucket, prefix = objects.client(uri)
    keys = client.list_keys(bucket, prefix=prefix)
    objects.count("list", max(1, math.ceil(len(keys) / PAGE_KEYS)))
    head = uri[: len(uri) - len(prefix)] if prefix else uri.rstrip("/") + "/"
    return sorted(head + key for key in keys if not key.endswith("/"))


def expand(uri: str) -> list[str]:
    """The files or objects ``uri`` names, sorted: itself, a folder's (or prefix's) direct
    members, or a glob's matches (``*``, ``?`` and ``[...]`` within one path segment).

    ``s3://bucket/tiles/``, ``s3://bucket/tiles`` (when no object has that key) and
    ``s3://bucket/tiles/*.laz`` work as a local folder and glob do.  Nothing found: ``[]``.
    """
    if not objects.is_object_uri(uri):
        path = local_path(uri)
        if os.path.isdir(path):
            return sorted(e.path for e in os.scandir(path) if e.is_file())
        if glob.has_magic(path):
            return sorted(p for p in glob.glob(path) if os.path.isfile(p))
        return [path] if os.path.isfile(path) else []
    if glob.has_magic(uri):
        pattern = uri.partition("://")[2].partition("/")[2]
        head = uri[: len(uri) - len(pattern)]
        fixed = pattern[: min(pattern.index(c) for c in "*?[" if c in pattern)]
        wanted = pattern.split("/")
        matches = []
        for found in list_prefix(head + fixed[: fixed.rfind("/") + 1]):
            parts = found[len(head):].split("/")
            if len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted)):
                matches.append(found)
        return matches
    if not uri.endswith("/") and exists(uri):
        return [uri]
    folder = uri.rstrip("/") + "/"
    return [found for found in list_prefix(folder) if "/" not in found[len(folder):]]
