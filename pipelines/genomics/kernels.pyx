# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled inner loops of the caller: banded realignment, CIGAR walking, per-base passes.

Built with the package (Cython), so a worker imports machine code at once: nothing is
compiled or loaded at run time. Each loop runs without the GIL, so the threads of one
process call in parallel. Arithmetic is single precision, in the order the scalar DP
reads, so a pair's cost does not depend on the batch it was aligned in.
"""
import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t


cdef inline float _min(float a, float b) noexcept nogil:
    return b if b < a else a


def banded_costs(const uint8_t[::1] hap_buf, const int64_t[::1] hap_off, const int64_t[::1] hap_len,
                 const uint8_t[::1] seq, const uint8_t[::1] qual, const float[::1] hit, const float[::1] miss,
                 const int64_t[::1] pair_hap, const int64_t[::1] seg_beg, const int64_t[::1] seg_len,
                 const int64_t[::1] start, const int64_t[::1] band, float[::1] out, float gap_open,
                 float gap_ext, float ins_open, float ins_ext, float masked, float inf):
    """Viterbi cost of each (segment, haplotype) pair in its band (see :mod:`.realign`)."""
    cdef Py_ssize_t n = pair_hap.shape[0], width = 1, p, i, k, w, b
    cdef int64_t h0, hl, s0, length, first, j
    cdef uint8_t base, q, h
    cdef float e, new_m, new_ins, run_del, best
    for p in range(n):
        width = max(width, 2 * band[p] + 1)
    cdef float[::1] m = np.empty(width, np.float32)
    cdef float[::1] ins = np.empty(width, np.float32)
    cdef float[::1] dele = np.empty(width, np.float32)
    with nogil:
        for p in range(n):
            b = band[p]
            w = 2 * b + 1
            h0, hl = hap_off[pair_hap[p]], hap_len[pair_hap[p]]
            s0, length, first = seg_beg[p], seg_len[p], start[p] - b
            for i in range(length):
                base, q = seq[s0 + i], qual[s0 + i]
                run_del = inf
                for k in range(w):
                    j = first + i + k
                    if j < 0 or j >= hl:
                        e = inf
                    else:
                        h = hap_buf[h0 + j]
                        if h == 4 or base == 4:
                            e = masked
                        elif h == base:
                            e = hit[q]
                        else:
                            e = miss[q]
                    if i == 0:
                        new_m = e
                        new_ins = ins_open if e < inf else inf
                    else:
                        # insertion: read base i after the haplotype base of the next cell's last row
                        new_ins = _min(m[k + 1] + ins_open, ins[k + 1] + ins_ext) if k + 1 < w else inf
                        new_m = e + _min(_min(m[k], ins[k]), dele[k])
                    # deletion of haplotype bases after cell k - 1 of this row (affine recurrence)
                    dele[k] = run_del
                    run_del = _min(new_m + gap_open, run_del + gap_ext)
                    m[k] = new_m
                    ins[k] = new_ins
            best = inf
            for k in range(w):
                best = _min(best, _min(m[k], ins[k]))
            out[p] = best


def count_cigar(const int64_t[:] op):
    """Aligned blocks (M, =, X) and indels (I, D) among CIGAR operations."""
    cdef Py_ssize_t i, blocks = 0, events = 0
    cdef int64_t o
    with nogil:
        for i in range(op.shape[0]):
            o = op[i]
            if o == 0 or o == 7 or o == 8:
                blocks += 1
            elif o == 1 or o == 2:
                events += 1
    return blocks, events


def walk_cigar(const int64_t[:] op, const int64_t[:] length, const int64_t[::1] n_ops, const int64_t[::1] r_start,
               const int64_t[::1] q_start, int64_t[::1] blk_ref, int64_t[::1] blk_q, int64_t[::1] blk_len,
               int64_t[::1] blk_read, int64_t[::1] ev_read, int64_t[::1] ev_pos, int64_t[::1] ev_len,
               int64_t[::1] ev_q, int64_t[::1] r_end):
    """Blocks (reference start, offset in the concatenated sequence, length, read) and
    indel events (read, reference position, length, sequence offset or -1 for a
    deletion) of every read, and each read's aligned reference end."""
    cdef Py_ssize_t k = 0, nb = 0, ne = 0, r, t
    cdef int64_t rpos, qpos, o, n
    with nogil:
        for r in range(n_ops.shape[0]):
            rpos, qpos = r_start[r], q_start[r]
            for t in range(n_ops[r]):
                o, n = op[k], length[k]
                k += 1
                if o == 0 or o == 7 or o == 8:
                    blk_ref[nb], blk_q[nb], blk_len[nb], blk_read[nb] = rpos, qpos, n, r
                    nb += 1
                    rpos += n
                    qpos += n
                elif o == 1:
                    ev_read[ne], ev_pos[ne], ev_len[ne], ev_q[ne] = r, rpos, n, qpos
                    ne += 1
                    qpos += n
                elif o == 2:
                    ev_read[ne], ev_pos[ne], ev_len[ne], ev_q[ne] = r, rpos, n, -1
                    ne += 1
                    rpos += n
                elif o == 3:
                    rpos += n
                elif o == 4:
                    qpos += n
            r_end[r] = rpos


def count_bases(const int64_t[::1] blk_ref, const int64_t[::1] blk_q, const int64_t[::1] blk_len,
                const uint8_t[::1] seq, const uint8_t[::1] bq, int min_baseq, int64_t ref_start,
                int32_t[:, ::1] counts):
    """Add each kept base (ACGT, BQ >= ``min_baseq``, inside the reference slice) to ``counts``."""
    cdef Py_ssize_t n = counts.shape[0], b
    cdef int64_t t, site, at
    cdef uint8_t code
    with nogil:
        for b in range(blk_ref.shape[0]):
            for t in range(blk_len[b]):
                site, at = blk_ref[b] + t - ref_start, blk_q[b] + t
                code = seq[at]
                if code < 4 and bq[at] >= min_baseq and 0 <= site < n:
                    counts[site, code] += 1


def gather_observations(const int64_t[::1] blk_ref, const int64_t[::1] blk_q, const int64_t[::1] blk_len,
                        const int64_t[::1] blk_read, const uint8_t[::1] seq, const uint8_t[::1] bq, int min_baseq,
                        int64_t ref_start, const uint8_t[::1] wanted, int64_t[::1] pos, int64_t[::1] read,
                        uint8_t[::1] base, uint8_t[::1] qual):
    """Position, read, base and quality of the kept bases at ``wanted`` slice offsets, in read order."""
    cdef Py_ssize_t n = wanted.shape[0], k = 0, b
    cdef int64_t t, site, at
    with nogil:
        for b in range(blk_ref.shape[0]):
            for t in range(blk_len[b]):
                site, at = blk_ref[b] + t - ref_start, blk_q[b] + t
                if seq[at] < 4 and bq[at] >= min_baseq and 0 <= site < n and wanted[site]:
                    pos[k], read[k], base[k], qual[k] = blk_ref[b] + t, blk_read[b], seq[at], bq[at]
                    k += 1
