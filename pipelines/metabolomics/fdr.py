"""False discovery rate from target/decoy MSM rankings, per target modifier (METASPACE ``fdr.py``).

v1 (default): 20 rankings, ranking ``j`` pairs every target with its ``j``-th
decoy; a target's FDR is the median over rankings, then digitised to
5/10/20/50 %.  v3: one ranking against all decoys with the rule of succession,
made monotone, not digitised (lower variance across decoy draws).
"""
from __future__ import annotations

import numpy as np

FDR_LEVELS = (0.05, 0.1, 0.2, 0.5)


def score_fdr(target_scores: np.ndarray, decoy_scores: np.ndarray, decoy_ratio: float,
              rule_of_succession: bool, monotonic: bool) -> np.ndarray:
    """FDR of each target score: #decoys(≥ s) / ratio / #targets(≥ s), equal scores grouped."""
    scores = np.unique(np.concatenate([target_scores, decoy_scores]))[::-1]
    t_count = np.cumsum(np.bincount(len(scores) - 1 - np.searchsorted(scores[::-1], target_scores),
                                    minlength=len(scores)))
    d_count = np.cumsum(np.bincount(len(scores) - 1 - np.searchsorted(scores[::-1], decoy_scores),
                                    minlength=len(scores)))
    if rule_of_succession:
        t_count, d_count = t_count + 1, d_count + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        fdr = d_count / decoy_ratio / t_count
    fdr[t_count == 0] = 1.0
    if monotonic:
        fdr = np.minimum.accumulate(fdr[::-1])[::-1]
    return fdr[len(scores) - 1 - np.searchsorted(scores[::-1], target_scores)]


def digitise(msm: np.ndarray, fdr: np.ndarray) -> np.ndarray:
    """Bin FDRs to the levels: each target gets the smallest level whose MSM threshold it reaches."""
    out = np.ones(len(msm))
    for level in FDR_LEVELS:
        below = msm[fdr < level]
        if len(below):
            out[(out == 1.0) & (msm >= below.min())] = level
    return out


def target_fdr(msm_of: np.ndarray, targets: np.ndarray, decoys: np.ndarray, mode: str = "v1") -> np.ndarray:
    """FDR of the targets of one modifier.

    Parameters
    ----------
    msm_of : array
        MSM of every ion id (0 when not scored).
    targets : (n,) int array
        Target ion id per formula (-1: the ion cannot exist).
    decoys : (n, d) int array
        Decoy ion ids per formula (-1: none).
    mode : ``"v1"`` or ``"v3"``

    Returns
    -------
    (n,) FDR per formula's target (1 where the target has MSM 0 or does not exist).
    """
    out = np.ones(len(targets))
    valid = targets >= 0
    t_msm = np.where(valid, msm_of[np.maximum(targets, 0)], 0.0)
    scored = t_msm > 0
    if not scored.any():
        return out
    d_msm = np.where(decoys >= 0, msm_of[np.maximum(decoys, 0)], 0.0)[valid]
    t_scores = t_msm[scored]
    if mode == "v3":
        d_scores = d_msm[d_msm > 0]
        out[scored] = score_fdr(t_scores, d_scores, decoys.shape[1], True, True)
        return out
    rankings = [score_fdr(t_scores, d_msm[:, j][d_msm[:, j] > 0], 1.0, False, False)
                for j in range(decoys.shape[1])]
    out[scored] = digitise(t_scores, np.median(np.stack(rankings), axis=0))
    return out
