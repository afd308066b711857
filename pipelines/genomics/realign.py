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
    # emission cost of read base i at band column k (haplotype position start + i + k - band)
    j = start[:, None, None] + np.arange(length)[None, :, None] + (np.arange(width) - band)[None, None, :]
    valid = (j >= 0) & (j < hap_len[:, None, None]) \
        & (np.abs(np.arange(width) - band)[None, None, :] <= pair_band[:, None, None])
    h = np.take_along_axis(hap, np.clip(j, 0, hap.shape[1] - 1).reshape(n, -1), axis=1).reshape(j.shape)
    b = read[:, :length, None]
    emit = np.where((h == 4) | (b == 4), np.float32(MASKED),
                    np.where(h == b, hit_cost[:, :, None], miss_cost[:, :, None]))
    emit[~valid] = _INF
    del_ramp = (GAP_OPEN - GAP_EXTEND * np.arange(1, width + 1)).astype(np.float32)
    ext_ramp = (GAP_EXTEND * np.arange(1, width)).astype(np.float32)
    best = np.full(n, _INF)
    m = emit[:, 0].copy()
    ins = np.where(valid[:, 0], np.float32(INS_EMIT + GAP_OPEN), np.float32(_INF))
    dele = np.full((n, width), _INF, dtype=np.float32)
    up_m = np.full((n, width), _INF, dtype=np.float32)
    up_i = np.full((n, width), _INF, dtype=np.float32)
    ins_open = np.float32(INS_EMIT + GAP_OPEN)
    ins_ext = np.float32(INS_EMIT + GAP_EXTEND)
    for i in range(length):
        if i:
            diag = np.minimum(np.minimum(m, ins), dele)
            up_m[:, :-1] = m[:, 1:]
            up_i[:, :-1] = ins[:, 1:]
            m = emit[:, i] + diag
            ins = np.minimum(up_m + ins_open, up_i + ins_ext)
        # deletion at column k: min over k' < k of M[k'] + open + extend * (k - k' - 1)
        scan = np.minimum.accumulate(m + del_ramp, axis=1)
        dele[:, 1:] = scan[:, :-1] + ext_ramp
        last = read_len == i + 1
        if last.any():
            best[last] = np.minimum(m[last], ins[last]).min(axis=1)
    return best.astype(np.float64)
