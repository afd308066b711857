"""Memory is bounded at any depth: the read cap works while reading, not after expanding."""
from __future__ import annotations

import numpy as np
import pysam

from cloudbutton.pipelines.genomics.caller import CallParams, call_chunk
from cloudbutton.pipelines.genomics.reads import ReadFilters, collect

REGION = ("chr20", 10_010_000, 10_012_000)


def _deep_copy(src_bam: str, out_bam: str, copies: int) -> str:
    """The reads of ``REGION`` repeated ``copies`` times under new names (a ~50x * copies pile)."""
    contig, start, end = REGION
    with pysam.AlignmentFile(src_bam) as src, pysam.AlignmentFile(out_bam + ".tmp", "wb", template=src) as dst:
        for read in src.fetch(contig, start, end):
            for k in range(copies):
                copy = pysam.AlignedSegment.fromstring(read.to_string(), src.header)
                copy.query_name = f"{read.query_name}:{k}"
                dst.write(copy)
    pysam.sort("-o", out_bam, out_bam + ".tmp")
    pysam.index(out_bam)
    return out_bam


def _nbytes(obs) -> int:
    return sum(v.nbytes for v in vars(obs).values() if isinstance(v, np.ndarray))


def test_deep_pile_is_capped_while_reading(tmp_path, na12878):
    shallow = _deep_copy(na12878.bam, str(tmp_path / "x1.bam"), 1)
    deep = _deep_copy(na12878.bam, str(tmp_path / "x60.bam"), 60)
    filters = ReadFilters()
    sizes, reads = {}, {}
    with pysam.FastaFile(na12878.reference) as fasta:
        for name, path in (("shallow", shallow), ("deep", deep)):
            with pysam.AlignmentFile(path) as bam:
                obs, _ = collect(bam, fasta, *REGION, 1000, filters)
                reads[name] = bam.count(*REGION)
            sizes[name] = _nbytes(obs)
            assert np.bincount(obs.pos - obs.pos.min()).max() <= filters.max_depth
    assert reads["deep"] == 60 * reads["shallow"]
    # kept data follows the cap (250 / ~50x = ~5x), not the raw depth (60x)
    assert sizes["deep"] < 8 * sizes["shallow"], sizes


def test_cap_decisions_do_not_depend_on_the_window(tmp_path, na12878):
    deep = _deep_copy(na12878.bam, str(tmp_path / "x20.bam"), 20)
    contig, start, end = REGION
    params = CallParams()
    whole = call_chunk(deep, na12878.reference, contig, start, end, params)
    cuts = [start, start + 333, start + 1000, start + 1001, end]
    pieces = [v for a, b in zip(cuts, cuts[1:]) for v in call_chunk(deep, na12878.reference, contig, a, b, params)]
    assert whole and pieces == whole


def test_calling_windows_follow_index_bytes():
    """A deep stretch is called in short windows (each within the byte budget), a shallow one in long ones."""
    from cloudbutton.pipelines.genomics.plan import CALL_WINDOW_BYTES, MIN_CALL_WINDOW, call_windows
    bins = np.full(200, 0.5e6)  # bytes per 16 kb index window: ~40x over 3.2 Mb ...
    bins[50:60] = 40e6  # ... with 160 kb at ~3,000x
    density = np.repeat(bins / 16384, 16384)  # bytes per bp
    windows = call_windows(bins, 0, 200 * 16384)
    assert windows[0][0] == 0 and windows[-1][1] == 200 * 16384
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    assert all(b - a >= MIN_CALL_WINDOW for a, b in windows)
    # every window holds at most one budget of data, or is as short as allowed
    assert all(density[a:b].sum() <= 1.01 * CALL_WINDOW_BYTES or b - a <= MIN_CALL_WINDOW + 1 for a, b in windows)
    deep = [b - a for a, b in windows if a >= 50 * 16384 and b <= 60 * 16384]
    shallow = [b - a for a, b in windows[:-1] if b <= 50 * 16384 or a >= 60 * 16384]
    assert len(deep) > 10 and max(deep) <= MIN_CALL_WINDOW + 1
    assert min(shallow) > 0.9 * CALL_WINDOW_BYTES / 0.5e6 * 16384
