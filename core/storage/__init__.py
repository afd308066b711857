"""URI-addressed storage: local paths and object storage through Lithops, ranged reads, atomic outputs.

A URI is a local path (``/data/x.bam``, ``file:///data/x.bam``) or an object in a
Lithops storage backend: ``s3://bucket/key`` (AWS S3, or any S3-compatible server
the Lithops config names as ``minio``/``ceph`` storage), ``gs://``, ``cos://``,
``az://`` or ``localhost://``.  Object URIs use the Lithops configuration set with
:func:`configure` (the CLI sets it before planning, the runner in every task).

Modules: :mod:`.objects` (backends, clients, request counts), :mod:`.io` (read,
write, list, delete), :mod:`.ranged` (seekable ranged reader), :mod:`.outputs`
(atomic outputs, local copies of inputs), :mod:`.gateway` and :mod:`.gateway_server` (objects as loopback
HTTP URLs for native readers such as htslib).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Iterator

from .gateway import settle, url_of
from .io import (copy_object, delete, delete_prefix, exists, expand, head, list_prefix, local_path, open_ranged,
                 read_range, size, upload_file, write_bytes)
from .objects import (REQUEST_KINDS, S3_COMPATIBLE, SCHEME_OF_BACKEND, SCHEMES, cache_uri, configure, configured,
                      is_object_uri, remote_bytes, requests)
from .outputs import atomic_output, cached_copy, open_input


@dataclass(frozen=True)
class Ref:
    """A task output kept in storage; tasks pass these instead of the data itself.

    ``needs``: the URIs of the Refs inside the stored value (a stage that returns Refs
    to files it wrote), so whoever reuses this output can check they are still there.
    """

    uri: str
    nbytes: int
    needs: tuple[str, ...] = ()


def store(value: Any, uri: str) -> Ref:
    """Pickle ``value`` to ``uri`` and return a :class:`Ref` to it."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_bytes(uri, data)
    return Ref(uri, len(data), tuple(ref.uri for ref in _refs_within(value)))


def _refs_within(value: Any) -> Iterator[Ref]:
    """The Refs in ``value`` and in the lists, tuples and dict values it is made of."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, (list, tuple)):
        for part in value:
            yield from _refs_within(part)
    elif isinstance(value, dict):
        for part in value.values():
            yield from _refs_within(part)


def load(ref: Ref) -> Any:
    """Read back a value saved by :func:`store`."""
    return pickle.loads(read_range(ref.uri))


__all__ = ["REQUEST_KINDS", "Ref", "S3_COMPATIBLE", "SCHEMES", "SCHEME_OF_BACKEND", "atomic_output", "cache_uri",
           "cached_copy", "configure", "configured", "copy_object", "delete", "delete_prefix", "exists", "expand", "head",
           "is_object_uri", "list_prefix", "load", "local_path", "open_input", "open_ranged", "read_range",
           "remote_bytes", "requests", "settle", "size", "store", "upload_file", "url_of", "write_bytes"]
