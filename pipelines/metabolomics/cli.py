"""``cloudbutton metabolomics annotate``: the CLI plugin (same builder as the Python API)."""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from cloudbutton.core import Job
from cloudbutton.core.cli import Command, Pipeline

from .centroids import default_cache_dir
from .isotopes import INSTRUMENTS
from .pipeline import Settings, build_annotate_job
from .report import report


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The annotate command's own options (defaults as METASPACE)."""
    parser.add_argument("imzml", help="centroided imzML file (its .ibd beside it)")
    parser.add_argument("--db", required=True, action="append",
                        help="molecular database: METASPACE's upload format (id, name, formula; TSV or CSV) or a "
                             "CSV with a 'sf'/'formula' column; repeatable, each database gets its own FDR")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--polarity", choices=("positive", "negative"), help="default: from the imzML")
    parser.add_argument("--adducts", type=_list,
                        help="+H,+Na or [M+H]+,[M+Na]+ (default +H,+Na,+K positive, -H,+Cl negative)")
    parser.add_argument("--neutral-losses", type=_list, default=(), help="e.g. -H2O,-CO2 (default none)")
    parser.add_argument("--chem-mods", type=_list, default=(),
                        help="chemical modifications, e.g. -CO2+CO (default none)")
    parser.add_argument("--ppm", type=float, default=3.0, help="ion-image m/z window, ± ppm (default 3)")
    parser.add_argument("--n-peaks", type=int, default=4, help="isotope peaks per ion (default 4)")
    parser.add_argument("--decoys", type=int, default=20, help="decoy adducts per target (default 20)")
    parser.add_argument("--instrument", choices=INSTRUMENTS,
                        help="analyser (default: the imzML's, else orbitrap)")
    parser.add_argument("--resolving-power", type=float,
                        help="resolving power at --resolving-power-mz (default: the imzML's, else 140000)")
    parser.add_argument("--resolving-power-mz", type=float, help="m/z of --resolving-power (default 200)")
    parser.add_argument("--peak-model", choices=("v1", "instrument"), default="v1",
                        help="isotope peak widths: METASPACE v1 constant sigma (default) or instrument-scaled")
    parser.add_argument("--fdr", choices=("v1", "v3"), default="v3",
                        help="v3: one ranking against every decoy (default, calibrated); v1: METASPACE's default, "
                             "median of 20 decoy rankings, digitised")
    parser.add_argument("--image-fdr", type=float, default=0.1,
                        help="ion images (every isotope) of annotations at this FDR or better (default 0.1)")
    parser.add_argument("--centroid-cache", default=default_cache_dir(),
                        help="centroid cache folder or URI (default $CLOUDBUTTON_CACHE/centroids or "
                             "~/.cache/cloudbutton/centroids)")
    parser.add_argument("--no-centroid-cache", action="store_true", help="compute every centroid afresh")
    parser.add_argument("--partitions", type=int, help="spectra ranges read in parallel (default: 1 per 8 MB)")
    parser.add_argument("--segments", type=int,
                        help="m/z segments annotated in parallel (default: 1 per 4 MB of .ibd or 10k ions, "
                             "more if --memory needs it)")


def build(args: argparse.Namespace) -> Job:
    """The Job for parsed arguments."""
    settings = Settings(
        polarity=args.polarity, adducts=args.adducts, neutral_losses=args.neutral_losses,
        chem_mods=args.chem_mods, image_fdr=args.image_fdr, ppm=args.ppm,
        n_peaks=args.n_peaks, n_decoys=args.decoys, instrument=args.instrument,
        resolving_power=args.resolving_power, resolving_power_mz=args.resolving_power_mz,
        peak_model=args.peak_model, fdr_mode=args.fdr,
        centroid_cache=None if args.no_centroid_cache else args.centroid_cache,
        dataset_partitions=args.partitions, segments=args.segments, memory_mb=args.memory)
    return build_annotate_job(args.imzml, args.db, args.out, settings)


def _fingerprint(out: str) -> str:
    """SHA-256 of ``annotations.csv``: the annotations, scores and FDRs."""
    return hashlib.sha256((Path(out) / "annotations.csv").read_bytes()).hexdigest()


def _sample(folder: str) -> list[str]:
    """Write the seed-0 synthetic dataset (formulas from the generated pool) in ``folder``."""
    from .formula_pool import formula_pool
    from .synthetic import make_dataset

    dataset = make_dataset(folder, formula_pool(), seed=0, name="seed0")
    return ["annotate", dataset.imzml, "--db", dataset.db]


pipeline = Pipeline(
    name="metabolomics",
    help="METASPACE-style annotation of imaging mass spectrometry (imzML) with FDR and ion images",
    commands={"annotate": Command(help="annotate an imzML dataset against molecular databases",
                                  add_arguments=add_arguments, build=build,
                                  fingerprint=_fingerprint, output_name="annotations", report=report)},
    sample=_sample,
)
