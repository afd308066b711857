"""Open the caller's files where they live: local paths, or object URIs (``s3://...``) by ranged reads.

Workers and the driver open BAM/CRAM and FASTA only through these functions.  An
object is handed to htslib as a loopback URL of the core's storage gateway
(:func:`cloudbutton.core.storage.url_of`), so a task transfers only the byte
ranges it reads, through whatever Lithops storage the run is configured with,
and its requests are counted to it.  The small side files (``.bai``/``.csi``/
``.crai``, ``.fai``, ``.gzi``) are copied once per content into the local cache,
as htslib would otherwise download them into the working folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pysam

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError

from .reference import open_fasta

#: Where an alignment file's index may sit beside it, by the file's own suffix.
_INDEX_SUFFIXES = {".bam": (".bai", ".csi"), ".cram": (".crai",)}


def open_alignment(path: str, reference: str, index: str | None = None) -> pysam.AlignmentFile:
    """The BAM/CRAM at ``path`` (CRAM decoded with ``reference``), with ``index`` when it is not beside it.

    For an object URI, ``index`` (an object or a local file) defaults to the index
    found beside the object (see :func:`object_index`).
    """
    if not storage.is_object_uri(path):
        return pysam.AlignmentFile(path, reference_filename=reference, index_filename=index)
    found = storage.cached_copy(index) if index else object_index(path)
    return pysam.AlignmentFile(storage.url_of(path), reference_filename=_reference_url(reference),
                               index_filename=found)


@contextmanager
def reading_alignments(files: Sequence[tuple[str, str | None]], reference: str) -> Iterator[list[pysam.AlignmentFile]]:
    """The alignment files ``(path, index)`` open for reading (see :func:`open_alignment`).

    A read error inside names the user's path (an object is read through a gateway URL),
    and closing a file whose stream failed never replaces that error with its own.
    """
    opened: list[pysam.AlignmentFile] = []
    try:
        for path, index in files:
            opened.append(open_alignment(path, reference, index))
        try:
            yield opened
        except OSError as exc:
            names = {aln.filename.decode(): path for aln, (path, _) in zip(opened, files)}
            if exc.filename not in names:
                raise
            raise OSError(exc.errno, exc.strerror, names[exc.filename]) from exc
    finally:
        for aln in opened:
            try:
                aln.close()
            except OSError:  # read-only: nothing is lost, and the read error above is the news
                pass


def object_index(path: str) -> str | None:
    """A local copy of the index beside object ``path`` (``x.bam.bai``, ``x.bai``, ``x.bam.csi``,
    ``x.cram.crai``, ``x.crai``), or None when it has none."""
    found = index_beside(path)
    return storage.cached_copy(found) if found else None


def index_beside(path: str) -> str | None:
    """The URI of the index stored beside object ``path``, or None."""
    stem, suffix = os.path.splitext(path)
    for index_suffix in _INDEX_SUFFIXES.get(suffix.lower(), (".bai", ".csi", ".crai")):
        for candidate in (path + index_suffix, stem + index_suffix):
            if storage.exists(candidate):
                return candidate
    return None


def open_reference(path: str) -> pysam.FastaFile:
    """The indexed FASTA at ``path`` (local, or an object with its ``.fai``, and ``.gzi`` when bgzipped).

    Raises
    ------
    InputError
        When an object reference has no ``.fai`` (or ``.gzi``) beside it.
    """
    if not storage.is_object_uri(path):
        return open_fasta(path)
    sidecars = [path + ".fai"] + ([path + ".gzi"] if path.lower().endswith((".gz", ".bgz")) else [])
    for sidecar in sidecars:
        if not storage.exists(sidecar):
            raise InputError(path, f"has no {sidecar.rsplit('.', 1)[1]} index beside it: run `samtools faidx` "
                                   "on the file and upload the index files next to it")
    local = [storage.cached_copy(s) for s in sidecars]
    try:
        return pysam.FastaFile(storage.url_of(path), filepath_index=local[0],
                               filepath_index_compressed=local[1] if len(local) > 1 else None)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot open reference FASTA: {exc}") from None


def _reference_url(reference: str | None) -> str | None:
    """The reference as htslib should open it to decode CRAM (object URIs through the gateway)."""
    return storage.url_of(reference) if reference and storage.is_object_uri(reference) else reference
