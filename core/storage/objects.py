"""Object stores through Lithops: which backend a URI names, one client per backend, request counts.

``s3://bucket/key`` goes to the S3-compatible backend the Lithops config names
as its storage (``aws_s3``, or ``minio``/``ceph`` with their ``endpoint`` key,
for any S3-compatible server); when the storage is another one (e.g. ``localhost``),
to a ``minio``/``ceph`` section with an endpoint if the config has one, else to ``aws_s3``.  ``gs://``,
``cos://``, ``az://`` and ``localhost://`` name their own backends.  Every
request made through this module is counted per thread (see :func:`requests`),
so a task's storage calls, and therefore its request charges, can be recorded.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError

#: Lithops storage backends that speak the S3 protocol (``s3://`` URIs).
S3_COMPATIBLE = ("aws_s3", "minio", "ceph")

#: URI scheme -> Lithops storage backend (``s3`` is resolved against the config, see :func:`backend_of`).
SCHEMES = {
    "localhost": "localhost",
    "s3": "aws_s3",
    "gs": "gcp_storage",
    "gcs": "gcp_storage",
    "cos": "ibm_cos",
    "az": "azure_storage",
}

#: Lithops storage backend -> the URI scheme that addresses it.
SCHEME_OF_BACKEND = {"localhost": "localhost", "aws_s3": "s3", "minio": "s3", "ceph": "s3",
                     "gcp_storage": "gs", "ibm_cos": "cos", "azure_storage": "az"}

#: Request kinds counted: reads (GET, HEAD), writes (PUT, COPY, multipart parts), LIST pages, DELETE calls.
REQUEST_KINDS = ("get", "head", "put", "copy", "list", "delete")

_config: dict[str, Any] | None = None
_clients: dict[str, Any] = {}
_lock = threading.Lock()
_counters = threading.local()


def _after_fork() -> None:
    """A forked worker opens its own connections (a client's sockets are not shared across processes)."""
    global _lock, _counters
    _clients.clear()
    _lock, _counters = threading.Lock(), threading.local()


os.register_at_fork(after_in_child=_after_fork)


def configure(lithops_config: dict[str, Any] | None) -> None:
    """Set the Lithops configuration used for object URIs in this process (None: Lithops's own
    lookup: ``LITHOPS_CONFIG_FILE``, ``~/.lithops/config``...)."""
    global _config
    if lithops_config != _config:
        _config = lithops_config
        _clients.clear()


def configured() -> dict[str, Any]:
    """The Lithops configuration in force: the one given to :func:`configure`, else Lithops's default."""
    if _config is not None:
        return _config
    from lithops.config import load_config

    return load_config(log=False)


def backend_of(scheme: str, config: dict[str, Any]) -> str:
    """The Lithops storage backend serving URIs of ``scheme`` under ``config``.

    Raises
    ------
    InputError
        For an ``aws_s3`` section with an ``endpoint`` key, which Lithops's aws_s3 backend ignores.
    """
    backend = SCHEMES[scheme]
    if scheme == "s3":  # the configured storage if S3-compatible, else a minio/ceph section, else AWS
        chosen = (config.get("lithops") or {}).get("storage")
        sections = [name for name in ("minio", "ceph") if "endpoint" in (config.get(name) or {})]
        backend = chosen if chosen in S3_COMPATIBLE else (sections[0] if sections else "aws_s3")
        if backend == "aws_s3" and "endpoint" in (config.get("aws_s3") or {}):
            raise InputError("--lithops-config", "Lithops's aws_s3 storage has no endpoint key: for an "
                             "S3-compatible server use 'storage: minio' with a minio section (endpoint, "
                             "access_key_id, secret_access_key, storage_bucket)")
    return backend


def is_object_uri(uri: str) -> bool:
    """True when ``uri`` names an object in a Lithops storage backend."""
    return urlparse(str(uri)).scheme in SCHEMES


def client(uri: str) -> tuple[Any, str, str]:
    """(Lithops Storage, bucket, key) of an object URI; one client per backend and process."""
    parsed = urlparse(uri)
    config = configured()
    backend = backend_of(parsed.scheme, config)
    with _lock:
        found = _clients.get(backend)
        if found is None:
            from lithops import Storage

            found = _clients[backend] = Storage(config=config, backend=backend)
    return found, parsed.netloc, parsed.path.lstrip("/")


def cache_uri(uri: str, name: str) -> str:
    """Where something derived from object ``uri`` (an index built for it) is kept for workers on other
    machines: ``cloudbutton-cache/<name>`` in the Lithops storage bucket of ``uri``'s backend."""
    store, _, _ = client(uri)
    return uri_of(store.backend, store.bucket, f"cloudbutton-cache/{name}")


def uri_of(backend: str, bucket: str, key: str) -> str:
    """The URI of object ``key`` of ``bucket`` in a Lithops storage backend."""
    return f"{SCHEME_OF_BACKEND.get(backend, backend)}://{bucket}/{key}"


def count(kind: str, n: int = 1, *, read: int = 0, written: int = 0) -> None:
    """Record ``n`` requests of ``kind`` (and bytes moved) made by the calling thread."""
    state = _state()
    state["requests"][kind] += n
    state["read"] += read
    state["written"] += written


def _state() -> dict[str, Any]:
    state = getattr(_counters, "state", None)
    if state is None:
        state = _counters.state = {"requests": Counter(), "read": 0, "written": 0}
    return state


def counters() -> dict[str, Any]:
    """The calling thread's request and byte counters (to count another thread's calls into, see
    :func:`counting_into`)."""
    return _state()


@contextlib.contextmanager
def counting_into(state: dict[str, Any]) -> Iterator[None]:
    """Count the calling thread's requests into ``state`` (another thread's :func:`counters`) meanwhile.

    A server thread fetching on behalf of a task (see :mod:`.gateway`) bills the task.
    """
    previous = getattr(_counters, "state", None)
    _counters.state = state
    try:
        yield
    finally:
        _counters.state = previous


def requests() -> dict[str, int]:
    """Requests made by the calling thread so far, by kind (:data:`REQUEST_KINDS`)."""
    counts = _state()["requests"]
    return {kind: counts[kind] for kind in REQUEST_KINDS}


def remote_bytes() -> tuple[int, int]:
    """Bytes (read, written) over the network by this thread through object URIs."""
    state = _state()
    return state["read"], state["written"]
