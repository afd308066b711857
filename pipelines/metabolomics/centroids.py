"""The centroid stage: isotope centroids of a group of ions, cached across runs.

The cache is keyed like METASPACE's centroid table: by formula, modifier and
isotope settings.  It is a folder per :meth:`IsotopeModel.key`, holding one
``.npz`` shard per ``crc32(formula) % N_SHARDS``; a centroid task owns whole
shards, so no two tasks of a run write the same file.  Cached and fresh
centroids are bit-identical (the centroider is per-ion deterministic).
"""
from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloudbutton.core import storage

from .ions import IonTable
from .isotopes import IsotopeModel, ion_centroids

N_SHARDS = 64
BATCH_IONS = 200  # ions centroided at once: small enough for the envelope arrays to stay in cache


def default_cache_dir() -> str:
    """``$CLOUDBUTTON_CACHE/centroids`` or ``~/.cache/cloudbutton/centroids``."""
    root = os.environ.get("CLOUDBUTTON_CACHE") or str(Path.home() / ".cache" / "cloudbutton")
    return str(Path(root) / "centroids")


def shard_of(formula: str) -> int:
    """Cache shard of a formula (all its ions share it)."""
    return zlib.crc32(formula.encode()) % N_SHARDS


@dataclass(frozen=True)
class CentroidTask:
    """A centroid-stage partition: the ions of some cache shards."""

    shards: tuple[int, ...]


def _load_shard(uri: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not storage.exists(uri):
        return {}
    try:
        with np.load(io.BytesIO(storage.read_range(uri))) as data:
            names, mzs, ints = data["names"], data["mzs"], data["ints"]
    except (OSError, ValueError, KeyError):  # a damaged shard is recomputed, never trusted
        return {}
    return {str(n): (m, i) for n, m, i in zip(names, mzs, ints)}


def _save_shard(uri: str, entries: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    names = sorted(entries)
    buffer = io.BytesIO()
    np.savez(buffer, names=np.array(names), mzs=np.array([entries[n][0] for n in names]),
             ints=np.array([entries[n][1] for n in names]))
    with storage.atomic_output(uri) as tmp, open(tmp, "wb") as handle:  # readers never see half a shard
        handle.write(buffer.getvalue())


def compute_centroids(task: CentroidTask, *, ions: IonTable, model: IsotopeModel, cache: str | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroids of the ions in the task's shards: ``(ion_ids, mzs (n, n_peaks), ints (n, n_peaks))``.

    Reads and updates the cache shards the task owns.  Memory: its ions' centroids
    plus one batch of ``BATCH_IONS`` envelopes.
    """
    formula_shard = np.array([shard_of(f) for f in ions.formula_names])
    ion_ids = np.flatnonzero(np.isin(formula_shard[ions.formula_idx], task.shards))
    formulas = ions.formula_names[ions.formula_idx[ion_ids]]
    modifiers = ions.modifier_names[ions.modifier_idx[ion_ids]]
    shard = formula_shard[ions.formula_idx[ion_ids]]
    names = np.char.add(formulas, modifiers)
    mzs = np.zeros((len(ion_ids), model.n_peaks))
    ints = np.zeros((len(ion_ids), model.n_peaks))
    for this_shard in task.shards:
        rows = np.flatnonzero(shard == this_shard)
        uri = f"{cache.rstrip('/')}/{model.key()}/shard-{this_shard:03d}.npz" if cache else None
        known = _load_shard(uri) if uri else {}
        missing = [r for r in rows if names[r] not in known]
        for start in range(0, len(missing), BATCH_IONS):
            batch = missing[start:start + BATCH_IONS]
            b_mz, b_int = ion_centroids(list(formulas[batch]), list(modifiers[batch]), model)
            for r, m, i in zip(batch, b_mz, b_int):
                known[str(names[r])] = (m, i)
        for r in rows:
            mzs[r], ints[r] = known[str(names[r])]
        if uri and missing:
            _save_shard(uri, known)
    return ion_ids, mzs, ints


@dataclass(frozen=True)
class SegmentCentroids:
    """The centroids of the ions whose first centroid falls in one m/z segment (what an annotate task loads)."""

    ion_ids: np.ndarray
    mzs: np.ndarray
    ints: np.ndarray
    is_target: np.ndarray


def centroid_segments(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], *, is_target: np.ndarray,
                      bounds: np.ndarray, folder: str) -> list[storage.Ref]:
    """Sort every ion's centroids into the m/z segments by first centroid; store one file per segment.

    Returns one :class:`~cloudbutton.core.storage.Ref` per segment, so an annotate task
    loads its own segment's centroids only.  Memory: 64 B per ion.
    """
    ids = np.concatenate([p[0] for p in parts])
    mzs = np.concatenate([p[1] for p in parts])
    ints = np.concatenate([p[2] for p in parts])
    order = np.argsort(ids, kind="stable")
    ids, mzs, ints = ids[order], mzs[order], ints[order]
    segment = np.searchsorted(bounds, mzs[:, 0], side="right") - 1
    refs = []
    for k in range(len(bounds) - 1):
        rows = np.flatnonzero(segment == k)
        refs.append(storage.store(SegmentCentroids(ids[rows], mzs[rows], ints[rows], is_target[ids[rows]]),
                                  f"{folder}/centroids-{k:05d}.pkl"))
    return refs
