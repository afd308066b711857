"""Banded glocal alignment of read segments to candidate haplotypes (a compiled loop).

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

Each (read segment, haplotype) pair is aligned inside a band of half-width ``band``
around its start diagonal, one read base per row, by a compiled loop
(:func:`.kernels.banded_costs`) that runs without the GIL (threads align in parallel).
Memory is a few arrays per pair: nothing grows with the product of pairs and band
cells, so a deep pile costs time, not memory.
"""
from __future__ import annotations

import numpy as np

from .kernels import banded_costs

GAP_OPEN = 40.0
GAP_EXTEND = 20.0
INS_EMIT = 6.02
MASKED = 6.02
MIN_QUAL, MAX_QUAL = 7, 30
_INF = 1e9


def expected_cost(qual: np.ndarray, beg: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Expected mismatch cost, sum of e * -10 log10(e / 3), of each segment ``qual[beg:end]``
    (``end > beg``) given its base qualities."""
    err = np.power(10.0, -np.clip(np.arange(256), MIN_QUAL, MAX_QUAL).astype(np.float64) / 10.0)
    per_base = err * -10.0 * np.log10(err / 3.0)
    lens = end - beg
    first = np.cumsum(lens) - lens
    idx = np.repeat(beg - first, lens) + np.arange(int(lens.sum()))
    return np.add.reduceat(per_base[qual[idx]], first)


def _emission_tables() -> tuple[np.ndarray, np.ndarray]:
    """Match and mismatch cost (float32) of each base quality 0-255."""
    q = np.clip(np.arange(256), MIN_QUAL, MAX_QUAL).astype(np.float32)
    err = np.power(np.float32(10.0), -q / np.float32(10.0))
    return (-10.0 * np.log10(1.0 - err)).astype(np.float32), (-10.0 * np.log10(err / 3.0)).astype(np.float32)


_HIT, _MISS = _emission_tables()


def glocal_costs(hap_buf: np.ndarray, hap_off: np.ndarray, hap_len: np.ndarray, seq: np.ndarray,
                 qual: np.ndarray, pair_hap: np.ndarray, seg_beg: np.ndarray, seg_len: np.ndarray,
                 start: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Phred cost of the best glocal alignment of each read segment to its haplotype.

    Parameters
    ----------
    hap_buf : ndarray of uint8
        Haplotype base codes (0-3 = ACGT, 4 = masked/N), concatenated.
    hap_off, hap_len : ndarray of int
        Offset into ``hap_buf`` and length of each haplotype.
    seq, qual : ndarray of uint8
        Read base codes (4 = N) and base qualities, concatenated (segments point into them).
    pair_hap : ndarray of int, shape (n,)
        Haplotype of each pair.
    seg_beg, seg_len : ndarray of int, shape (n,)
        Offset into ``seq`` and length (>= 1) of each pair's read segment.
    start : ndarray of int, shape (n,)
        Haplotype position where the segment's first base is expected (band centre).
    band : ndarray of int, shape (n,)
        Band half-width of each pair: indels up to about this length are representable.
        A pair's cost depends only on its own inputs.

    Returns
    -------
    ndarray of float, shape (n,)
        Minimum total cost; ``>= 1e9`` when no alignment fits the band.
    """
    out = np.empty(pair_hap.size, dtype=np.float32)
    as_i64 = (lambda a: np.ascontiguousarray(a, dtype=np.int64))
    f32 = np.float32
    banded_costs(np.ascontiguousarray(hap_buf, dtype=np.uint8), as_i64(hap_off), as_i64(hap_len),
                 np.ascontiguousarray(seq, dtype=np.uint8), np.ascontiguousarray(qual, dtype=np.uint8), _HIT, _MISS,
                 as_i64(pair_hap), as_i64(seg_beg), as_i64(seg_len), as_i64(start), as_i64(band), out,
                 f32(GAP_OPEN), f32(GAP_EXTEND), f32(INS_EMIT + GAP_OPEN), f32(INS_EMIT + GAP_EXTEND), f32(MASKED),
                 f32(_INF))
    return out.astype(np.float64)
