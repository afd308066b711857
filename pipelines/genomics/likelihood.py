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

import itertools
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


#: Allele sets a joint call weighs (bcftools ``call -m``: one to three alleles), REF alone first.
ALLELE_SETS: tuple[tuple[int, ...], ...] = tuple(
    s for k in (1, 2, 3) for s in itertools.combinations(range(MAX_ALLELES), k))


@dataclass
class CohortCalls:
    """Per-site calls of several samples: ``genotype`` and ``gq`` have one column per sample
    (genotype -1: the sample has no observation there, a no-call)."""

    qual: np.ndarray
    genotype: np.ndarray
    gq: np.ndarray
    variant: np.ndarray


def watterson_theta(n_chromosomes: int) -> float:
    """The site prior of a joint call: theta times Watterson's a_M = sum_{i<M} 1/i (at most 0.99)."""
    return min(THETA * float(np.sum(1.0 / np.arange(1, max(n_chromosomes, 2)))), 0.99)


def call_samples(ll: np.ndarray, observed: np.ndarray, haploid: np.ndarray, qsum: np.ndarray) -> CohortCalls:
    """QUAL, per-sample GT/GQ and the variant flag of every site from per-sample likelihoods.

    One sample: :func:`call_sites` (genotype priors). Several: bcftools' multiallelic joint
    model (``call -m``). Each sample's likelihoods are normalised over its genotypes; an
    allele set S (one to three alleles) has likelihood
    prod_samples sum_{g in S} HWE_g(f) P(D_s | g) times (theta a_M) per ALT allele in S,
    where f are S's allele frequencies estimated from quality sums (each sample's sums
    normalised, then added); QUAL = -10 log10 of the REF-only set's share of the total.
    The most likely set is called; each sample's GT is its most likely genotype of that set
    weighted by HWE(f), GQ the Phred of that choice being wrong. Samples without observations
    are left out of the products and get no call.

    Parameters
    ----------
    ll : ndarray, shape (n_sites, n_samples, 10)
        Natural-log genotype likelihoods (:func:`genotype_loglik`; absent alleles ``-inf``).
    observed : ndarray of bool, shape (n_sites, n_samples)
        Whether the sample has any observation at the site.
    haploid : ndarray of bool, shape (n_sites,)
        Sites where every sample carries one copy (a/a genotypes only).
    qsum : ndarray, shape (n_sites, n_samples, MAX_ALLELES)
        Summed observation quality per allele.
    """
    if ll.shape[1] == 1:
        one = call_sites(ll[:, 0], haploid)
        return CohortCalls(one.qual, one.genotype[:, None], one.gq[:, None], one.variant)
    n_sites, n_samples, _ = ll.shape
    ll = np.where(haploid[:, None, None] & (_GA != _GB)[None, None, :], -np.inf, ll)
    top = np.max(ll, axis=2, keepdims=True)
    lp = ll - (top + np.log(np.exp(ll - top).sum(axis=2, keepdims=True)))  # log P(D_s | g), normalised
    per_sample = qsum.sum(axis=2, keepdims=True)
    freq = np.divide(qsum, per_sample, out=np.zeros_like(qsum, dtype=np.float64), where=per_sample > 0).sum(axis=1)
    n_alleles = np.isfinite(ll[:, 0, [genotype_index(a, a) for a in range(MAX_ALLELES)]]).astype(int).sum(axis=1)
    chromosomes = np.where(haploid, n_samples, 2 * n_samples)
    log_theta = np.log([watterson_theta(int(m)) for m in chromosomes])
    set_lk = np.full((n_sites, len(ALLELE_SETS)), -np.inf)
    for k, alleles in enumerate(ALLELE_SETS):
        usable = (max(alleles) < n_alleles) & ((freq[:, list(alleles)] > 0).all(axis=1) | (len(alleles) == 1))
        per = np.where(observed, _set_loglik(lp, freq, alleles, haploid), 0.0).sum(axis=1)
        set_lk[:, k] = np.where(usable, per + log_theta * sum(a > 0 for a in alleles), -np.inf)
    ref_lk = set_lk[:, 0]
    top = set_lk[:, 1:].max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    nonref = safe + np.log(np.exp(set_lk[:, 1:] - safe[:, None]).sum(axis=1))
    log_p_ref = ref_lk - np.logaddexp(ref_lk, nonref)
    qual = np.minimum(-10.0 * log_p_ref / _LN10, 999.0)
    best = set_lk.argmax(axis=1)
    genotype = np.full((n_sites, n_samples), -1, dtype=np.int64)
    gq = np.zeros((n_sites, n_samples), dtype=np.int64)
    for k in np.unique(best):
        rows = np.flatnonzero(best == k)
        score = lp[rows] + _hwe_log_weights(freq[rows], ALLELE_SETS[k], haploid[rows])[:, None, :]
        choice = score.argmax(axis=2)
        top = np.take_along_axis(score, choice[:, :, None], axis=2)[:, :, 0]
        lse = top + np.log(np.exp(score - top[:, :, None]).sum(axis=2))
        p_wrong = -np.expm1(top - lse)
        genotype[rows] = np.where(observed[rows], choice, -1)
        gq[rows] = np.where(observed[rows], np.minimum(99, np.rint(-10.0 * np.log10(np.maximum(p_wrong, 1e-30)))), 0)
    carries_alt = ((genotype >= 0) & (_GB[np.maximum(genotype, 0)] > 0)).any(axis=1)
    return CohortCalls(qual=qual, genotype=genotype, gq=gq, variant=(best > 0) & carries_alt)


def _hwe_log_weights(freq: np.ndarray, alleles: tuple[int, ...], haploid: np.ndarray) -> np.ndarray:
    """Log Hardy-Weinberg weight of every genotype (``-inf`` outside ``alleles``), per site, from the
    frequencies of ``alleles`` renormalised among themselves (a/a only at haploid sites)."""
    sub = np.zeros_like(freq)
    sub[:, list(alleles)] = freq[:, list(alleles)]
    total = sub.sum(axis=1, keepdims=True)
    if len(alleles) == 1:
        sub[:, alleles[0]] = 1.0
    else:
        sub = np.divide(sub, total, out=np.zeros_like(sub), where=total > 0)
    with np.errstate(divide="ignore"):
        log_f = np.log(sub)
    diploid = log_f[:, _GA] + log_f[:, _GB] + np.where(_GA != _GB, np.log(2.0), 0.0)[None, :]
    single = np.where((_GA == _GB)[None, :], log_f[:, _GA], -np.inf)
    return np.where(haploid[:, None], single, diploid)


def _set_loglik(lp: np.ndarray, freq: np.ndarray, alleles: tuple[int, ...], haploid: np.ndarray) -> np.ndarray:
    """log sum_g HWE_g P(D_s | g) over the genotypes of ``alleles``, shape (n_sites, n_samples)."""
    term = lp + _hwe_log_weights(freq, alleles, haploid)[:, None, :]
    top = term.max(axis=2)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # no genotype of the set possible: -inf
        return safe + np.log(np.exp(term - safe[:, :, None]).sum(axis=2))


def segregation_bias(alt: np.ndarray, depth: int) -> float | None:
    """bcftools' segregation-based metric (INFO SGB) of one site, or None without ALT reads.

    ``alt`` holds each sample's ALT read count and ``depth`` the reads of all samples. The
    ALT reads are assumed to come from M = round(ALT / mean depth) carriers (1 to n
    samples, allele frequency f = M / 2n); SGB is the summed log-ratio, per sample, of the
    Poisson likelihood of its ALT count under a real variant in Hardy-Weinberg proportions
    (nr / M reads per carrier) against sequencing errors spread evenly (nr / n per sample).
    Real variants score high; ALT reads scattered thinly over every sample score low.
    """
    n = alt.size
    nr = int(alt.sum())
    if nr == 0:
        return None
    avg_dp = depth // n
    carriers = n if avg_dp == 0 else min(max(np.floor(nr / avg_dp + 0.5), 1.0), n)
    f = carriers / 2.0 / n
    p = nr / n  # ALT reads per sample if they are errors
    q = nr / carriers  # ALT reads per carrier if the variant is real
    seen = alt[alt > 0].astype(np.float64)
    total = np.sum(np.logaddexp(np.log(2 * (1 - f)), np.log(f) + seen * np.log(2.0) - q)
                   + np.log(f) + seen * np.log(q / p) - q + p)
    unseen = n - seen.size
    if unseen:
        total += unseen * (np.log(2 * f * (1 - f) * np.exp(-q) + f * f * np.exp(-2 * q) + (1 - f) ** 2) + p)
    return float(total)
