"""Write the geospatial sample: a synthetic 300 x 200 m survey as 2 x 2 LAS/LAZ tiles.

Usage: python data/samples/geospatial/generate.py [OUT_DIR] [--seed N]
(default OUT_DIR: data/samples/geospatial/tiles). The generator lives in
``cloudbutton.pipelines.geospatial.synthetic`` so tests and the notebook call
it directly; the known surface is ``synthetic.surface(x, y)``.
"""
from __future__ import annotations

import argparse
import os

from cloudbutton.pipelines.geospatial.synthetic import write_sample

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "tiles"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in write_sample(args.out, seed=args.seed):
        print(path)
