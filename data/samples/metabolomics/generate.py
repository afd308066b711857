"""Generate the metabolomics sample datasets (synthetic centroided imzML with known answers).

Usage: python data/samples/metabolomics/generate.py [--out data/samples/metabolomics/generated]
       [--seeds 0 1 2] [--formulas DB.csv] [--size 40]

Each seed writes ``seed<N>.imzML/.ibd``, ``seed<N>_db.csv`` (database: planted, wrong-pattern
and ~2000 distractor formulas) and ``seed<N>_truth.csv``.  Same seed, same bytes.
Formulas come from the project's generated pool
(:func:`cloudbutton.pipelines.metabolomics.formula_pool.formula_pool`), or from a molecular
database CSV given with ``--formulas`` (e.g. HMDB).  The generator itself is
:func:`cloudbutton.pipelines.metabolomics.synthetic.make_dataset`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool
from cloudbutton.pipelines.metabolomics.formulas import load_database
from cloudbutton.pipelines.metabolomics.synthetic import make_dataset

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "generated"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--formulas", help="draw formulas from this molecular database CSV ('sf' or 'formula' "
                                           "column) instead of the generated pool")
    parser.add_argument("--size", type=int, default=40, help="image side in pixels")
    parser.add_argument("--distractors", type=int, default=2000)
    args = parser.parse_args()
    pool = load_database(args.formulas) if args.formulas else formula_pool()
    for seed in args.seeds:
        ds = make_dataset(args.out, pool, seed=seed, shape=(args.size, args.size),
                          n_distractors=args.distractors, name=f"seed{seed}")
        print(f"{ds.imzml}: {len(ds.planted)} planted, {len(ds.wrong)} wrong-pattern ions; db {ds.db}")


if __name__ == "__main__":
    main()
