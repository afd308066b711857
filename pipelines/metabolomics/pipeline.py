"""The annotation stage graph and its Python API.

Stages (each bounded in memory):

0. ``setup`` (one task): the ion table (targets + seeded decoys per database),
   the databases' molecules and the sample area, shared by reference.  Bound: ~10 B per ion.
1. ``centroids`` (map over cache shards): isotope centroids of targets and
   decoys, cached across runs.  Bound: a shard group's centroids.
2. ``centroid_table`` (reduce): the centroids split by m/z segment, one stored
   file per segment.  Bound: 64 B per ion.
3. ``dataset`` (map over spectra ranges): reads only its .ibd byte ranges and
   emits its peaks split into m/z segments.  Bound: ~8× its share of the .ibd.
4. ``by_segment`` (shuffle): one bucket per m/z segment.
5. ``annotate`` (map over segments): loads its segment's peaks and centroids
   only; ion images, spectral/spatial/chaos, MSM; stages its targets' isotope
   images.  Bound: the segment's peaks + one image batch (see :func:`annotate_task_mb`).
6. ``fdr`` (reduce): FDR per database and target modifier, from the scores.
   Bound: one score row per scored ion.
7. ``export`` (reduce): ``annotations.csv``, ``metaspace_annotations.csv``,
   ``scores.csv``, ``images/``, written atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cloudbutton.core import Graph, InputError, Job, RunResult, plan_and_run, storage

from . import annotate as scoring
from .centroids import N_SHARDS, CentroidTask, SegmentCentroids, centroid_segments, compute_centroids, default_cache_dir
from .elements import ELECTRON_MASS
from .export import IMAGE_FDR, save_images, staging_folder, staging_uri, write_outputs
from .fdr import target_fdr
from .formulas import MolecularDatabase, load_molecules, monoisotopic_mass, normalise_adduct, parse_modifiers
from .imzml import SpectraRange, read_metadata, read_peaks, spectra_ranges
from .ions import DEFAULT_ADDUCTS, IonTable, build_ion_table
from .isotopes import IsotopeModel

DATASET_BYTES_PER_TASK = 8 << 20  # a dataset task holds ~8x its share of the .ibd (measured)
PPM_RANGE = (0.1, 100.0)
IONS_PER_SEGMENT = 10_000  # METASPACE: n_centroids / 10k segments
SEGMENT_IBD_BYTES = 4 << 20  # METASPACE: ds_MB / 50; ours smaller: annotate RSS grows ~10 B per .ibd byte (measured)
TASK_BASE_MB = 130  # an annotate task's interpreter, numpy/scipy and one image batch (measured)
MEMORY_PER_IBD_BYTE = 10.0  # peaks as f8/f8/i8 (2x the .ibd), their merge, sort and window copies (measured)
MEMORY_PER_ION = 600  # centroids, window bounds and scores of a segment's ions, bytes (measured)
MAX_SEGMENTS = 10_000


def annotate_task_mb(ibd_bytes: int, n_ions: int, n_segments: int) -> float:
    """Projected peak memory of one annotate task, MB: what it loads is its segment's share of the
    dataset (plus the margins into its neighbours) and of the ions; nothing else grows with the inputs."""
    share = ibd_bytes / n_segments + min(ibd_bytes, ibd_bytes * (1.0 + 12.0) / 900.0)  # margins: 13 Da of ~900
    return TASK_BASE_MB + (share * MEMORY_PER_IBD_BYTE + n_ions / n_segments * MEMORY_PER_ION) / 2**20


def plan_segments(ibd_bytes: int, n_ions: int, requested: int | None, memory_mb: int | None) -> int:
    """m/z segments: as METASPACE, enough for both the data bytes and the ion count; more when
    ``memory_mb`` needs it.

    Raises
    ------
    InputError
        When the requested count, or any count, would exceed ``memory_mb`` per task.
    """
    n = requested or max(2, -(-ibd_bytes // SEGMENT_IBD_BYTES), -(-n_ions // IONS_PER_SEGMENT))
    if memory_mb is None or annotate_task_mb(ibd_bytes, n_ions, n) <= memory_mb:
        return n
    fit = next((m for m in range(n, MAX_SEGMENTS + 1) if annotate_task_mb(ibd_bytes, n_ions, m) <= memory_mb), None)
    if requested is None and fit is not None:
        return fit
    need = annotate_task_mb(ibd_bytes, n_ions, n)
    advice = f"--segments {fit} would fit" if fit else "no segment count fits: raise --memory"
    raise InputError("--memory", f"{memory_mb} MB per task is less than the ~{need:.0f} MB an annotate task "
                                 f"needs with {n} segments; {advice}")


@dataclass(frozen=True)
class Settings:
    """Annotation settings with METASPACE's defaults."""

    polarity: str | None = None  # None: from the imzML
    adducts: tuple[str, ...] | None = None  # None: METASPACE's defaults for the polarity
    neutral_losses: tuple[str, ...] = ()
    chem_mods: tuple[str, ...] = ()
    ppm: float = 3.0
    n_peaks: int = 4
    n_decoys: int = 20
    instrument: str | None = None  # None: the imzML's analyser, else orbitrap
    resolving_power: float | None = None  # None: the imzML's mass resolution, else 140 000
    resolving_power_mz: float | None = None  # None: 200
    peak_model: str = "v1"
    fdr_mode: str = "v3"  # calibrated default (README "FDR"); "v1" as METASPACE's default
    n_levels: int = 30
    min_px: int = 1
    image_fdr: float = IMAGE_FDR  # ion images (every isotope) of annotations at this FDR or better
    centroid_cache: str | None = "default"  # None: no cache; "default": default_cache_dir()
    dataset_partitions: int | None = None  # None: one per 8 MB of .ibd, at least 2
    segments: int | None = None  # None: enough for the data bytes, the ion count and memory_mb
    memory_mb: int | None = None  # per-task memory the plan must fit (the CLI's --memory); None: no check


@dataclass(frozen=True)
class Setup:
    """What every later stage shares (built by a task): the ion table over the union of the
    databases' formulas, each database's molecules and its rows in that union, and the sample area."""

    ions: IonTable
    databases: tuple[MolecularDatabase, ...]
    db_rows: tuple[np.ndarray, ...]  # per database: its rows in the ion table's targets/decoys
    sample_area: np.ndarray


def ion_tables(dbs: list[str], adducts: tuple[str, ...], neutral_losses: tuple[str, ...], chem_mods: tuple[str, ...],
               n_decoys: int, fdr_mode: str) -> tuple[IonTable, tuple[MolecularDatabase, ...], tuple[np.ndarray, ...]]:
    """Targets and decoys of every database (drawn per database, as METASPACE), its molecules and rows."""
    databases = tuple(load_molecules(path) for path in dbs)
    names = [d.name for d in databases]
    databases = tuple(replace(d, name=f"{d.name}-{i + 1}") if names.count(d.name) > 1 else d
                      for i, d in enumerate(databases))
    sizes = tuple(len(d.formulas) for d in databases)
    starts = np.cumsum((0, *sizes))
    rows = tuple(np.arange(a, b) for a, b in zip(starts[:-1], starts[1:]))
    formulas = [f for d in databases for f in d.formulas]
    return (build_ion_table(formulas, adducts, neutral_losses, n_decoys, fdr_mode, chem_mods, groups=sizes),
            databases, rows)


def prepare(_: int, *, imzml: str, dbs: list[str], adducts: tuple[str, ...], neutral_losses: tuple[str, ...],
            chem_mods: tuple[str, ...], n_decoys: int, fdr_mode: str) -> Setup:
    """Setup task: build the shared tables once, so they travel by reference, not in task parameters."""
    ions, databases, rows = ion_tables(dbs, adducts, neutral_losses, chem_mods, n_decoys, fdr_mode)
    return Setup(ions, databases, rows, read_metadata(imzml).sample_area)


def centroids_task(task: CentroidTask, *, setup: list[Setup], model: IsotopeModel, cache: str | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid task: the centroids of the ions in the task's cache shards."""
    return compute_centroids(task, ions=setup[0].ions, model=model, cache=cache)


def read_spectra(part: SpectraRange, *, bounds: np.ndarray) -> list[tuple[int, Any]]:
    """Dataset task: peaks of one spectra range, keyed by m/z segment."""
    return scoring.split_peaks(read_peaks(part), bounds)


def centroid_table(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], *, setup: list[Setup],
                   bounds: np.ndarray, staging: str) -> list[storage.Ref]:
    """Centroid-table task: the centroids split by m/z segment, one stored file per segment."""
    return centroid_segments(parts, is_target=setup[0].ions.is_target, bounds=bounds, folder=staging)


def score_bucket(bucket: dict[int, list[Any]], *, centroids: list[storage.Ref], bounds: np.ndarray,
                 params: scoring.ScoringParams, sample_area: np.ndarray, staging: str) -> list[dict]:
    """Annotate task: score the ions whose first centroid falls in each segment of the bucket.

    Loads only its segments' peaks (the shuffle bucket) and centroids.  The targets'
    isotope images go to ``staging`` (one file per segment, written here); only the
    scores travel on to the FDR stage.
    """
    results = []
    for segment, chunks in bucket.items():
        peaks = scoring.merge_chunks(chunks)
        seg: SegmentCentroids = storage.load(centroids[segment])
        if len(seg.ion_ids) and seg.mzs.max() * (1 + params.ppm * 1e-6) >= bounds[segment + 1] + scoring.HIGH_MARGIN_DA:
            raise ValueError(f"an isotope pattern spans more than {scoring.HIGH_MARGIN_DA} Da")
        scored = scoring.score_segment(peaks, seg.ion_ids, seg.mzs, seg.ints, seg.is_target, sample_area, params)
        save_images(scored.pop("images"), staging_uri(staging, segment))
        results.append(scored)
    return results


@dataclass(frozen=True)
class FdrResult:
    """Scores of every scored ion and the FDR of targets in each database."""

    metrics: dict[str, np.ndarray]  # per scored ion (msm > 0), sorted by ion id
    fdr: np.ndarray  # (databases, ions): 1 for decoys, unscored targets and formulas not in the database


def compute_fdr(parts: list[list[dict]], *, setup: list[Setup], mode: str) -> FdrResult:
    """FDR stage: merge the segments' scores; rank each database's targets against their decoys per modifier."""
    ions, rows_of = setup[0].ions, setup[0].db_rows
    segs = [seg for part in parts for seg in part]
    merged = {k: np.concatenate([s[k] for s in segs]) if segs else np.zeros(0) for k in scoring.SCORE_COLUMNS}
    order = np.argsort(merged["ion"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    msm_of = np.zeros(len(ions))
    msm_of[merged["ion"].astype(np.int64)] = merged["msm"]
    fdr = np.ones((len(rows_of), len(ions)))
    for k, rows in enumerate(rows_of):
        for tm in ions.target_modifiers:
            targets = ions.targets[tm][rows]
            values = target_fdr(msm_of, targets, ions.decoys[tm][rows], mode)
            ok = targets >= 0
            fdr[k, targets[ok]] = values[ok]
    return FdrResult(metrics=merged, fdr=fdr)


def export_results(parts: list[FdrResult], *, out: str, shape: tuple[int, int], setup: list[Setup],
                   instrument: str, staging: str, n_segments: int, ppm: float, image_fdr: float,
                   dataset_name: str, charge: int) -> dict[str, Any]:
    """Export stage: write the output folder atomically; return a summary."""
    summary = write_outputs(parts[0], out=out, setup=setup[0], shape=shape, staging=staging,
                            n_segments=n_segments, ppm=ppm, image_fdr=image_fdr, dataset_name=dataset_name,
                            charge=charge)
    return {**summary, "instrument": instrument}


def _approx_mz(ions: IonTable, charge: int) -> np.ndarray:
    """Monoisotopic m/z of every ion, for choosing segment bounds."""
    f_mass = np.array([monoisotopic_mass(f) for f in ions.formula_names])
    m_mass = np.array([sum(sign * sum(monoisotopic_mass(el) * n for el, n in c.items())
                           for sign, c in parse_modifiers(m)) for m in ions.modifier_names])
    mass = f_mass[ions.formula_idx] + m_mass[ions.modifier_idx]
    return (mass - charge * ELECTRON_MASS) / abs(charge)


def build_annotate_job(imzml: str, db: str | list[str], out: str, settings: Settings = Settings()) -> Job:
    """Validate the inputs and build the annotation Job (shared by the CLI and :func:`annotate`).

    Raises
    ------
    InputError
        For a bad imzML/.ibd, database, or setting.
    """
    meta = read_metadata(imzml)
    polarity = settings.polarity or meta.polarity
    if polarity not in DEFAULT_ADDUCTS:
        raise InputError(imzml, f"polarity {polarity!r}: give --polarity positive or negative")
    adducts = tuple(normalise_adduct(a) for a in settings.adducts or DEFAULT_ADDUCTS[polarity])
    for mod in (*adducts, *settings.neutral_losses, *settings.chem_mods):
        try:
            parse_modifiers(mod)
        except ValueError as exc:
            raise InputError("--adducts/--neutral-losses/--chem-mods", str(exc)) from None
    if not 0 < settings.image_fdr <= 1:
        raise InputError("--image-fdr", f"{settings.image_fdr:g} is not in (0, 1]")
    if not PPM_RANGE[0] <= settings.ppm <= PPM_RANGE[1]:
        raise InputError("--ppm", f"{settings.ppm:g} is outside {PPM_RANGE[0]:g}-{PPM_RANGE[1]:g} ppm")
    if settings.n_decoys < 1:
        raise InputError("--decoys", f"{settings.n_decoys}: the FDR needs at least 1 decoy per target")
    if settings.n_peaks < 2 or not 1 <= settings.n_levels <= 32:
        raise InputError("settings", "need n_peaks >= 2 and 1 <= n_levels <= 32")
    instrument = settings.instrument or meta.analyser or "orbitrap"
    resolving_power = settings.resolving_power or meta.resolving_power or 140000.0
    instrument_note = (f"{instrument} ({_source(settings.instrument, meta.analyser)}), RP {resolving_power:g}"
                       f"@{settings.resolving_power_mz or 200.0:g} "
                       f"({_source(settings.resolving_power, meta.resolving_power)}), {polarity}")
    dbs = [str(db)] if isinstance(db, (str, os.PathLike)) else [str(d) for d in db]
    ion_args = {"adducts": adducts, "neutral_losses": tuple(settings.neutral_losses),
                "chem_mods": tuple(settings.chem_mods), "n_decoys": settings.n_decoys, "fdr_mode": settings.fdr_mode}
    try:
        model = IsotopeModel(instrument, resolving_power, settings.resolving_power_mz or 200.0,
                             settings.n_peaks, 1 if polarity == "positive" else -1, settings.peak_model)
        ions, _, _ = ion_tables(dbs, **ion_args)
    except ValueError as exc:
        raise InputError("settings", str(exc)) from None

    cache = default_cache_dir() if settings.centroid_cache == "default" else settings.centroid_cache
    n_tasks = min(N_SHARDS, max(2, len(ions) // 20_000))
    tasks = [CentroidTask(tuple(range(t, N_SHARDS, n_tasks))) for t in range(n_tasks)]
    n_parts = settings.dataset_partitions or max(2, -(-storage.size(meta.ibd) // DATASET_BYTES_PER_TASK))
    n_segments = plan_segments(storage.size(meta.ibd), len(ions), settings.segments, settings.memory_mb)
    bounds = scoring.segment_bounds(_approx_mz(ions, model.charge), n_segments)
    params = scoring.ScoringParams(settings.ppm, settings.n_levels, settings.min_px, meta.shape)

    staging = staging_folder(out)
    graph = Graph("metabolomics.annotate")
    graph.map("setup", prepare, over=[0], params={"imzml": str(imzml), "dbs": dbs, **ion_args})
    graph.map("centroids", centroids_task, over=tasks, side={"setup": "setup"}, params={"model": model, "cache": cache})
    graph.reduce("centroid_table", centroid_table, over="centroids", side={"setup": "setup"},
                 params={"bounds": bounds, "staging": staging})
    graph.map("dataset", read_spectra, over=spectra_ranges(meta, n_parts), params={"bounds": bounds})
    graph.shuffle("by_segment", over="dataset", partitions=n_segments)
    graph.map("annotate", score_bucket, over="by_segment", side={"centroids": "centroid_table"},
              params={"bounds": bounds, "params": params, "sample_area": meta.sample_area, "staging": staging})
    graph.reduce("fdr", compute_fdr, over="annotate", side={"setup": "setup"}, params={"mode": settings.fdr_mode})
    graph.reduce("export", export_results, over="fdr", side={"setup": "setup"},
                 params={"out": out, "shape": meta.shape, "instrument": instrument_note, "staging": staging,
                         "n_segments": n_segments, "ppm": settings.ppm, "image_fdr": settings.image_fdr,
                         "dataset_name": os.path.splitext(os.path.basename(str(imzml).rstrip("/")))[0],
                         "charge": model.charge})
    return Job(graph=graph, output=out, output_is_dir=True, summary=_summary,
               inputs=[str(imzml), meta.ibd, *dbs])


def _source(option: object, from_file: object) -> str:
    return "given" if option else "from the imzML" if from_file else "default"


def _summary(value: dict[str, Any]) -> str:
    levels = ", ".join(f"{n} at FDR<={int(level * 100)}%" for level, n in value["per_level"].items())
    return f"{value['annotations']} annotations ({levels}); instrument {value['instrument']} -> {value['out']}"


def annotate(imzml: str, db: str | list[str], out: str, *, executor: str = "threads", workers: int | None = None,
             **kwargs: Any) -> RunResult:
    """Annotate an imzML dataset against molecular database(s); write ``out/annotations.csv``.

    Parameters
    ----------
    imzml : str
        Centroided imzML file (its .ibd beside it); local path or object URI.
    db : str or list of str
        Molecular database CSV(s) with a ``sf`` or ``formula`` column.
    out : str
        Output folder: ``annotations.csv``, ``scores.csv``, ``images/*.png``, ``kpi.json``.
    executor, workers
        Where tasks run (``threads``, ``processes``, ``lithops``, ``spark``) and how many at once.
    **kwargs
        :class:`Settings` fields (``ppm``, ``adducts``, ``fdr_mode``, ``centroid_cache`` …)
        and :class:`~cloudbutton.core.RunOptions` fields (``kpi_path``, ``quiet`` …).

    Returns
    -------
    RunResult
        ``value`` is a summary dict (counts per FDR level, paths); ``kpi`` the KPI document.
    """
    fields = Settings.__dataclass_fields__
    settings = Settings(**{k: v for k, v in kwargs.items() if k in fields})
    if "memory_mb" in kwargs:
        settings = replace(settings, memory_mb=kwargs["memory_mb"])
    run_kwargs = {k: v for k, v in kwargs.items() if k not in fields or k == "memory_mb"}
    return plan_and_run(lambda: build_annotate_job(imzml, db, out, settings), executor=executor, workers=workers,
                        **run_kwargs)
