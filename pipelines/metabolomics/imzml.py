"""imzML metadata (via pyimzml) and ranged reads of the binary .ibd, one spectra range per task.

The driver parses only the XML (``ibd_file=None``), validates it and cuts the
spectra into ranges; a task reads just the byte ranges of its spectra with
:func:`cloudbutton.core.storage.read_range`, so no process holds the whole dataset.
"""
from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from pyimzml.ImzMLParser import ImzMLParser

from cloudbutton.core import storage
from cloudbutton.core.errors import InputError

_DTYPES = {"f": "<f4", "d": "<f8", "i": "<i4", "l": "<i8"}
UUID_ACCESSION = "IMS:1000080"
#: PSI-MS analyser terms -> our instrument models
ANALYSERS = {"MS:1000484": "orbitrap", "MS:1000079": "fticr", "MS:1000084": "tof"}
RESOLUTION_ACCESSIONS = ("MS:1000011", "MS:1000028")  # mass resolution, detector resolution
_COALESCE_GAP = 1 << 16  # read neighbouring arrays in one request when closer than this


@dataclass(frozen=True)
class DatasetMeta:
    """What the driver knows about an imzML dataset without reading the .ibd.

    Attributes
    ----------
    ibd : str
        URI of the binary file.
    shape : (height, width)
        Image grid after shifting coordinates to start at 0.
    pixels : (n_spectra,) int array
        Pixel index ``y·width + x`` of every spectrum (duplicates allowed: summed).
    mz_offsets, mz_lengths, int_offsets, int_lengths : int arrays
        Byte offsets and value counts of each spectrum's arrays.
    mz_dtype, int_dtype : str
        numpy dtypes of the arrays.
    polarity : str
    analyser : str or None
        ``orbitrap``, ``fticr`` or ``tof`` when the imzML's instrument configuration names one.
    resolving_power : float or None
        The instrument configuration's mass resolution, when given.
    """

    ibd: str
    shape: tuple[int, int]
    pixels: np.ndarray
    mz_offsets: np.ndarray
    mz_lengths: np.ndarray
    int_offsets: np.ndarray
    int_lengths: np.ndarray
    mz_dtype: str
    int_dtype: str
    polarity: str
    analyser: str | None = None
    resolving_power: float | None = None

    @property
    def sample_area(self) -> np.ndarray:
        """Sorted unique pixel indices that hold a spectrum (METASPACE's sample-area mask)."""
        return np.unique(self.pixels)


@dataclass(frozen=True)
class SpectraRange:
    """Spectra ``[start, stop)`` of a dataset, with just their layout: a dataset-stage partition."""

    start: int
    stop: int
    ibd: str
    mz_dtype: str
    int_dtype: str
    pixels: np.ndarray
    mz_offsets: np.ndarray
    mz_lengths: np.ndarray
    int_offsets: np.ndarray
    int_lengths: np.ndarray


def _ibd_path(imzml: str) -> str:
    base, _ = os.path.splitext(imzml)
    for ext in (".ibd", ".IBD", ".Ibd"):
        if storage.exists(base + ext):
            return base + ext
    raise InputError(base + ".ibd", "missing .ibd binary file next to the imzML")


def _compression(parser: ImzMLParser) -> str | None:
    groups = parser.metadata.referenceable_param_groups
    for group_id in (parser.mzGroupId, parser.intGroupId):
        names = groups[group_id].param_by_name if group_id in groups else {}
        for name in names:
            if "compression" in name and name != "no compression":
                return name
    return None


def read_metadata(imzml: str, require_centroid: bool = True) -> DatasetMeta:
    """Parse and validate an imzML file; never reads the .ibd beyond its size.

    ``require_centroid=False`` accepts profile-mode data (for reading, not annotating).

    Raises
    ------
    InputError
        Unreadable XML, compressed or integer arrays, profile-mode spectra,
        no spectra, or an .ibd shorter than the arrays the XML points to.
    """
    imzml = str(imzml)
    if not storage.exists(imzml):
        raise InputError(imzml, "no such file")
    ibd = _ibd_path(imzml)
    with storage.open_input(imzml) as local, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyimzml's notes on misspelt ontology names
        try:
            parser = ImzMLParser(local, parse_lib="ElementTree", ibd_file=None)
        except ET.ParseError as exc:
            raise InputError(imzml, f"unreadable XML ({exc})") from None
        except IndexError:  # pyimzml indexes the first spectrum unconditionally
            raise InputError(imzml, "no spectra") from None
        except (KeyError, AttributeError, TypeError, ValueError, StopIteration, RuntimeError) as exc:
            raise InputError(imzml, f"not a valid imzML file ({type(exc).__name__}: {exc})") from None
    if not parser.coordinates:
        raise InputError(imzml, "no spectra")
    compression = _compression(parser)
    if compression:
        raise InputError(imzml, f"binary arrays use {compression}; only uncompressed imzML is supported")
    if parser.mzPrecision not in ("f", "d") or parser.intensityPrecision not in ("f", "d", "i", "l"):
        raise InputError(imzml, "m/z arrays must be 32- or 64-bit floats")
    if require_centroid and parser.spectrum_mode == "profile":
        raise InputError(imzml, "profile-mode spectra; centroid (peak-pick) the data before annotation")
    coords = np.asarray(parser.coordinates, dtype=np.int64)[:, :2]
    coords = coords - coords.min(axis=0)
    width, height = int(coords[:, 0].max()) + 1, int(coords[:, 1].max()) + 1
    meta = DatasetMeta(
        ibd=ibd, shape=(height, width), pixels=coords[:, 1] * width + coords[:, 0],
        mz_offsets=np.asarray(parser.mzOffsets, dtype=np.int64),
        mz_lengths=np.asarray(parser.mzLengths, dtype=np.int64),
        int_offsets=np.asarray(parser.intensityOffsets, dtype=np.int64),
        int_lengths=np.asarray(parser.intensityLengths, dtype=np.int64),
        mz_dtype=_DTYPES[parser.mzPrecision], int_dtype=_DTYPES[parser.intensityPrecision],
        polarity=str(parser.polarity or "positive"), **_instrument(parser),
    )
    if np.any(meta.mz_lengths != meta.int_lengths):
        raise InputError(imzml, "a spectrum has m/z and intensity arrays of different lengths")
    mz_size, int_size = np.dtype(meta.mz_dtype).itemsize, np.dtype(meta.int_dtype).itemsize
    needed = max(int((meta.mz_offsets + meta.mz_lengths * mz_size).max()),
                 int((meta.int_offsets + meta.int_lengths * int_size).max()))
    actual = storage.size(ibd)
    if actual < needed:
        raise InputError(ibd, f"truncated: {actual} bytes but the imzML references {needed}")
    _check_uuid(parser, imzml, ibd)
    return meta


def _check_uuid(parser: ImzMLParser, imzml: str, ibd: str) -> None:
    """The imzML's UUID (IMS:1000080) must equal the first 16 bytes of its .ibd (imzML 1.1 spec)."""
    text = parser.metadata.file_description.param_by_accession.get(UUID_ACCESSION)
    if not text:
        return  # optional in practice: nothing to compare
    expected = str(text).strip("{}").replace("-", "").lower()
    found = storage.read_range(ibd, 0, 16).hex()
    if expected != found:
        raise InputError(ibd, f"belongs to another dataset: its UUID {found} is not the imzML's {expected}")


def _instrument(parser: ImzMLParser) -> dict[str, object]:
    """Analyser and resolving power named by the imzML's instrument configurations, if any."""
    found: dict[str, object] = {"analyser": None, "resolving_power": None}
    for config in parser.metadata.instrument_configurations.values():
        for group in (config, *config.components):
            params = group.param_by_accession
            analyser = next((ANALYSERS[a] for a in params if a in ANALYSERS), None)
            found["analyser"] = found["analyser"] or analyser
            for accession in RESOLUTION_ACCESSIONS:
                try:
                    value = float(params.get(accession) or 0)
                except (TypeError, ValueError):
                    value = 0.0
                if value > 0 and found["resolving_power"] is None:
                    found["resolving_power"] = value
    return found


def spectra_ranges(meta: DatasetMeta, n: int) -> list[SpectraRange]:
    """Cut the spectra into ``n`` contiguous ranges of about equal byte size."""
    n_spectra = len(meta.pixels)
    sizes = meta.mz_lengths * np.dtype(meta.mz_dtype).itemsize + meta.int_lengths * np.dtype(meta.int_dtype).itemsize
    cum = np.concatenate(([0], np.cumsum(sizes)))
    n = max(1, min(n, n_spectra))
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n) / n, side="left")
    bounds = np.unique(np.concatenate(([0], np.clip(cuts, 1, n_spectra - 1) if n > 1 else [], [n_spectra])))
    return [SpectraRange(int(a), int(b), meta.ibd, meta.mz_dtype, meta.int_dtype, meta.pixels[a:b],
                         meta.mz_offsets[a:b], meta.mz_lengths[a:b], meta.int_offsets[a:b], meta.int_lengths[a:b])
            for a, b in zip(bounds[:-1].astype(int), bounds[1:].astype(int))]


def _coalesced(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(extents):
        if merged and start - merged[-1][1] <= _COALESCE_GAP:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def read_peaks(part: SpectraRange) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All peaks of the spectra in ``part``: (m/z f8, intensity f8, pixel i8).

    Reads only those spectra's byte ranges (neighbouring arrays coalesced into
    one request).  Zero and negative intensities are dropped.

    Raises
    ------
    InputError
        A non-finite m/z or intensity (a damaged or foreign .ibd).
    """
    mz_size, int_size = np.dtype(part.mz_dtype).itemsize, np.dtype(part.int_dtype).itemsize
    extents = [(int(o), int(o + n * mz_size)) for o, n in zip(part.mz_offsets, part.mz_lengths)]
    extents += [(int(o), int(o + n * int_size)) for o, n in zip(part.int_offsets, part.int_lengths)]
    blocks = [(a, storage.read_range(part.ibd, a, b)) for a, b in _coalesced(extents)]
    starts = [a for a, _ in blocks]

    def array(offset: int, count: int, dtype: str) -> np.ndarray:
        block_start, data = blocks[int(np.searchsorted(starts, offset, side="right")) - 1]
        return np.frombuffer(data, dtype=dtype, count=count, offset=offset - block_start)

    mzs, ints, pix = [], [], []
    for i in range(len(part.pixels)):
        n = int(part.mz_lengths[i])
        mz = array(int(part.mz_offsets[i]), n, part.mz_dtype).astype(np.float64)
        it = array(int(part.int_offsets[i]), n, part.int_dtype).astype(np.float64)
        if not (np.isfinite(it).all() and np.isfinite(mz).all()):
            raise InputError(part.ibd, f"spectrum {part.start + i}: non-finite m/z or intensity values")
        keep = it > 0
        mzs.append(mz[keep])
        ints.append(it[keep])
        pix.append(np.full(int(keep.sum()), part.pixels[i], dtype=np.int64))
    if not mzs:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(mzs), np.concatenate(ints), np.concatenate(pix)
