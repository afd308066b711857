"""A catalog file: the header index of many LAS/LAZ files (bounds, counts, CRS), built once in parallel.

``cloudbutton geospatial index tiles/ --out catalog.json`` reads every
header in a map stage (64 files per task, by byte ranges) and writes one
JSON file; any command then takes ``catalog.json`` as its INPUT and plans
without touching a header again. A catalog of 10,000 tiles is about 2 MB
(each distinct CRS is stored once).
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from cloudbutton.core import Graph, InputError, Job, RunResult, plan_and_run, storage
from cloudbutton.core.storage import atomic_output

from .lasio import LasSource, expand_inputs, read_source

CATALOG_SUFFIX = ".json"
CATALOG_FORMAT = "cloudbutton.geospatial.catalog/1"
#: Headers read by one index task.
FILES_PER_TASK = 64


def is_catalog(uri: str) -> bool:
    """Whether an INPUT names a catalog file rather than LAS/LAZ data."""
    return os.fspath(uri).lower().endswith(CATALOG_SUFFIX)


def catalog_document(sources: Sequence[LasSource]) -> dict[str, Any]:
    """The catalog's JSON document: each distinct CRS once, sources referring to it by index."""
    crs_list = list(dict.fromkeys(s.crs_wkt for s in sources if s.crs_wkt is not None))
    where = {wkt: i for i, wkt in enumerate(crs_list)}
    rows = [[s.uri, list(s.bounds), s.count, where.get(s.crs_wkt) if s.crs_wkt else None, s.point_format, s.version]
            for s in sources]
    return {"format": CATALOG_FORMAT, "crs": crs_list, "sources": rows}


def read_catalog(uri: str) -> list[LasSource]:
    """The sources listed in a catalog file; InputError when it is not one."""
    try:
        doc = json.loads(storage.read_range(uri))
        if doc.get("format") != CATALOG_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {CATALOG_FORMAT!r}")
        crs_list = doc["crs"]
        sources = [LasSource(uri=u, bounds=tuple(float(v) for v in b), count=int(n),
                             crs_wkt=crs_list[c] if c is not None else None, point_format=int(pf), version=str(v))
                   for u, b, n, c, pf, v in doc["sources"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(uri, f"not a readable geospatial catalog ({exc})") from None
    if not sources:
        raise InputError(uri, "catalog lists no files")
    return sources


def read_headers(uris: list[str]) -> list[LasSource]:
    """Index task: the headers of a batch of files."""
    return [read_source(uri) for uri in uris]


def write_catalog(batches: list[list[LasSource]], *, out: str) -> dict[str, Any]:
    """Reduce: write every batch's sources, in input order, as one catalog file."""
    sources = [s for batch in batches for s in batch]
    with atomic_output(out) as tmp:
        with open(tmp, "w") as fh:
            json.dump(catalog_document(sources), fh, separators=(",", ":"))
    return {"out": out, "files": len(sources), "points": sum(s.count for s in sources)}


def build_index_job(inputs: str | Sequence[str], out: str) -> Job:
    """Plan the header index of ``inputs`` (files, folders, globs, prefixes) into the catalog ``out`` (.json)."""
    if not is_catalog(out):
        raise InputError(os.fspath(out), f"output must be a {CATALOG_SUFFIX} catalog file")
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    uris = expand_inputs([os.fspath(i) for i in items])
    g = Graph("geospatial.index")
    g.map("headers", read_headers, over=[uris[i : i + FILES_PER_TASK] for i in range(0, len(uris), FILES_PER_TASK)])
    g.reduce("catalog", write_catalog, over="headers", params={"out": out})
    return Job(graph=g, output=out, inputs=uris,
               summary=lambda v: f"catalog {v['out']}: {v['files']:,} files, {v['points']:,} points")


def index(inputs: str | Sequence[str], out: str, *, executor: str = "threads", workers: int | None = None,
          **run_options: Any) -> RunResult:
    """Write the header index (catalog file) of LAS/LAZ inputs; see :func:`build_index_job`."""
    return plan_and_run(lambda: build_index_job(inputs, out), executor=executor, workers=workers, **run_options)
