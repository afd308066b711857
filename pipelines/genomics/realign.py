"""Banded glocal alignment of read segments to candidate haplotypes, vectorised over pairs.

The model is bcftools' indel realignment (``probaln_glocal`` as used by
``bam2bcf_indel.c``) in its Viterbi form: the whole read segment is aligned, the
haplotype's ends are free, gaps are affine, and every cost is a Phred score so
differences between haplotypes read directly as qualities:

- a matching base costs ``-10 log10(1 - e)``, a mismatch ``-10 log10(e / 3)``, with e
  from the base quality clipped to [7, 30] (as bcftools does for realignment);
  a masked (``N``) haplotype or read base costs ``MASKED``;
- an inserted read base costs ``INS_EMIT`` (a background base, -10 log10 1/4) plus
  the gap costs; gap open ``GAP_OPEN`` = 40 (p = 1e-4), extension ``GAP_EXTEND`` = 20
  (p = 1e-2).

All (read, haplotype) pairs of a batch advance row by row (one read base per row)
inside a band of half-width ``band`` around their start diagonal, so each numpy
operation touches every pair at once; deletions along a row are a prefix minimum.
"""
from __future__ import annotations

import numpy as np

GAP_OPEN = 40.0
GAP_EXTEND = 20.0
INS_EMIT = 6.02
MASKED = 6.02
MIN_QUAL, MAX_QUAL = 7, 30
_INF = 1e9


def expected_cost(qual: np.ndarray) -> np.ndarray:
    """Expected mismatch cost of bases with these qualities: e * -10 log10(e / 3)."""
    err = np.power(10.0, -np.clip(qual, MIN_QUAL, MAX_QUAL).astype(np.float64) / 10.0)
    return err * -10.0 * np.log10(err / 3.0)


def glocal_costs(hap: np.ndarray, hap_len: np.ndarray, read: np.ndarray, qual: np.ndarray,
                 read_len: np.ndarray, start: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Phred cost of the best glocal alignment of each read segment to its haplotype.

    Parameters
    ----------
    hap : ndarray of uint8, shape (n, H)
        Haplotype base codes (0-3 = ACGT, 4 = masked/N), padded past ``hap_len``.
    hap_len : ndarray of int, shape (n,)
        Haplotype lengths.
    read : ndarray of uint8, shape (n, L)
        Read segment base codes (4 = N), padded past ``read_len``.
    qual : ndarray of int, shape (n, L)
        Base qualities of the segments.
    read_len : ndarray of int, shape (n,)
        Segment lengths (>= 1).
    start : ndarray of int, shape (n,)
        Haplotype position where the first read base is expected (band centre).
    band : ndarray of int, shape (n,)
        Band half-width of each pair: indels up to about this length are representable.
        A pair's cost depends only on its own inputs, whatever else shares the batch.

    Returns
    -------
    ndarray of float, shape (n,)
        Minimum total cost; ``>= 1e9`` when no alignment fits the band.
    """
    n = hap.shape[0]
    pair_band = band
    band = int(pair_band.max())
    width = 2 * band + 1
    length = int(read_len.max())
    q = np.clip(qual[:, :length], MIN_QUAL, MAX_QUAL).astype(np.float32)
    err = np.power(10.0, -q / 10.0)
    hit_cost = -10.0 * np.log10(1.0 - err)
    miss_cost = -10.0 * np.log10(err / 3.0)
    # emission cost of read base i at band column k (haplotype position start + i + k - band),
    # laid out as one contiguous (pairs x band) slab per read base
    offs = (np.arange(width) - band).astype(np.int32)
    j = start.astype(np.int32)[None, :, None] + np.arange(length, dtype=np.int32)[:, None, None] + offs
    valid = (j >= 0) & (j < hap_len[None, :, None]) & (np.abs(offs) <= pair_band[None, :, None])
    flat = (np.arange(n, dtype=np.int32) * np.int32(hap.shape[1]))[None, :, None] \
        + np.clip(j, 0, hap.shape[1] - 1).astype(np.int32)
    del j
    h = hap.ravel()[flat]
    del flat
    b = read[:, :length].T[:, :, None]
    rows = np.where((h == 4) | (b == 4), np.float32(MASKED),
                    np.where(h == b, hit_cost.T[:, :, None], miss_cost.T[:, :, None])).astype(np.float32)
    del h
    rows[~valid] = _INF
    f32 = np.float32
    del_ramp = (GAP_OPEN - GAP_EXTEND * np.arange(1, width + 1)).astype(f32)
    ext_ramp = (GAP_EXTEND * np.arange(1, width)).astype(f32)
    ins_open, ins_ext = f32(INS_EMIT + GAP_OPEN), f32(INS_EMIT + GAP_EXTEND)
    best = np.full(n, _INF)
    m, m_next = rows[0].copy(), np.empty((n, width), f32)
    ins = np.where(valid[0], ins_open, f32(_INF)).astype(f32)
    ins_next = np.full((n, width), _INF, dtype=f32)
    dele = np.full((n, width), _INF, dtype=f32)
    diag, tmp = np.empty((n, width), f32), np.empty((n, width), f32)
    ends = {int(v): read_len == v for v in np.unique(read_len)}
    for i in range(length):
        if i:
            np.minimum(m, ins, out=diag)
            np.minimum(diag, dele, out=diag)
            # insertion: read base i after the same haplotype base (the next band column last row)
            np.add(m[:, 1:], ins_open, out=tmp[:, :-1])
            np.add(ins[:, 1:], ins_ext, out=ins_next[:, :-1])
            np.minimum(tmp[:, :-1], ins_next[:, :-1], out=ins_next[:, :-1])
            ins_next[:, -1] = _INF
            np.add(rows[i], diag, out=m_next)
            m, m_next, ins, ins_next = m_next, m, ins_next, ins
        # deletion at column k: min over k' < k of M[k'] + open + extend * (k - k' - 1)
        np.add(m, del_ramp, out=tmp)
        np.minimum.accumulate(tmp, axis=1, out=tmp)
        np.add(tmp[:, :-1], ext_ramp, out=dele[:, 1:])
        last = ends.get(i + 1)
        if last is not None:
            best[last] = np.minimum(m[last], ins[last]).min(axis=1)
    return best.astype(np.float64)
