"""The annotation run's results in report.html: annotations per FDR level and a gallery of ion images.

Reads what the run wrote (``annotations.csv`` and ``images/<ion>.png``); computes nothing again.
"""
from __future__ import annotations

import csv
import io
import os

from cloudbutton.core import storage
from cloudbutton.core.report import Section, bars, facts, gallery, table

from .fdr import FDR_LEVELS

GALLERY_SIZE = 24


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def report(output: str) -> list[Section]:
    """Sections of an ``annotate`` output folder: counts per FDR level, the best ion images."""
    text = storage.read_range(_join(output, "annotations.csv")).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    fdrs = [float(r["fdr"]) for r in rows]
    per_level = [sum(f <= level for f in fdrs) for level in FDR_LEVELS]
    labels = [f"{level:.0%}" for level in FDR_LEVELS]
    counts = facts([("annotations (FDR < 100%)", len(rows)),
                    *((f"at FDR ≤ {label}", n) for label, n in zip(labels, per_level))])
    chart = bars(labels, per_level, "annotations at FDR ≤ level")
    pictured = {os.path.basename(uri)[:-4] for uri in storage.list_prefix(_join(output, "images"))
                if uri.endswith(".png")}
    first: dict[str, dict[str, str]] = {}  # each ion once (it may be in several databases), by MSM
    for row in rows:
        if row["ion"] in pictured:  # the annotations at the run's image FDR level
            first.setdefault(row["ion"], row)
    with_image = list(first.values())
    shown = with_image[:GALLERY_SIZE]
    images = gallery((storage.read_range(_join(output, f"images/{r['ion']}.png")),
                      [r["formula"], f"{r['adduct']}, m/z {float(r['mz']):.4f}",
                       f"MSM {float(r['msm']):.3f}", f"FDR {float(r['fdr']):.0%}"]) for r in shown)
    note = (f'<p class="note">The {len(shown)} best by MSM of the {len(with_image)} annotations with an ion image '
            "(images/, 99th-percentile hot-spot clipping).</p>")
    top = table(("ion", "m/z", "MSM", "spatial", "spectral", "chaos", "FDR", "m/z error ppm", "pixels"),
                [(r["ion"], r["mz"], f"{float(r['msm']):.3f}", f"{float(r['spatial']):.3f}",
                  f"{float(r['spectral']):.3f}", f"{float(r['chaos']):.3f}", f"{float(r['fdr']):.0%}",
                  r["mz_err_ppm"], r["n_pixels"]) for r in rows[:15]])
    return [Section("Annotations", counts + chart), Section("Ion images", note + images),
            Section("Top annotations by MSM", top)]
