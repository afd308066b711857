"""Diploid single-sample genotype likelihoods and site quality, vectorised over sites.

Model (the "simple honest version" of bcftools' errmod, see research/genomics.md):
an observation with error probability e = 10^(-q/10) of allele A has
P(obs | A) = 1 - e and P(obs | other) = e / k (k = 3 for bases, 1 for indels);
P(obs | A1/A2) = mean over the two alleles. Correlated errors are damped like
errmod: when an observation is explained as an error, the k-th best observation of
one allele on one strand of a site has its error Phred scaled by
f_k = (1 - d)^k (1 - eta) + eta, d = 0.17, eta = 0.03.
Site QUAL = -10 log10 P(0/0 | D) with genotype priors 1 - 1.5 theta, theta, theta / 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THETA = 1.1e-3
_DEP_CORR = 0.17
_ETA = 0.03
_LN10 = np.log(10.0)
_LOG_PRIOR = np.log(np.array([1.0 - 1.5 * THETA, THETA, THETA / 2.0]))


def damping_weights(groups: np.ndarray, qual: np.ndarray) -> np.ndarray:
    """Errmod weight f_k for each observation, k = rank by descending quality in its group.

    Parameters
    ----------
    groups : ndarray of int64
        Group key per observation (e.g. site, allele and strand combined).
    qual : ndarray
        Observation qualities.
    """
    if groups.size == 0:
        return np.zeros(0)
    order = np.lexsort((-qual, groups))
    g = groups[order]
    new = np.ones(g.size, dtype=bool)
    new[1:] = g[1:] != g[:-1]
    idx = np.arange(g.size)
    rank = idx - np.maximum.accumulate(np.where(new, idx, 0))
    w = np.empty(g.size)
    w[order] = (1.0 - _DEP_CORR) ** rank * (1.0 - _ETA) + _ETA
    return w


def genotype_loglik(site: np.ndarray, is_alt: np.ndarray, qual: np.ndarray,
                    weight: np.ndarray, n_sites: int, n_other: int) -> np.ndarray:
    """Natural-log likelihoods of 0/0, 0/1, 1/1 per site, shape ``(n_sites, 3)``.

    Parameters
    ----------
    site : ndarray of int
        Site index of each observation supporting REF or ALT.
    is_alt : ndarray of bool
        Whether the observation supports ALT.
    qual : ndarray of float
        Phred quality of each observation.
    weight : ndarray of float
        Errmod damping factor applied to the error Phred (see ``damping_weights``).
    n_sites : int
        Number of sites.
    n_other : int
        Number of alleles an error can produce (3 for SNPs, 1 for indels).
    """
    e = np.power(10.0, -qual / 10.0)
    hit = np.log1p(-e)
    miss = weight * np.log(e) - np.log(n_other)
    half = np.log(0.5 * (1.0 - e) + 0.5 * e / n_other)
    ll = np.zeros((n_sites, 3))
    ref = ~is_alt
    ll[:, 0] = np.bincount(site, np.where(ref, hit, miss), n_sites)
    ll[:, 1] = np.bincount(site, half, n_sites)
    ll[:, 2] = np.bincount(site, np.where(ref, miss, hit), n_sites)
    return ll


@dataclass
class SiteCalls:
    """Per-site call summary (arrays over sites)."""

    qual: np.ndarray
    genotype: np.ndarray  # 1 = 0/1, 2 = 1/1
    gq: np.ndarray
    pl: np.ndarray  # (n, 3) Phred-scaled, min 0
    variant: np.ndarray  # bool: P(0/0 | D) < 0.5


def call_sites(ll: np.ndarray) -> SiteCalls:
    """Turn genotype log-likelihoods into QUAL, GT, GQ and PL.

    GT is the maximum-likelihood non-reference genotype (bcftools reports GT without
    the prior); a site is variant when the posterior of 0/0 is below 0.5.
    """
    post = ll + _LOG_PRIOR
    top = post.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(post - top).sum(axis=1))
    log_p00 = post[:, 0] - lse
    qual = np.minimum(-10.0 * log_p00 / _LN10, 999.0)
    genotype = np.where(ll[:, 2] > ll[:, 1], 2, 1)
    pl = -10.0 * ll / _LN10
    pl = np.rint(pl - pl.min(axis=1, keepdims=True)).astype(np.int64)
    log_pgt = np.take_along_axis(post, genotype[:, None], axis=1)[:, 0] - lse
    p_wrong = -np.expm1(log_pgt)
    gq = np.minimum(99, np.rint(-10.0 * np.log10(np.maximum(p_wrong, 1e-30)))).astype(np.int64)
    return SiteCalls(qual=qual, genotype=genotype, gq=gq, pl=pl, variant=log_p00 < np.log(0.5))
