# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled inner loops of the caller: reading records, banded realignment, CIGAR walking,
per-base passes.

Built with the package (Cython), so a worker imports machine code at once: nothing is
compiled at run time (a JIT compiler's start-up cost more than calling a 100 kb slice).
The numeric loops run without the GIL, so the threads of one process align in parallel;
the record reader releases it while htslib decodes each record. DP costs are single
precision, and a pair's cost depends only on its own inputs.
"""
import errno

import numpy as np

from cpython.bytes cimport PyBytes_FromString
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy
from pysam.libcalignedsegment cimport AlignedSegment
from pysam.libcalignmentfile cimport IteratorRowRegion
from pysam.libchtslib cimport bam1_t, bam_get_cigar, bam_get_qname, bam_get_qual, bam_get_seq, bam_seqi

cdef const char *_LETTERS = b"=ACMGRSVTWYHKDBN"  # htslib's 4-bit base codes


cdef class KeptReads:
    """Columns of the reads one fetch kept (growing as records arrive).

    ``letters`` and ``quals`` hold every kept read's bases (ASCII) and base qualities end to
    end (``bases`` used); ``ops`` (operation, length) the CIGARs (``cigar`` rows used); per
    read (``reads`` used): sequence length, CIGAR operations, leftmost aligned position,
    MAPQ, flag and template (read-pair) number.
    """

    cdef public object letters, quals, ops, length, n_ops, start, mapq, flag, tmpl
    cdef public Py_ssize_t reads, bases, cigar
    cdef uint8_t[::1] _letters, _quals
    cdef int64_t[:, ::1] _ops
    cdef int64_t[:, ::1] _per_read
    cdef dict _templates
    cdef int64_t _block, _used

    def __init__(self):
        self.reads = self.bases = self.cigar = 0
        self._templates = {}
        self._block, self._used = -1, 0
        self._grow(1 << 16, 1 << 10, 1 << 9)

    cdef void _grow(self, Py_ssize_t bases, Py_ssize_t ops, Py_ssize_t reads):
        """Columns of at least these sizes, keeping what they hold."""
        if self.letters is None or bases > self.letters.shape[0]:
            self.letters = np.empty(bases, np.uint8) if self.letters is None else np.resize(self.letters, bases)
            self.quals = np.empty(bases, np.uint8) if self.quals is None else np.resize(self.quals, bases)
            self._letters, self._quals = self.letters, self.quals
        if self.ops is None or ops > self.ops.shape[0]:
            self.ops = np.empty((ops, 2), np.int64) if self.ops is None else np.resize(self.ops, (ops, 2))
            self._ops = self.ops
        if self.length is None or reads > self.length.shape[0]:
            table = np.zeros((6, reads), np.int64)
            if self.length is not None:
                table[:, :self.reads] = np.asarray(self._per_read)[:, :self.reads]
            self._per_read = table
            self.length, self.n_ops, self.start, self.mapq, self.flag, self.tmpl = table

    cdef void take(self, bam1_t *b, int skip_flags, int min_mapq, int64_t budget, int64_t block_bp):
        """Append ``b`` unless filtered out (flags, MAPQ, no CIGAR/sequence/qualities) or over
        the depth cap: within each ``block_bp`` block a read is kept while the reads kept
        that start there hold fewer than ``budget`` aligned reference bases."""
        cdef uint32_t *cig = bam_get_cigar(b)
        cdef uint8_t *seq = bam_get_seq(b)
        cdef uint8_t *qual = bam_get_qual(b)
        cdef Py_ssize_t n_cig = b.core.n_cigar, length = b.core.l_qseq, i, r = self.reads
        cdef int64_t ref_len = 0, block
        cdef uint32_t op
        if b.core.flag & skip_flags or b.core.qual < min_mapq or n_cig == 0 or length == 0 or qual[0] == 0xff:
            return
        for i in range(n_cig):
            op = cig[i] & 0xf
            if op == 0 or op == 2 or op == 3 or op == 7 or op == 8:
                ref_len += cig[i] >> 4
        block = b.core.pos // block_bp
        if block != self._block:
            self._block, self._used = block, 0
        if self._used >= budget:
            return
        self._used += ref_len
        if (self.bases + length > self._letters.shape[0] or self.cigar + n_cig > self._ops.shape[0]
                or r == self._per_read.shape[1]):
            self._grow(max(2 * self._letters.shape[0], self.bases + length),
                       max(2 * self._ops.shape[0], self.cigar + n_cig), 2 * self._per_read.shape[1])
        for i in range(length):
            self._letters[self.bases + i] = _LETTERS[bam_seqi(seq, i)]
        memcpy(&self._quals[self.bases], qual, length)
        for i in range(n_cig):
            self._ops[self.cigar + i, 0] = cig[i] & 0xf
            self._ops[self.cigar + i, 1] = cig[i] >> 4
        name = PyBytes_FromString(bam_get_qname(b))
        # a supplementary piece (0x800) is never paired with its primary mates for overlap removal:
        # which pieces a fetch sees would otherwise depend on where the window falls
        key = (name, r) if b.core.flag & 0x800 else name
        self._per_read[0, r] = length
        self._per_read[1, r] = n_cig
        self._per_read[2, r] = b.core.pos
        self._per_read[3, r] = b.core.qual
        self._per_read[4, r] = b.core.flag
        self._per_read[5, r] = self._templates.setdefault(key, len(self._templates))
        self.reads += 1
        self.bases += length
        self.cigar += n_cig


def gather_reads(source, int skip_flags, int min_mapq, int64_t budget, int64_t block_bp) -> KeptReads:
    """The kept reads of ``source`` (a pysam region fetch, read record by record without
    Python objects, or any iterator of ``AlignedSegment``), in its order (see :meth:`KeptReads.take`)."""
    cdef KeptReads kept = KeptReads()
    cdef IteratorRowRegion region
    cdef AlignedSegment read
    if isinstance(source, IteratorRowRegion):
        region = source
        while True:
            region.cnext()
            if region.retval < 0:
                break
            kept.take(region.getCurrent(), skip_flags, min_mapq, budget, block_bp)
        if region.retval < -1:
            raise OSError(errno.EIO, f"corrupt or unreadable alignment data (htslib read error {region.retval})",
                          region.samfile.filename.decode())
    else:
        for read in source:
            kept.take(read._delegate, skip_flags, min_mapq, budget, block_bp)
    return kept


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
