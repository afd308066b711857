"""Diploid genotype likelihoods over up to four alleles per site, and the site call.

Model (the "simple honest version" of bcftools' errmod, see research/genomics.md):
an observation of allele x with error probability e = 10^(-q/10) has
P(x | A) = 1 - e when x = A and e' / k otherwise (k = 3 for bases, 1 for indels);
P(x | A1/A2) = mean over the two alleles. Correlated errors are damped like errmod:
the k-th best observation of one allele on one strand of a site has its error Phred
scaled by f_k = (1 - d)^k (1 - eta) + eta, d = 0.17, eta = 0.03, so e' = e^f_k.

Site call (bcftools ``call -m``, one sample): QUAL = -10 log10 P(0/0 | D) with genotype
priors 1 - 1.5 theta (0/0), theta (0/a), theta / 2 (a/a) and theta^2 (a/b, two ALT
alleles); GT is the most likely non-reference genotype after a prior of theta per
distinct ALT allele it carries (so 1/2 needs evidence for both ALTs, while 0/1 against
1/1 is decided by the likelihood alone, as bcftools reports GT without its prior).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THETA = 1.1e-3
MAX_ALLELES = 4
_DEP_CORR = 0.17
_ETA = 0.03
_LN10 = np.log(10.0)

#: Unordered diploid genotypes in VCF order: index of (a, b), a <= b, is b(b+1)/2 + a.
GENOTYPES: tuple[tuple[int, int], ...] = tuple((a, b) for b in range(MAX_ALLELES) for a in range(b + 1))
_GA = np.array([g[0] for g in GENOTYPES])
_GB = np.array([g[1] for g in GENOTYPES])
_N_ALT = np.array([len({a, b} - {0}) for a, b in GENOTYPES])
_LOG_PRIOR = np.log(np.where(_GB == 0, 1.0 - 1.5 * THETA,
                             np.where(_GA == 0, THETA, np.where(_GA == _GB, THETA / 2.0, THETA * THETA))))
_LOG_SET_PRIOR = _N_ALT * np.log(THETA)
# haploid sites: only a/a genotypes exist, with priors 1 - theta (REF) and theta per ALT
_LOG_PRIOR_HAPLOID = np.where(_GA != _GB, -np.inf, np.where(_GA == 0, np.log(1.0 - THETA), np.log(THETA)))


def genotype_index(a: int, b: int) -> int:
    """VCF index of the unordered genotype a/b."""
    a, b = min(a, b), max(a, b)
    return b * (b + 1) // 2 + a


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


def genotype_loglik(site: np.ndarray, allele: np.ndarray, qual: np.ndarray, weight: np.ndarray,
                    n_alleles: np.ndarray, n_other: int) -> np.ndarray:
    """Natural-log likelihood of every genotype per site, shape ``(n_sites, 10)``.

    Parameters
    ----------
    site : ndarray of int
        Site index of each observation.
    allele : ndarray of int
        Allele (0 = REF, up to ``MAX_ALLELES - 1``) each observation supports.
    qual : ndarray of float
        Phred quality of each observation.
    weight : ndarray of float
        Errmod damping factor applied to the error Phred (see ``damping_weights``).
    n_alleles : ndarray of int, shape (n_sites,)
        Number of alleles of each site; genotypes using absent alleles get ``-inf``.
    n_other : int
        Number of alleles an error can produce (3 for SNPs, 1 for indels).
    """
    n_sites = n_alleles.size
    e = np.power(10.0, -qual / 10.0)
    log_hit = np.log1p(-e)
    log_miss = weight * np.log(e) - np.log(n_other)
    per_allele = np.where(allele[:, None] == np.arange(MAX_ALLELES)[None, :],
                          log_hit[:, None], log_miss[:, None])  # (n_obs, 4): log P(obs | allele)
    ll = np.empty((n_sites, len(GENOTYPES)))
    for g, (a, b) in enumerate(GENOTYPES):
        term = per_allele[:, a] if a == b else np.logaddexp(per_allele[:, a], per_allele[:, b]) - np.log(2.0)
        ll[:, g] = np.bincount(site, term, n_sites)
    ll[_GB[None, :] >= n_alleles[:, None]] = -np.inf
    return ll


@dataclass
class SiteCalls:
    """Per-site call summary (arrays over sites)."""

    qual: np.ndarray
    genotype: np.ndarray  # index into GENOTYPES
    gq: np.ndarray
    variant: np.ndarray  # bool: P(0/0 | D) < 0.5


def call_sites(ll: np.ndarray, haploid: np.ndarray | None = None) -> SiteCalls:
    """QUAL, GT (index into ``GENOTYPES``), GQ and the variant flag from ``genotype_loglik``.

    Rows flagged ``haploid`` only consider a/a genotypes (read as the single allele a).
    """
    if haploid is not None and haploid.any():
        ll = np.where(haploid[:, None] & (_GA != _GB)[None, :], -np.inf, ll)
        post = ll + np.where(haploid[:, None], _LOG_PRIOR_HAPLOID[None, :], _LOG_PRIOR[None, :])
    else:
        post = ll + _LOG_PRIOR
    top = post.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(post - top).sum(axis=1))
    log_p00 = post[:, 0] - lse
    qual = np.minimum(-10.0 * log_p00 / _LN10, 999.0)
    choice = ll + _LOG_SET_PRIOR
    choice[:, 0] = -np.inf
    genotype = choice.argmax(axis=1)
    log_pgt = np.take_along_axis(post, genotype[:, None], axis=1)[:, 0] - lse
    p_wrong = -np.expm1(log_pgt)
    gq = np.minimum(99, np.rint(-10.0 * np.log10(np.maximum(p_wrong, 1e-30)))).astype(np.int64)
    return SiteCalls(qual=qual, genotype=genotype, gq=gq, variant=log_p00 < np.log(0.5))


def phred_likelihoods(ll_row: np.ndarray, alleles: list[int], haploid: bool = False) -> list[int]:
    """PL over every genotype of ``alleles`` (REF first), in VCF order, minimum 0 (one per allele
    when ``haploid``)."""
    if haploid:
        idx = [genotype_index(a, a) for a in alleles]
    else:
        idx = [genotype_index(alleles[a], alleles[b]) for b in range(len(alleles)) for a in range(b + 1)]
    pl = -10.0 * ll_row[idx] / _LN10
    return [int(x) for x in np.rint(pl - pl.min())]
