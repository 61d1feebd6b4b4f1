"""Health checks of an importance-sampling estimate, shared by every sampler.

An importance-sampling estimate ``pf = mean(w·1{fail})`` is unbiased whatever the
proposal, but its *error estimate* can be badly wrong when the proposal misses part of
the failure domain: the missing mass then shows up, if at all, as a few huge weights.
The checks below read that from the failing weights (:func:`weight_stats`):

* Kish effective sample size ``(Σw)²/Σw²`` of the failing weights (≥ ``min_ess``);
* the largest single weight's share of ``Σw`` (≤ ``max_weight_share``);
* the two halves of the sample agree (|z| ≤ 4, false-alarm rate 6e-5);
* the generalised-Pareto tail shape k̂ of the weights ≤ 0.5 (the PSIS diagnostic of
  Vehtari et al. 2024, "Pareto smoothed importance sampling", JMLR 25). PSIS accepts
  k̂ ≤ 0.7 for the *mean* to converge; the interval reported here rests on the sample
  *variance*, which is consistent only for a finite weight variance, k < 1/2 (a
  generalised-Pareto tail with shape k has moments of order < 1/k). Measured: the vMF
  sampler in 100 dimensions (RP63) passed every other check at k̂ = 0.57–0.69 with
  intervals that missed.
"""

from __future__ import annotations

import math

import numpy as np

from cpojax.estimators.rare.common import log_ci

__all__ = [
    "CI_COV_FACTOR",
    "TAIL_K_MAX",
    "Stopper",
    "is_checks",
    "is_ci",
    "pareto_k",
    "weight_stats",
]

#: The 95 % interval of an importance-sampling estimate is drawn with this multiple of
#: its estimated cov. The nominal log-normal interval ``pf·exp(±1.96·sqrt(log(1+cov²)))``
#: covers less than 95 %: the sample variance of importance weights is noisy and skewed
#: with pf (the interval is narrow exactly when the estimate is low), and any data-based
#: stopping rule selects runs whose variance happens to look small. Measured with the
#: planned stopping of :class:`Stopper` over 200 seeds on the development problems
#: (:data:`cpojax.estimators.rare.benchmarks.DEV`): actual/estimated cov 1.02-1.08 and
#: coverage 0.92-0.94; with this factor 1.2 (z ≈ 2.35) the coverage is ≥ 0.95.
CI_COV_FACTOR = 1.2
#: Largest acceptable tail shape k̂ of the weights (see the module docstring).
TAIL_K_MAX = 0.5


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


def is_ci(pf: float, cov: float) -> tuple[float, float]:
    """The reported 95 % interval of an importance-sampling estimate: log-normal with
    ``CI_COV_FACTOR·cov`` (see :data:`CI_COV_FACTOR`)."""
    return log_ci(pf, CI_COV_FACTOR * cov)


def is_checks(stats: dict[str, float], opts) -> dict[str, bool]:
    """The health checks of :func:`weight_stats` against the options' thresholds."""
    return {
        "cov_target_met": stats["cov"] <= opts.target_cov,
        "ess_ok": stats["ess"] >= opts.min_ess,
        "weight_share_ok": stats["max_share"] <= opts.max_weight_share,
        "halves_agree": bool(stats["halves_z"] <= 4.0),
        "tail_ok": bool(stats["tail"] <= TAIL_K_MAX),
    }


class Stopper:
    """When to stop adding importance-sampling batches: at *planned* sample sizes.

    Stopping at the first batch whose estimated cov meets the target selects runs whose
    variance happens to be under-estimated (for importance weights the variance estimate
    rises and falls with pf itself), and the 95 % interval then under-covers: measured
    on a 2-D hyperplane at pf = 4e-4 (20 seeds), 70 % coverage and an actual cov of 0.13
    for a reported 0.085, while the same sampler at a fixed sample size covers 95 %. So
    the checks are made only at planned sizes: after the ``pilot`` batches, the sample
    size that meets ``margin·target_cov`` is predicted from the relative variance per
    sample seen so far, n = cov²·n_so_far / (margin·target)², and sampling goes on to
    that size before the next check (cov ≤ target_cov and the ESS and weight-share
    thresholds; a new plan if it fails: the margin makes that rare).
    """

    def __init__(self, opts, pilot: int, margin: float):
        self.opts = opts
        self.pilot = pilot
        self.margin = margin
        self.n_plan: int | None = None
        self.extend_to = 0
        self.extended = False

    def extend(self, checks: dict[str, bool], n_evals: int) -> bool:
        """Once per run: when the sample passes everything but the two tail-sensitive
        checks (tail shape k̂, halves agreement), whose statistics are noisy on a few
        hundred failing samples (k̂ from its largest ~3√n weights), double the sample
        before judging — a heavy tail stays heavy, a false alarm goes away. Returns
        whether to go on sampling."""
        failed = {k for k, ok in checks.items() if not ok}
        if self.extended or not failed or not failed <= {"tail_ok", "halves_agree"}:
            return False
        self.extended = True
        self.extend_to = 2 * n_evals
        return True

    def done(self, stats: dict[str, float], n_evals: int, n_batches: int) -> bool:
        o = self.opts
        if n_evals < self.extend_to:
            return False
        if n_batches < self.pilot or stats["n_fail"] < 10 or not stats["pf"] > 0:
            return False
        if self.n_plan is not None and n_evals < self.n_plan:
            return False
        if (
            stats["cov"] <= o.target_cov
            and stats["ess"] >= o.min_ess
            and stats["max_share"] <= o.max_weight_share
        ):
            return True
        target = self.margin * o.target_cov
        plan = stats["cov"] ** 2 * n_evals / (target * target)
        self.n_plan = max(n_evals + o.n_batch, math.ceil(plan))
        return False
