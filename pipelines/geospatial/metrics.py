"""Accuracy metrics for ground filters and terrain models.

The ground-filter scores are those of the ISPRS WG III/3 filter test
(Sithole & Vosselman 2004) plus Cohen's kappa as Pingel et al. report it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FilterScores:
    """ISPRS filter-test scores, as fractions (0..1)."""

    type1: float
    type2: float
    total: float
    kappa: float


def filter_scores(truth_ground: np.ndarray, predicted_ground: np.ndarray) -> FilterScores:
    """Type I, Type II, total error and Cohen's kappa of a ground classification.

    Type I is reference ground rejected as object over all reference ground;
    Type II is reference object accepted as ground over all reference object.
    """
    t = np.asarray(truth_ground, bool)
    p = np.asarray(predicted_ground, bool)
    if t.shape != p.shape or t.size == 0:
        raise ValueError("truth and prediction must be non-empty and of equal length")
    n = t.size
    gg = np.count_nonzero(t & p)
    go = np.count_nonzero(t & ~p)
    og = np.count_nonzero(~t & p)
    oo = n - gg - go - og
    n_bare, n_obj = gg + go, og + oo
    observed = (gg + oo) / n
    expected = ((gg + go) * (gg + og) + (og + oo) * (go + oo)) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
    return FilterScores(
        type1=go / n_bare if n_bare else 0.0,
        type2=og / n_obj if n_obj else 0.0,
        total=(go + og) / n,
        kappa=float(kappa),
    )


def dem_errors(dem: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """RMSE, mean absolute error, bias and max |dz| over cells valid in both grids."""
    ok = np.isfinite(dem) & np.isfinite(reference)
    if not ok.any():
        raise ValueError("no cell is valid in both grids")
    d = dem[ok].astype(float) - reference[ok].astype(float)
    return {
        "rmse": float(np.sqrt(np.mean(d * d))),
        "mae": float(np.mean(np.abs(d))),
        "bias": float(np.mean(d)),
        "max_abs": float(np.max(np.abs(d))),
        "cells": int(ok.sum()),
    }
