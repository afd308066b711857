"""Partitioners: turn an input into small, picklable partition descriptors.

Pipelines supply their own (spectra ranges of an imzML file, genomic regions,
LiDAR tiles); the core ships the generic byte-range one used for text inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from . import storage


@runtime_checkable
class Partitioner(Protocol):
    """Anything that can list the partitions of its input (metadata reads only)."""

    def partitions(self) -> list[Any]:
        """Return one small picklable descriptor per partition, in a fixed order."""
        ...


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of ``uri``."""

    uri: str
    start: int
    end: int


@dataclass(frozen=True)
class ByteRangePartitioner:
    """Split a file or object into ``n`` nearly equal byte ranges.

    Parameters
    ----------
    uri : str
        Input file or object URI.
    n : int
        Number of partitions (at least 1; fewer when the input is smaller than ``n`` bytes).
    """

    uri: str
    n: int

    def partitions(self) -> list[ByteRange]:
        total = storage.size(self.uri)
        n = max(1, min(self.n, total or 1))
        cuts = [total * i // n for i in range(n + 1)]
        return [ByteRange(self.uri, cuts[i], cuts[i + 1]) for i in range(n)]


def read_records(part: ByteRange, delimiter: bytes = b"\n", lookahead: int = 1 << 16) -> bytes:
    """Read the delimited records that *start* inside ``part``.

    A record belongs to the range holding its first byte, so adjacent ranges
    together return every record exactly once, whatever the cut points.
    Reads only the range plus the tail of its last record.
    """
    begin = part.start
    if begin > 0:  # skip the record that started in the previous range
        head = storage.read_range(part.uri, begin - 1, part.end)
        first = head.find(delimiter)
        if first < 0:
            return b""
        body = head[first + len(delimiter):]
    else:
        body = storage.read_range(part.uri, 0, part.end)
    if not body or part.end >= storage.size(part.uri) or body.endswith(delimiter):
        return body
    tail, pos = b"", part.end
    while True:  # finish the last record, which may run past the range end
        chunk = storage.read_range(part.uri, pos, pos + lookahead)
        cut = chunk.find(delimiter)
        if cut >= 0 or not chunk:
            return body + tail + (chunk[: cut + len(delimiter)] if cut >= 0 else b"")
        tail += chunk
        pos += len(chunk)
