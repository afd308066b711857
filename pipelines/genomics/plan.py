"""Split the requested regions into chunks balanced by data size, read from the index only.

Weights come from the BAM index's linear index (compressed bytes per 16 kb window)
or the CRAM ``.crai`` slice sizes, so planning never reads alignments; cut points
are moved into a nearby run of N in the reference when there is one.
"""
from __future__ import annotations

import gzip
import math
import os
import re
import struct
from dataclasses import dataclass

import numpy as np
import pysam

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError

_WINDOW = 1 << 14  # BAI linear-index window
_GAP_SEARCH = 2000  # bp searched either side of a cut for an N run
#: Index bytes (compressed BAM data, ~0.75 byte per aligned short-read base; CRAM is scaled
#: to BAM) one read fetch may cover: about 2.7 M aligned bases, i.e. 55 kb at 50x.
CALL_WINDOW_BYTES = 1 << 20
#: Shortest calling window (bp): past this the depth cap while reading (``reads.CAP_BLOCK``),
#: not the window, bounds a fetch to about ``max_depth`` x this many bases.
MIN_CALL_WINDOW = 5_000
_CRAM_TO_BAM = 2.0  # CRAM holds about half the bytes of BAM for the same reads: weights are BAM-like


@dataclass(frozen=True)
class Chunk:
    """Reference interval ``[start, end)`` (0-based) of ``contig``; ``index`` orders the output
    (the calling windows of one planned chunk share its index)."""

    index: int
    contig: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.contig}:{self.start + 1}-{self.end}"


@dataclass(frozen=True)
class ChunkGroup:
    """The chunks one map task calls, in output order (several only for small contigs)."""

    index: int
    chunks: tuple[Chunk, ...]

    def __str__(self) -> str:
        return ", ".join(map(str, self.chunks))


def group_chunks(chunks: list[Chunk], weights: list[float | None], target: float) -> list[ChunkGroup]:
    """Pack runs of consecutive small chunks (weight under half of ``target``; ``None`` for a
    piece of a split region, never packed) into shared tasks of at most ``target`` weight;
    every other chunk is a task of its own.

    A GRCh38 BAM's thousands of alt/decoy contigs then cost a few tasks, not one each.
    """
    groups: list[list[Chunk]] = []
    load, packing = 0.0, False
    for chunk, weight in zip(chunks, weights):
        w = target if weight is None else weight
        small = w < target / 2
        if small and packing and load + w <= target:
            groups[-1].append(chunk)
            load += w
        else:
            groups.append([chunk])
            load, packing = w, small
    return [ChunkGroup(i, tuple(g)) for i, g in enumerate(groups)]


def parse_region(text: str, lengths: dict[str, int]) -> tuple[str, int, int]:
    """``CHR``, ``CHR:START-END`` or ``CHR:START`` (1-based inclusive) -> (contig, start0, end0)."""
    m = re.fullmatch(r"(.+?)(?::([\d,]+)(?:-([\d,]+))?)?", text.strip())
    contig = m.group(1) if m else text
    if contig not in lengths:
        raise InputError(text, f"region contig {contig!r} is not in the BAM and reference")
    length = lengths[contig]
    start = int(m.group(2).replace(",", "")) - 1 if m.group(2) else 0
    end = int(m.group(3).replace(",", "")) if m.group(3) else length
    if start < 0 or end > length or start >= end:
        raise InputError(text, f"region outside 1-{length} of {contig} or empty")
    return contig, start, end


def _bai_weights(path: str, n_refs: int) -> list[np.ndarray]:
    """Bytes of alignment data per 16 kb window for each reference, from a BAI file."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"BAI\x01":
        raise ValueError("not a BAI index")
    off = 8
    out = []
    for _ in range(struct.unpack_from("<i", data, 4)[0]):
        n_bin = struct.unpack_from("<i", data, off)[0]
        off += 4
        for _ in range(n_bin):
            _, n_chunk = struct.unpack_from("<Ii", data, off)
            off += 8 + 16 * n_chunk
        n_intv = struct.unpack_from("<i", data, off)[0]
        off += 4
        voff = np.frombuffer(data, dtype="<u8", count=n_intv, offset=off).astype(np.float64)
        off += 8 * n_intv
        pos = np.floor(voff / 65536.0) + (voff % 65536.0) / 4.0  # compressed offset + ~uncompressed/4
        pos = np.maximum.accumulate(pos) if pos.size else pos
        out.append(np.diff(pos, append=pos[-1] if pos.size else 0.0))
    return out + [np.zeros(0)] * (n_refs - len(out))


def _crai_weights(path: str, names: list[str], lengths: list[int]) -> list[np.ndarray]:
    """Slice bytes per 16 kb window for each reference, from a CRAM ``.crai`` index, scaled to
    what the same reads take in BAM."""
    out = [np.zeros(math.ceil(n / _WINDOW) + 1) for n in lengths]
    with gzip.open(path, "rt") as fh:
        for line in fh:
            tid, start, span, _, _, size = (int(x) for x in line.split()[:6])
            if 0 <= tid < len(names) and span > 0:
                lo, hi = (start - 1) // _WINDOW, (start - 1 + span) // _WINDOW
                out[tid][lo:hi + 1] += _CRAM_TO_BAM * size / (hi - lo + 1)
    return out


def data_weights(bam_path: str, bam: pysam.AlignmentFile, index: str | None = None) -> list[np.ndarray]:
    """Per-16-kb-window data size of every reference (empty arrays when no index is readable).

    ``index`` names an index kept elsewhere than beside the file (always given for an object).
    """
    names, lengths = list(bam.references), list(bam.lengths)
    index = storage.cached_copy(index) if index else None
    for suffix, reader in ((".bai", lambda p: _bai_weights(p, len(names))),
                           (".crai", lambda p: _crai_weights(p, names, lengths))):
        beside = (bam_path + suffix, os.path.splitext(bam_path)[0] + suffix)
        for candidate in ([index] if index and index.endswith(suffix) else []) + list(beside):
            if os.path.exists(candidate):
                try:
                    return reader(candidate)
                except (OSError, ValueError, struct.error):
                    break
    return [np.zeros(0) for _ in names]


def _cumulative(weights: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and the data size from ``start`` up to each, over ``[start, end)`` (linear in a window)."""
    bins = np.arange(start // _WINDOW, (end - 1) // _WINDOW + 1)
    w = np.where(bins < weights.size, weights[np.minimum(bins, max(weights.size - 1, 0))], 0.0) \
        if weights.size else np.zeros(bins.size)
    lo = np.maximum(bins * _WINDOW, start)
    hi = np.minimum((bins + 1) * _WINDOW, end)
    w = w * (hi - lo) / _WINDOW + 1e-6 * (hi - lo) * (w.sum() / max(end - start, 1) + 1)
    return np.concatenate([[start], hi]), np.concatenate([[0.0], np.cumsum(w)])


def _cuts(weights: np.ndarray, start: int, end: int, n: int) -> list[int]:
    """``n - 1`` cut positions splitting ``[start, end)`` into equal data size."""
    edges, cum = _cumulative(weights, start, end)
    targets = cum[-1] * np.arange(1, n) / n
    return [int(round(x)) for x in np.interp(targets, cum, edges)]


def call_windows(weights: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into calling windows of at most ``CALL_WINDOW_BYTES`` of index data
    each (equal shares, none shorter than ``MIN_CALL_WINDOW`` bp), so a task's memory follows
    the data a fetch holds, not the length it covers: a deep stretch gets short windows."""
    edges, cum = _cumulative(weights, start, end)
    step = cum[-1] / max(1, math.ceil(cum[-1] / CALL_WINDOW_BYTES))
    bounds = [start]
    while True:
        reach = float(np.interp(bounds[-1], edges, cum)) + step
        cut = max(int(round(float(np.interp(reach, cum, edges)))), bounds[-1] + MIN_CALL_WINDOW)
        if reach >= cum[-1] - 1e-9 * step or end - cut < MIN_CALL_WINDOW:
            return list(zip(bounds, bounds[1:] + [end]))
        bounds.append(cut)


def _snap_to_gap(fasta: pysam.FastaFile, contig: str, cut: int, lo: int, hi: int) -> int:
    """Move ``cut`` into the nearest N run within ``_GAP_SEARCH`` bp (kept inside (lo, hi))."""
    a, b = max(lo + 1, cut - _GAP_SEARCH), min(hi - 1, cut + _GAP_SEARCH)
    if b <= a:
        return cut
    seq = fasta.fetch(contig, a, b).upper()
    ns = np.flatnonzero(np.frombuffer(seq.encode(), dtype=np.uint8) == ord("N"))
    if ns.size == 0:
        return cut
    return int(a + ns[np.argmin(np.abs(ns + a - cut))])


def plan_chunks(bam_path: str, bam: pysam.AlignmentFile, fasta: pysam.FastaFile,
                regions: list[tuple[str, int, int]], *, chunk_size: int | None = None,
                chunks: int | None = None, index: str | None = None) -> list[ChunkGroup]:
    """Chunks covering ``regions`` in order, balanced by data size from the index, as map tasks
    (small contigs' chunks share tasks, see :func:`group_chunks`); a chunk holding more
    index data than one calling window is listed as its windows (:func:`call_windows`),
    all in its task.

    Parameters
    ----------
    regions : list of (contig, start, end)
        0-based half-open intervals, in output order.
    chunk_size : int, optional
        Target chunk length in bp: a region gets ``ceil(length / chunk_size)`` chunks.
    chunks : int, optional
        Total number of chunks, shared among regions by data size (default: 8, or one
        per 10 Mb when that is more).
    """
    weights = data_weights(bam_path, bam, index)
    tid = {name: i for i, name in enumerate(bam.references)}
    region_w = [float(np.sum(_region_weight(weights[tid[c]], s, e))) for c, s, e in regions]
    total_bp = sum(e - s for _, s, e in regions)
    total_w = sum(region_w)
    by_data = not chunk_size and total_w > 0
    if chunk_size:
        counts = [max(1, math.ceil((e - s) / chunk_size)) for _, s, e in regions]
        target = float(chunk_size)
    else:
        n = chunks or max(8, math.ceil(total_bp / 10_000_000))
        shares = [w / total_w if total_w else (e - s) / total_bp for w, (_, s, e) in zip(region_w, regions)]
        counts = [max(1, round(n * share)) for share in shares]
        target = (total_w if by_data else total_bp) / n
    out: list[Chunk] = []
    sizes: list[float | None] = []
    for (contig, start, end), n, rw in zip(regions, counts, region_w):
        n = min(n, end - start)
        cuts = [_snap_to_gap(fasta, contig, c, start, end) for c in _cuts(weights[tid[contig]], start, end, n)]
        bounds = sorted({start, end, *(c for c in cuts if start < c < end)})
        base = len(out)
        out.extend(Chunk(base + i, contig, a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:])))
        whole = rw if by_data else float(end - start)
        sizes.extend([whole] if len(bounds) == 2 else [None] * (len(bounds) - 1))
    return _windowed(group_chunks(out, sizes, target), weights, tid)


def _windowed(groups: list[ChunkGroup], weights: list[np.ndarray], tid: dict[str, int]) -> list[ChunkGroup]:
    """Each chunk cut into its calling windows (:func:`call_windows`), kept in the chunk's task
    under the chunk's index."""
    return [ChunkGroup(group.index, tuple(Chunk(chunk.index, chunk.contig, a, b) for chunk in group.chunks
                                          for a, b in call_windows(weights[tid[chunk.contig]], chunk.start, chunk.end)))
            for group in groups]


def _region_weight(weights: np.ndarray, start: int, end: int) -> np.ndarray:
    return weights[start // _WINDOW:(end - 1) // _WINDOW + 1]
