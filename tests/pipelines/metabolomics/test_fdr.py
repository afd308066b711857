"""Target-decoy FDR, checked against hand-computed rankings."""
from __future__ import annotations

import numpy as np

from cloudbutton.pipelines.metabolomics.fdr import digitise, score_fdr, target_fdr


def test_score_fdr_counts_ties_and_succession() -> None:
    t = np.array([0.9, 0.8, 0.8, 0.3])
    d = np.array([0.85, 0.3, 0.1])
    # >=0.9: 0/1; >=0.8: 1/3; >=0.3: 2/4
    assert score_fdr(t, d, 1.0, False, False).tolist() == [0.0, 1 / 3, 1 / 3, 0.5]
    # v3 style: (D+1)/ratio/(T+1), then reverse cumulative minimum
    v3 = score_fdr(t, d, 2.0, True, True)
    assert np.allclose(v3, [0.25, 0.25, 0.25, 0.3])


def test_digitise_levels() -> None:
    msm = np.array([0.9, 0.7, 0.5, 0.2])
    fdr = np.array([0.0, 0.08, 0.15, 0.4])
    assert digitise(msm, fdr).tolist() == [0.05, 0.1, 0.2, 0.5]


def test_target_fdr_median_over_rankings() -> None:
    # ion ids: targets 0..3, decoys 4..11 (2 decoys per target)
    msm = np.array([0.9, 0.8, 0.2, 0.0, 0.85, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0])
    targets = np.array([0, 1, 2, 3])
    decoys = np.array([[4, 5], [6, 7], [8, 9], [10, 11]])
    # ranking 0 decoys {0.85}: FDR 0.9->0, 0.8->0.5, 0.2->1/3; ranking 1 decoys {0.3}: 0, 0, 1/3
    # median -> 0, 0.25, 1/3 -> digitised 0.05, 0.5, 0.5; target 3 has MSM 0 -> 1
    assert target_fdr(msm, targets, decoys, "v1").tolist() == [0.05, 0.5, 0.5, 1.0]
    v3 = target_fdr(msm, targets, decoys, "v3")
    assert v3[3] == 1.0 and np.all(np.diff(v3[:3]) >= 0)
