"""Reading LAS/LAZ inputs: header index, CRS checks, and point reads by ranges of points.

Only headers are read to plan a job (by byte ranges, so cloud objects are not
downloaded). The points are then decoded once, in parallel: each read task
takes one range of one file (LAZ ranges start on the compressor's chunks)
and streams it in chunks, so a task's memory follows its range, not the
input size.
"""
from __future__ import annotations

import glob
import io
import os
import struct
from dataclasses import dataclass
from functools import lru_cache

import laspy
import numpy as np
from laspy.vlrs.vlrlist import VLRList
from pyproj import CRS

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError
from cloudbutton.core.storage import is_object_uri, local_path

LAS_SUFFIXES = (".las", ".laz")
#: Single-threaded LAZ codec: tasks are the unit of parallelism, and lazrs's
#: parallel codec keeps a thread pool that deadlocks in forked workers.
LAZ_BACKEND = laspy.LazBackend.Lazrs
CHUNK_POINTS = 500_000
#: Points decoded by one read task (at most).
READ_POINTS = 2_000_000


@dataclass(frozen=True)
class LasSource:
    """What the index stage learns from one input header."""

    uri: str
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax
    count: int
    crs_wkt: str | None
    point_format: int
    version: str


@dataclass
class Points:
    """A set of points (parallel arrays)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    classification: np.ndarray
    last: np.ndarray  # last or only return: the SMRF working set
    first: np.ndarray  # first or only return: the top surface
    index: np.ndarray  # position of the point in its file

    FIELDS = ("x", "y", "z", "classification", "last", "first", "index")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, which: np.ndarray) -> "Points":
        """The points selected by a boolean mask or an index array, in order.

        A mask becomes indices once: seven boolean selections cost up to 10x more than seven takes.
        """
        which = np.asarray(which)
        if which.dtype == bool:
            which = np.flatnonzero(which)
        return Points(*(getattr(self, n).take(which) for n in self.FIELDS))

    @staticmethod
    def concat(parts: list["Points"]) -> "Points":
        """Join point sets in order (an empty list gives an empty set)."""
        if not parts:
            return Points(*(np.zeros(0, d) for d in (float, float, float, np.uint8, bool, bool, np.int64)))
        return Points(*(np.concatenate([getattr(p, n) for p in parts]) for n in Points.FIELDS))


@dataclass(frozen=True)
class ReadPart:
    """One read task: points [start, stop) of one input."""

    source: LasSource
    start: int
    stop: int


def expand_inputs(inputs: list[str]) -> list[str]:
    """Expand files, folders and globs into a sorted, de-duplicated list of LAS/LAZ inputs."""
    found: list[str] = []
    for item in inputs:
        if is_object_uri(item):  # an object, a prefix (s3://b/tiles/) or a glob of objects
            listed = storage.expand(item)
            if not listed:
                raise InputError(item, "no such object or prefix")
            found += listed if listed == [item] else [u for u in listed if u.lower().endswith(LAS_SUFFIXES)]
            continue
        path = local_path(item)
        if os.path.isdir(path):
            found += [
                os.path.join(path, n) for n in sorted(os.listdir(path)) if n.lower().endswith(LAS_SUFFIXES)
            ]
        elif glob.has_magic(path):
            found += [p for p in sorted(glob.glob(path)) if p.lower().endswith(LAS_SUFFIXES)]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise InputError(item, "no such file or folder")
        if not found:
            raise InputError(item, "no .las or .laz files found")
    return sorted(dict.fromkeys(found))


def _read_header(uri: str) -> tuple[laspy.LasHeader, int]:
    """Parse the header, VLRs and EVLRs of ``uri`` from byte ranges only; also return its size.

    A few kilobytes per file cross the network, not the point data, so
    indexing thousands of cloud tiles stays cheap.
    """
    size = storage.size(uri)
    head = storage.read_range(uri, 0, 375)
    if head[:4] != b"LASF":
        raise InputError(uri, "not a LAS/LAZ file (no LASF signature)")
    if size < 227 or len(head) < 227:
        raise InputError(uri, f"truncated LAS/LAZ header ({size} bytes)")
    offset = struct.unpack_from("<I", head, 96)[0]
    header = laspy.LasHeader.read_from(io.BytesIO(storage.read_range(uri, 0, offset)))
    if header.version.minor >= 4 and header.number_of_evlrs > 0:
        if not header.start_of_first_evlr < size:
            raise InputError(uri, "truncated LAS: extended VLRs beyond the end of the file")
        tail = storage.read_range(uri, header.start_of_first_evlr, size)
        header.evlrs = VLRList.read_from(io.BytesIO(tail), header.number_of_evlrs, extended=True)
    return header, size


def _check_size(uri: str, header: laspy.LasHeader, size: int) -> None:
    """Reject files whose point data is shorter than the header promises."""
    start = header.offset_to_point_data
    if header.are_points_compressed:
        raw = storage.read_range(uri, start, start + 8)
        if len(raw) < 8:
            raise InputError(uri, "truncated LAZ: no point data")
        table = struct.unpack("<q", raw)[0]
        if table != -1 and not start < table < size:
            raise InputError(uri, f"truncated or corrupt LAZ: chunk table at byte {table} of {size}")
    elif start + header.point_count * header.point_format.size > size:
        raise InputError(uri, f"truncated LAS: {header.point_count} points declared, file is {size} bytes")


def read_source(uri: str) -> LasSource:
    """Read one header (bounds, count, CRS) and check the file is complete."""
    try:
        header, size = _read_header(uri)
        _check_size(uri, header, size)
        try:
            crs = header.parse_crs()
        except Exception as exc:  # pyproj/laspy raise several types for bad WKT/GeoTIFF keys
            raise InputError(uri, f"unreadable CRS: {exc}") from None
    except InputError:
        raise
    except (OSError, ValueError, struct.error, laspy.errors.LaspyException) as exc:
        raise InputError(uri, f"not a readable LAS/LAZ file ({exc})") from None
    if header.point_count == 0:
        raise InputError(uri, "no points (empty LAS/LAZ file)")
    mins, maxs = header.mins, header.maxs
    if not (np.all(np.isfinite(mins)) and np.all(np.isfinite(maxs))):
        raise InputError(uri, "header bounds are not finite")
    return LasSource(
        uri=uri,
        bounds=(float(mins[0]), float(mins[1]), float(maxs[0]), float(maxs[1])),
        count=int(header.point_count),
        crs_wkt=crs.to_wkt() if crs is not None else None,
        point_format=int(header.point_format.id),
        version=str(header.version),
    )


@lru_cache(maxsize=64)
def _parse(wkt: str) -> CRS:
    """A CRS from its WKT, parsed once (a catalog of 10,000 tiles carries the same WKT 10,000 times)."""
    return CRS.from_wkt(wkt)


def common_crs(sources: list[LasSource], override: str | None = None, force: bool = False) -> str:
    """The one CRS (as WKT) of all inputs, or ``override`` when given.

    Raises InputError when an input has no CRS and none is given, when
    inputs disagree, or when ``override`` disagrees with a file's CRS (unless
    ``force``: then it is assigned, not reprojected to).
    """
    if override:
        try:
            wanted = CRS.from_user_input(override)
        except Exception as exc:  # pyproj.exceptions.CRSError and friends
            raise InputError(override, f"not a valid CRS ({exc})") from None
        for src in sources:
            if not force and src.crs_wkt is not None and _parse(src.crs_wkt) != wanted:
                raise InputError(src.uri, f"its CRS ({_parse(src.crs_wkt).name}) differs from --crs "
                                 f"{override}; pass --force-crs to assign --crs anyway (no reprojection)")
        return wanted.to_wkt()
    if force:
        raise InputError("--force-crs", "needs --crs")
    first: CRS | None = None
    first_uri = ""
    for src in sources:
        if src.crs_wkt is None:
            raise InputError(src.uri, "no CRS in the file; pass --crs (e.g. --crs EPSG:25831)")
        crs = _parse(src.crs_wkt)
        if first is None:
            first, first_uri = crs, src.uri
        elif crs != first:
            raise InputError(src.uri, f"CRS differs from {os.path.basename(first_uri)}; pass --crs and --force-crs "
                             "to assign one CRS to all")
    assert first is not None
    return first.to_wkt()


def plan_reads(sources: list[LasSource], points_per_part: int = READ_POINTS) -> list[ReadPart]:
    """Cut every input into ranges of at most ``points_per_part`` points."""
    return [ReadPart(src, start, min(start + points_per_part, src.count))
            for src in sources for start in range(0, src.count, points_per_part)]


def metres_per_unit(crs_wkt: str | None, where: str = "--crs") -> tuple[float, float]:
    """Metres per map unit of x/y and of z (1 without a CRS); a geographic CRS is an InputError.

    z is in the vertical CRS's unit when the CRS is compound, else in the horizontal unit (as LAS tools assume).
    """
    if crs_wkt is None:
        return 1.0, 1.0
    crs = CRS.from_wkt(crs_wkt)
    parts = crs.sub_crs_list or [crs]
    horizontal = parts[0]
    if horizontal.is_geographic:
        raise InputError(where, f"{horizontal.name} is geographic (degrees): reproject the points to a projected CRS first")
    h = float(horizontal.axis_info[0].unit_conversion_factor)
    vertical = [p for p in parts[1:] if p.is_vertical]
    return h, float(vertical[0].axis_info[0].unit_conversion_factor) if vertical else h


def _check_bounds(source: LasSource, x: np.ndarray, y: np.ndarray, slack: np.ndarray) -> None:
    xmin, ymin, xmax, ymax = source.bounds
    out = (x < xmin - slack[0]) | (x > xmax + slack[0]) | (y < ymin - slack[1]) | (y > ymax + slack[1])
    if out.any():
        i = int(np.argmax(out))
        raise InputError(source.uri, f"point ({x[i]:.3f}, {y[i]:.3f}) lies outside the header's bounding box "
                         f"({xmin}, {ymin}, {xmax}, {ymax}); recompute the header bounds (e.g. lasinfo -repair_bb)")


def read_part(part: ReadPart, chunk: int = CHUNK_POINTS) -> Points:
    """Decode the points of one range, streamed in chunks; points flagged withheld are skipped.

    Raises InputError when the point data cannot be decoded (corrupt or
    truncated) or a point lies outside the header's bounding box (the plan
    was made from that box: such a point would be silently cropped).
    """
    parts: list[Points] = []
    start = part.start
    try:
        with laspy.open(storage.open_ranged(part.source.uri), laz_backend=LAZ_BACKEND) as reader:
            slack = np.asarray(reader.header.scales[:2], float)  # header bounds may be rounded to the scale
            if start:
                reader.seek(start)
            while start < part.stop:
                record = reader.read_points(min(chunk, part.stop - start))
                if not len(record):
                    raise InputError(part.source.uri, f"truncated point data: no point {start} of {part.source.count}")
                _check_bounds(part.source, np.asarray(record.x), np.asarray(record.y), slack)
                keep = np.flatnonzero(~np.asarray(record.withheld, bool))
                parts.append(
                    Points(
                        x=np.asarray(record.x)[keep],
                        y=np.asarray(record.y)[keep],
                        z=np.asarray(record.z)[keep],
                        classification=np.asarray(record.classification, np.uint8)[keep],
                        last=np.asarray(record.return_number)[keep] >= np.asarray(record.number_of_returns)[keep],
                        first=np.asarray(record.return_number)[keep] <= 1,
                        index=keep.astype(np.int64) + start,
                    )
                )
                start += len(record)
    except InputError:
        raise
    except Exception as exc:  # lazrs/laspy raise assorted types for damaged data
        raise InputError(part.source.uri, f"corrupt or truncated point data ({type(exc).__name__}: {exc})") from None
    return Points.concat(parts)
