"""The geospatial notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

import re

from ..notebooks import execute


def test_notebook_executes_and_draws_figures():
    run = execute("geospatial")
    assert run.images >= 5  # hillshade + tiles, difference maps, error histogram, cross-section, timeline
    tiled, unbuffered = map(float, re.search(r"tiled vs untiled max \|dz\|: (\S+) m; unbuffered tiles vs untiled "
                                             r"max \|dz\|: (\S+) m", run.text).groups())
    assert tiled == 0.0 and unbuffered > 0.05
    rmse = float(re.search(r"RMSE (\S+) m", run.text).group(1))
    assert rmse < 0.25
