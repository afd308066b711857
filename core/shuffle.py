"""A shuffle built for object storage: one object per map task, a bucket manifest, ranged reads.

The layout of the serverless sorts of Lithops and Primula:

* **Map side.** A task's ``(key, value)`` pairs are split into buckets and written
  as ONE object (or spill file): the pickled non-empty buckets one after the
  other, then an offset index (bucket, offset, length per non-empty bucket) and
  its entry count.  The task returns a :class:`~cloudbutton.core.storage.Ref`.
* **Manifest.** Between the stages the driver reads each map object's index (one
  ranged GET from its tail) and writes, by an external counting sort, a manifest
  ordered by bucket: for bucket ``j``, which map objects hold data for it and at
  which byte range.  The driver's memory follows maps + buckets, not maps x
  buckets, and the manifest is passed by reference (URI + byte range).
* **Bucket side.** A bucket task reads its manifest rows (one ranged GET) and
  then one ranged GET per map object that sent it anything.  Empty buckets cost
  no request at all.

Requests per shuffle: N PUTs + N index GETs + 1 manifest PUT + for each bucket
task 1 + (map objects it touches) GETs.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from . import storage
from .storage import objects

#: Offset index of a map object: one row per non-empty bucket.
INDEX = np.dtype([("bucket", "<i4"), ("offset", "<i8"), ("length", "<i8")])
#: Manifest row: map object number, byte offset and length of one bucket's part in it.
ROW = np.dtype([("map", "<i4"), ("offset", "<i8"), ("length", "<i8")])
#: Bytes fetched from a map object's tail in one GET, hoping the whole index is there.
TAIL_BYTES = 64 * 1024
#: Index rows sorted per pass of the driver's external counting sort.
SORT_CHUNK = 1 << 20
#: Parallel index reads by the driver, and how many indexes it holds at once.
INDEX_READERS = 16
INDEX_WINDOW = 64


@dataclass(frozen=True)
class ShuffleInput:
    """What a bucket task reads: rows ``[start, stop)`` of the manifest at ``manifest``.

    ``maps`` turns a row's map number into its object: a template with ``{}``
    (``s3://b/run/read/{}.pkl``), or the manifest byte range of a URI table
    when the map objects follow no template.  ``nbytes``: the bucket's stored size.
    """

    manifest: str
    bucket: int
    start: int
    stop: int
    nbytes: int
    maps: str | tuple[int, int]


def bucket_of(key: Any, n: int) -> int:
    """Stable bucket of a shuffle key: ints modulo n, anything else by CRC32 of its repr."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key % n
    return zlib.crc32(repr(key).encode()) % n


def split(pairs: Iterable[tuple[Any, Any]], buckets: int) -> dict[int, list[tuple[Any, Any]]]:
    """The pairs of each non-empty bucket, in emission order."""
    parts: dict[int, list[tuple[Any, Any]]] = {}
    for key, value in pairs:
        parts.setdefault(bucket_of(key, buckets), []).append((key, value))
    return parts


def write_map_output(pairs: Iterable[tuple[Any, Any]], buckets: int, uri: str) -> storage.Ref | None:
    """Write a map task's pairs as one object at ``uri`` (buckets + offset index); return its Ref.

    No pairs: no object, ``None``.
    """
    parts = split(pairs, buckets)
    if not parts:
        return None
    blobs, index = [], np.zeros(len(parts), INDEX)
    offset = 0
    for row, bucket in enumerate(sorted(parts)):
        blob = pickle.dumps(parts[bucket], protocol=pickle.HIGHEST_PROTOCOL)
        index[row] = (bucket, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    blobs += [index.tobytes(), np.int64(len(index)).tobytes()]
    data = b"".join(blobs)
    storage.write_bytes(uri, data)
    return storage.Ref(uri, len(data))


def read_index(ref: storage.Ref) -> np.ndarray:
    """The offset index of a map object (one GET of its tail, two for a very large index)."""
    start = max(0, ref.nbytes - TAIL_BYTES)
    tail = storage.read_range(ref.uri, start, ref.nbytes)
    count = int(np.frombuffer(tail[-8:], "<i8")[0])
    size = count * INDEX.itemsize + 8
    if size > len(tail):
        tail = storage.read_range(ref.uri, ref.nbytes - size, ref.nbytes)
    return np.frombuffer(tail[len(tail) - size: len(tail) - 8], INDEX)


def _template(uris: Sequence[str | None]) -> str | None:
    """``prefix{}suffix`` when every present URI is ``prefix<its position>suffix``."""
    known = [(i, u) for i, u in enumerate(uris) if u is not None]
    if not known:
        return "{}"
    i, uri = known[0]
    cut = uri.rfind(str(i))
    if cut < 0:
        return None
    template = uri[:cut] + "{}" + uri[cut + len(str(i)):]
    return template if all(u == template.format(j) for j, u in known) else None


def _counted_index(ref: storage.Ref) -> tuple[np.ndarray, dict[str, int], int]:
    """:func:`read_index` in a pool thread, with the requests and bytes it took (for the caller to count)."""
    before, read0 = storage.requests(), storage.remote_bytes()[0]
    index = read_index(ref)
    after = storage.requests()
    return index, {k: after[k] - before[k] for k in after}, storage.remote_bytes()[0] - read0


def plan_buckets(outputs: Sequence[storage.Ref | None], buckets: int, manifest_uri: str) -> list[ShuffleInput]:
    """Write the manifest of a shuffle whose map tasks returned ``outputs`` (None: sent nothing)
    at ``manifest_uri``; return one :class:`ShuffleInput` per bucket."""
    uris = [o.uri if isinstance(o, storage.Ref) else None for o in outputs]
    template = _template(uris)
    counts = np.zeros(buckets, np.int64)
    sizes = np.zeros(buckets, np.int64)
    with tempfile.TemporaryDirectory(prefix="cloudbutton-manifest-") as tmp:
        rows_path = os.path.join(tmp, "rows")
        with open(rows_path, "wb") as rows, ThreadPoolExecutor(INDEX_READERS) as pool:
            present = [(i, o) for i, o in enumerate(outputs) if isinstance(o, storage.Ref)]
            windows = (present[w: w + INDEX_WINDOW] for w in range(0, len(present), INDEX_WINDOW))
            read = (pair for window in windows for pair in zip(window, pool.map(_counted_index, [o for _, o in window])))
            for (i, _), (index, used, nbytes) in read:  # a window of indexes in memory at a time
                for kind, n in used.items():
                    objects.count(kind, n)
                objects.count("get", 0, read=nbytes)
                counts[index["bucket"]] += 1  # a bucket appears once per index
                sizes[index["bucket"]] += index["length"]
                rows.write(np.int64(len(index)).tobytes() + index["bucket"].astype("<i4").tobytes())
                row = np.zeros(len(index), ROW)
                row["map"], row["offset"], row["length"] = i, index["offset"], index["length"]
                rows.write(row.tobytes())
        starts = np.concatenate([[0], np.cumsum(counts)])
        table = b"" if template is not None else "\n".join(u or "" for u in uris).encode()
        manifest_path = os.path.join(tmp, "manifest")
        _sort_rows(rows_path, starts, manifest_path, len(table))
        if table:
            with open(manifest_path, "r+b") as handle:
                handle.write(table)
        storage.upload_file(manifest_path, manifest_uri)
    base = len(table)
    maps: str | tuple[int, int] = template if template is not None else (0, len(table))
    return [ShuffleInput(manifest_uri, j, base + int(starts[j]) * ROW.itemsize,
                         base + int(starts[j + 1]) * ROW.itemsize, int(sizes[j]), maps)
            for j in range(buckets)]


def _sort_rows(rows_path: str, starts: np.ndarray, out_path: str, skip: int) -> None:
    """Scatter the per-map blocks of ``rows_path`` into ``out_path`` (``skip`` bytes in), ordered by
    bucket; blocks come in map order and hold each bucket once, so map order is kept within a bucket."""
    total = int(starts[-1])
    with open(out_path, "wb") as handle:
        handle.truncate(skip + total * ROW.itemsize)
    if not total:
        return
    out = np.memmap(out_path, ROW, "r+", offset=skip, shape=(total,))
    cursor = starts[:-1].copy()
    with open(rows_path, "rb") as rows:
        while head := rows.read(8):
            n = int(np.frombuffer(head, "<i8")[0])
            bucket = np.frombuffer(rows.read(4 * n), "<i4")
            out[cursor[bucket]] = np.frombuffer(rows.read(ROW.itemsize * n), ROW)
            cursor[bucket] += 1
    out.flush()
    del out


def read_bucket(inp: ShuffleInput) -> dict[Any, list[Any]]:
    """The values of every key of bucket ``inp``, keys sorted, values in map-task order.

    Reads the bucket's manifest rows, then its byte range of each map object that sent it anything.
    """
    if inp.stop <= inp.start:
        return {}
    rows = np.frombuffer(storage.read_range(inp.manifest, inp.start, inp.stop), ROW)
    if isinstance(inp.maps, str):
        uri_of = inp.maps.format
    else:
        uri_of = storage.read_range(inp.manifest, *inp.maps).decode().split("\n").__getitem__
    grouped: dict[Any, list[Any]] = {}
    for number, offset, length in rows.tolist():
        for key, value in pickle.loads(storage.read_range(uri_of(number), offset, offset + length)):
            grouped.setdefault(key, []).append(value)
    return {key: grouped[key] for key in sorted(grouped)}
