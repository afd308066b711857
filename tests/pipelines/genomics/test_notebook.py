"""The genomics notebook runs top to bottom on the Python API and draws its figures."""
from __future__ import annotations

from ..notebooks import execute


def test_notebook_executes_and_draws_figures():
    run = execute("genomics")
    assert run.images >= 3  # QUAL histogram, depth, KPI timeline
    assert "identical records: True" in run.text
    f1 = [line for line in run.text.splitlines() if line.startswith("ALL")]
    assert f1 and float(f1[0].split("F1")[1]) > 0.95
