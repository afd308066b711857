"""report.html of an annotation run, rendered in headless Chromium: counts per FDR level and the ion images."""
from __future__ import annotations

import csv
from pathlib import Path

from cloudbutton.core.cli import main
from cloudbutton.pipelines.metabolomics.fdr import FDR_LEVELS
from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool
from cloudbutton.pipelines.metabolomics.synthetic import make_dataset

from ...browser import open_report


def test_annotate_report_in_browser(centroid_cache: str, tmp_path: Path) -> None:
    ds = make_dataset(str(tmp_path / "data"), formula_pool(1000, seed=5), seed=5, shape=(24, 24), n_planted=20,
                      n_unknown=40, n_distractors=150, name="small")
    out = tmp_path / "annotations"
    assert main(["metabolomics", "annotate", ds.imzml, "--db", ds.db, "--out", str(out),
                 "--centroid-cache", centroid_cache, "--quiet"]) == 0
    page = open_report(out / "report.html", tmp_path / "metabolomics-report.png")
    assert page.sections == ["Run", "Annotations", "Ion images", "Top annotations by MSM", "Stages", "Task timeline"]
    assert page.requests == [] and page.errors == [] and page.broken_images == 0

    with open(out / "annotations.csv") as handle:
        rows = list(csv.DictReader(handle))
    confident = [r for r in rows if float(r["fdr"]) <= 0.1]
    assert len(confident) >= 15
    assert page.images == min(24, len(confident)) == len(list((out / "images").glob("*.png")))
    for level in FDR_LEVELS:
        assert f"at FDR ≤ {level:.0%}\n{sum(float(r['fdr']) <= level for r in rows)}" in page.text
    best = rows[0]
    assert f"{best['formula']}\n{best['adduct']}, m/z {float(best['mz']):.4f}\nMSM {float(best['msm']):.3f}" in page.text
