"""URI-addressed storage: local paths and Lithops object storage, ranged reads, atomic outputs.

A URI is a local path (``/data/x.bam``, ``file:///data/x.bam``) or an object in a
Lithops storage backend (``localhost://bucket/key``, ``s3://bucket/key``,
``gs://``, ``cos://``, ``az://``).  Object URIs use the Lithops configuration set
with :func:`configure` (the runner sets it in the driver and in every task).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator
from urllib.parse import urlparse

#: URI scheme -> Lithops storage backend name.
LITHOPS_SCHEMES = {
    "localhost": "localhost",
    "s3": "aws_s3",
    "gs": "gcp_storage",
    "gcs": "gcp_storage",
    "cos": "ibm_cos",
    "az": "azure_storage",
}

_config: dict[str, Any] | None = None
_clients: dict[str, Any] = {}
_lock = threading.Lock()
_remote_bytes = threading.local()


def configure(lithops_config: dict[str, Any] | None) -> None:
    """Set the Lithops configuration used for object URIs in this process."""
    global _config
    if lithops_config != _config:
        _config = lithops_config
        _clients.clear()


def is_object_uri(uri: str) -> bool:
    """True when ``uri`` names an object in a Lithops storage backend."""
    return urlparse(str(uri)).scheme in LITHOPS_SCHEMES


def local_path(uri: str | os.PathLike) -> str:
    """The filesystem path of a local URI (``file://`` stripped)."""
    uri = os.fspath(uri)
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _split(uri: str) -> tuple[Any, str, str]:
    parsed = urlparse(uri)
    backend = LITHOPS_SCHEMES[parsed.scheme]
    with _lock:
        client = _clients.get(backend)
        if client is None:
            from lithops import Storage

            client = Storage(config=_config, backend=backend)
            _clients[backend] = client
    return client, parsed.netloc, parsed.path.lstrip("/")


def remote_bytes() -> tuple[int, int]:
    """Bytes (read, written) over the network by this thread through object URIs."""
    return getattr(_remote_bytes, "read", 0), getattr(_remote_bytes, "written", 0)


def _count(read: int = 0, written: int = 0) -> None:
    _remote_bytes.read = getattr(_remote_bytes, "read", 0) + read
    _remote_bytes.written = getattr(_remote_bytes, "written", 0) + written


def size(uri: str) -> int:
    """Size in bytes of the object or file at ``uri``."""
    if is_object_uri(uri):
        client, bucket, key = _split(uri)
        return int(client.head_object(bucket, key)["content-length"])
    return os.path.getsize(local_path(uri))


def exists(uri: str) -> bool:
    """Whether ``uri`` exists."""
    if is_object_uri(uri):
        client, bucket, key = _split(uri)
        try:
            client.head_object(bucket, key)
            return True
        except Exception:  # Lithops raises backend-specific "not found" errors
            return False
    return os.path.exists(local_path(uri))


def read_range(uri: str, start: int = 0, end: int | None = None) -> bytes:
    """Read bytes ``[start, end)`` of ``uri`` (to the end when ``end`` is None).

    Only that byte range is transferred: a task reads its own slice of a large input.
    """
    if end is not None and end <= start:
        return b""
    if is_object_uri(uri):
        client, bucket, key = _split(uri)
        if start == 0 and end is None:
            data = client.get_object(bucket, key)
        else:  # explicit last byte: not every backend accepts an open-ended range
            last = (size(uri) if end is None else end) - 1
            data = client.get_object(bucket, key, extra_get_args={"Range": f"bytes={start}-{last}"})
        _count(read=len(data))
        return data
    with open(local_path(uri), "rb") as handle:
        handle.seek(start)
        return handle.read(-1 if end is None else end - start)


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over an object that fetches the byte ranges read, nothing more."""

    def __init__(self, uri: str):
        super().__init__()
        self.uri, self.size, self.pos = uri, size(uri), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        data = read_range(self.uri, self.pos, min(self.pos + len(buffer), self.size))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def open_ranged(uri: str, buffer_size: int = 1 << 20) -> BinaryIO:
    """A seekable binary file over ``uri`` that transfers only what is read (in ``buffer_size`` blocks).

    For libraries that accept file objects (laspy, lazrs): a task decoding one
    range of a large object fetches that range and the headers, not the whole object.
    """
    if not is_object_uri(uri):
        return open(local_path(uri), "rb")
    return io.BufferedReader(_RangeFile(uri), buffer_size)


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` (parent folders created for local paths)."""
    if is_object_uri(uri):
        client, bucket, key = _split(uri)
        client.put_object(bucket, key, data)
        _count(written=len(data))
        return
    path = local_path(uri)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def delete_prefix(uri: str) -> None:
    """Remove everything under a folder or object prefix (scratch clean-up)."""
    if is_object_uri(uri):
        client, bucket, prefix = _split(uri)
        keys = client.list_keys(bucket, prefix=prefix)
        if keys:
            client.delete_objects(bucket, keys)
        return
    shutil.rmtree(local_path(uri), ignore_errors=True)


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[str]:
    """Yield a local path for ``uri``, downloading object URIs to a temporary file.

    Libraries that need a real file (pysam, laspy, rasterio) read through this.
    """
    if not is_object_uri(uri):
        yield local_path(uri)
        return
    suffix = os.path.basename(urlparse(uri).path)
    with tempfile.TemporaryDirectory(prefix="cloudbutton-in-") as tmp:
        path = os.path.join(tmp, suffix)
        with open(path, "wb") as handle:
            handle.write(read_range(uri))
        yield path


@contextlib.contextmanager
def atomic_output(uri: str, *, directory: bool = False) -> Iterator[str]:
    """Yield a temporary local path; move it to ``uri`` only if the block succeeds.

    Readers never see a half-written output: on error the temporary file or
    folder is removed and any previous output is left as it was.

    Parameters
    ----------
    uri : str
        Final location (local path or object URI).
    directory : bool
        Produce a folder rather than a file (the folder replaces any old one).
    """
    remote = is_object_uri(uri)
    if remote:
        parent = tempfile.mkdtemp(prefix="cloudbutton-out-")
        name = os.path.basename(urlparse(uri).path.rstrip("/")) or "output"
    else:
        final = os.path.abspath(local_path(uri))
        parent, name = os.path.dirname(final), os.path.basename(final)
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    if directory:
        os.makedirs(tmp)
    try:
        yield tmp
        if remote:
            _upload(tmp, uri, directory)
        else:
            if directory and os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        if remote:
            shutil.rmtree(parent, ignore_errors=True)


def _upload(path: str, uri: str, directory: bool) -> None:
    if not directory:
        with open(path, "rb") as handle:
            write_bytes(uri, handle.read())
        return
    for root, _, files in os.walk(path):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), path)
            with open(os.path.join(root, name), "rb") as handle:
                write_bytes(uri.rstrip("/") + "/" + rel, handle.read())


@dataclass(frozen=True)
class Ref:
    """A task output kept in storage; tasks pass these instead of the data itself."""

    uri: str
    nbytes: int


def store(value: Any, uri: str) -> Ref:
    """Pickle ``value`` to ``uri`` and return a :class:`Ref` to it."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_bytes(uri, data)
    return Ref(uri, len(data))


def load(ref: Ref) -> Any:
    """Read back a value saved by :func:`store`."""
    return pickle.loads(read_range(ref.uri))
