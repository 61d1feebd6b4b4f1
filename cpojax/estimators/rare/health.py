"""Health checks of an importance-sampling estimate, shared by every sampler.

An importance-sampling estimate ``pf = mean(w·1{fail})`` is unbiased whatever the
proposal, but its *error estimate* can be badly wrong when the proposal misses part of
the failure domain: the missing mass then shows up, if at all, as a few huge weights.
The checks below read that from the failing weights (:func:`weight_stats`):

* Kish effective sample size ``(Σw)²/Σw²`` of the failing weights (≥ ``min_ess``);
* the largest single weight's share of ``Σw`` (≤ ``max_weight_share``);
* the two halves of the sample agree (|z| ≤ 4, false-alarm rate 6e-5);
* the generalised-Pareto tail shape k̂ of the weights ≤ 0.7 (the PSIS diagnostic and
  threshold of Vehtari et al. 2024, "Pareto smoothed importance sampling", JMLR 25).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["is_checks", "pareto_k", "weight_stats"]


def pareto_k(w: np.ndarray) -> float:
    """Generalised-Pareto shape k̂ of the upper tail of the positive weights, as in PSIS
    (Vehtari et al. 2024): tail size M = min(n/5, 3√n), fit by the empirical-Bayes method
    of Zhang & Stephens (2009, Technometrics 51) with the weakly informative prior on k
    used by PSIS. k̂ > 0.7 means the weight variance is (practically) infinite; bounded
    weights give k̂ < 0. NaN when fewer than 25 positive weights."""
    w = np.sort(w[w > 0])
    n = w.size
    m = int(min(n // 5, 3 * math.sqrt(n)))
    if m < 5 or n < 25:
        return float("nan")
    x = w[-m:] - w[-m - 1]
    x = x / max(x[-1], 1e-300)  # scale-free; k̂ is invariant to scaling
    if x[-1] <= 0:
        return float("nan")
    m_est = 30 + int(math.sqrt(m))
    bs = 1.0 - np.sqrt(m_est / (np.arange(1, m_est + 1) - 0.5))
    bs = bs / (3.0 * max(x[int(m / 4 + 0.5) - 1], 1e-12)) + 1.0 / x[-1]
    ks = np.mean(np.log1p(-bs[:, None] * x[None, :]), axis=1)
    ls = m * (np.log(-bs / ks) - ks - 1.0)
    wts = 1.0 / np.exp(ls[None, :] - ls[:, None]).sum(axis=1)
    wts = wts / wts.sum()
    b_post = float(np.sum(bs * wts))
    k = float(np.mean(np.log1p(-b_post * x)))
    return (m * k + 10 * 0.5) / (m + 10)


def weight_stats(wf: np.ndarray, n_batches_done: int) -> dict[str, float]:
    """pf, cov, Kish ESS, largest weight share, halves z and tail k̂ of ``wf`` (the
    weights times the failure indicator, one entry per sample, in sampling order)."""
    n = wf.size
    pf = float(wf.mean())
    var = float(wf.var(ddof=1)) / n if n > 1 else math.inf
    cov = math.sqrt(var) / pf if pf > 0 else math.inf
    s1, s2 = float(wf.sum()), float((wf * wf).sum())
    ess = s1 * s1 / s2 if s2 > 0 else 0.0
    share = float(wf.max()) / s1 if s1 > 0 else 1.0
    h = n // 2
    a, b = wf[:h], wf[h:]
    if n_batches_done >= 2 and h > 1:
        den = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        z = abs(a.mean() - b.mean()) / den if den > 0 else (0.0 if a.mean() == b.mean() else 99.0)
    else:
        z = float("nan")
    return {
        "pf": pf,
        "cov": cov,
        "ess": ess,
        "max_share": share,
        "halves_z": float(z),
        "tail": pareto_k(wf),
        "n_fail": int(np.count_nonzero(wf)),
    }


def is_checks(stats: dict[str, float], opts) -> dict[str, bool]:
    """The health checks of :func:`weight_stats` against the options' thresholds."""
    return {
        "cov_target_met": stats["cov"] <= opts.target_cov,
        "ess_ok": stats["ess"] >= opts.min_ess,
        "weight_share_ok": stats["max_share"] <= opts.max_weight_share,
        "halves_agree": bool(stats["halves_z"] <= 4.0),
        "tail_ok": bool(stats["tail"] <= 0.7),
    }
