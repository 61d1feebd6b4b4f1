"""Importance sampling with a Gaussian mixture centred on the FORM design points.

One unit-covariance component per distinct design point, weights ``w = φ(u)/q(u)``
in log space, cross-entropy refinement (Rubinstein & Kroese 2004; Kurtz & Song 2013
for mixtures) of the mixture weights and of each mean *along its own design-point
ray*. Restricting the mean update to the ray is deliberate: a full ``dim``-vector
update from a few hundred weighted samples adds noise of order ``dim/ESS`` to ``|μ|²``
and inflates the weight variance by ``exp(dim/ESS)`` in high dimension (Papaioannou,
Geyer & Straub 2019, "Improved cross entropy-based importance sampling with a flexible
mixture model", RESS 191). All batches (those of the refinement included) enter the
estimate: each is unbiased given the past, so the mean is unbiased and the pooled
sample variance is a consistent (slightly conservative) estimate of its variance.
Batches are added up to planned sample sizes (:class:`~.health.Stopper`: stopping at
the first batch that meets the target under-covers) until ``cov ≤ target_cov``, the
ESS ≥ ``min_ess`` and the largest weight share ≤ ``max_weight_share``, or the budget
is spent, or the weights are degenerate (≥ 200 failing samples with a Kish ESS below
5 % of them: more samples will not help).

``ci``: log-normal, ``pf·exp(±1.96·sqrt(log(1+(1.2·cov)²)))`` (the factor 1.2 of
:data:`~.health.CI_COV_FACTOR` pays for the noise of the estimated cov).

Health checks (``reliable = False`` when any fails): there is a design point (FORM,
near or found by the probe of :mod:`.explore`), and the checks of :mod:`.health`
(``cov ≤ target_cov``, Kish ESS, largest weight share, agreement of the two halves,
Pareto tail shape k̂ ≤ 0.5).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.rare.common import Options, eval_columns, raise_invalid
from cpojax.estimators.rare.health import Stopper, is_checks, is_ci, weight_stats
from cpojax.estimators.result import FailureResult
from cpojax.estimators.stats import norm_sf

__all__ = ["run_is"]

# Sample sizes are planned for this share of target_cov (health.Stopper).
_STOP_MARGIN = 0.95


@functools.partial(jax.jit, static_argnames=("limit_state", "n"))
def _is_batch(limit_state, key, means, log_pi, *, n: int):
    """One batch from the unit-covariance Gaussian mixture; log-weights log φ − log q."""
    dtype = means.dtype
    k_comp, k_z = jax.random.split(key)
    comp = jax.random.categorical(k_comp, log_pi, shape=(n,))
    u = means[comp] + jax.random.normal(k_z, (n, means.shape[1]), dtype)
    uu = jnp.sum(u * u, axis=1)
    um = u @ means.T
    mm = jnp.sum(means * means, axis=1)
    # (2π)^(dim/2) cancels between φ and q.
    logq_j = log_pi[None, :] - 0.5 * (uu[:, None] - 2.0 * um + mm[None, :])
    logq = jax.scipy.special.logsumexp(logq_j, axis=1)
    logw = -0.5 * uu - logq
    resp = jnp.exp(logq_j - logq[:, None])
    gm = eval_columns(limit_state, u, dtype)
    bad = ~jnp.all(jnp.isfinite(gm), axis=1)
    fail_k = (gm < 0) & ~bad[:, None]
    return {
        "logw": logw,
        "fail": jnp.any(fail_k, axis=1),
        "fail_k": fail_k,
        "resp": resp,
        "um": um,
        "n_invalid": jnp.sum(bad),
    }


def run_is(
    limit_state,
    key,
    form: dict[str, Any],
    n_cols: int,
    budget: int,
    opts: Options,
) -> FailureResult:
    """Mixture importance sampling around the FORM design points (see the module docstring)."""
    dtype = opts.dtype
    points = form["points"]
    form_ok = len(points) > 0
    if form_ok:
        means = np.stack([p for p, _, _ in points])
        pi = np.array([max(norm_sf(bb), 1e-300) for _, bb, _ in points])
    else:  # nothing converged: centre on the origin (crude MC), flagged unreliable
        means = np.zeros((1, int(form["dim"])), np.float64)
        pi = np.ones(1)
    floor = 0.1 / means.shape[0]
    pi = _floor_normalise(pi, floor)
    n = opts.n_batch
    w_all: list[np.ndarray] = []
    fk_all: list[np.ndarray] = []
    um_all: list[np.ndarray] = []
    resp_all: list[np.ndarray] = []
    history = []
    n_evals = 0
    stats: dict[str, float] = {}
    b = 0
    stopper = Stopper(opts, pilot=max(2, opts.n_ce), margin=_STOP_MARGIN)
    while True:
        while n_evals + n <= budget:
            out = jax.device_get(
                _is_batch(
                    limit_state,
                    jax.random.fold_in(key, b),
                    jnp.asarray(means, dtype),
                    jnp.asarray(np.log(pi), dtype),
                    n=n,
                )
            )
            n_evals += n
            b += 1
            raise_invalid(int(out["n_invalid"]), n, "importance sampling")
            fail = np.asarray(out["fail"])
            wf = np.where(fail, np.exp(np.asarray(out["logw"], np.float64)), 0.0)
            w_all.append(wf)
            fk_all.append(np.asarray(out["fail_k"]))
            if b <= opts.n_ce:
                um_all.append(np.asarray(out["um"], np.float64))
                resp_all.append(np.asarray(out["resp"], np.float64))
                means, pi = _ce_update(
                    means,
                    pi,
                    np.concatenate(w_all),
                    np.concatenate(um_all),
                    np.concatenate(resp_all),
                    floor,
                )
            wcat = np.concatenate(w_all)
            stats = weight_stats(wcat, b)
            history.append((n_evals, stats["pf"], stats["cov"], stats["ess"]))
            if stopper.done(stats, n_evals, b):
                break
            if stats["n_fail"] >= 200 and stats["ess"] < 0.05 * stats["n_fail"]:
                break  # degenerate weights: more samples will not help, hand over
        checks = {"form_converged": form_ok, **is_checks(stats, opts)} if w_all else {}
        if not (w_all and stopper.extend(checks, n_evals)):
            break
    if not w_all:
        raise ValueError(
            f"max_evals={opts.max_evals} leaves no room for one IS batch of n_batch={n}"
        )
    wcat = np.concatenate(w_all)
    fk = np.concatenate(fk_all)
    checks = {"form_converged": form_ok, **is_checks(stats, opts)}
    reliable = all(checks.values())
    pf = stats["pf"]
    diag = {
        "design_points": [m for m in means],
        "mixture_weights": pi.tolist(),
        "design_betas": [bb for _, bb, _ in points],
        "design_columns": [c for _, _, c in points],
        "form_pf": form["pf"],
        "ess": stats["ess"],
        "max_weight_share": stats["max_share"],
        "halves_z": stats["halves_z"],
        "tail_index": stats["tail"],
        "n_fail": stats["n_fail"],
        "checks": checks,
        "history": history,
        "pf_columns": [float(np.mean(np.where(fk[:, k], wcat, 0.0))) for k in range(n_cols)],
    }
    return FailureResult(
        pf=pf,
        ci=is_ci(pf, stats["cov"]),
        cov=stats["cov"],
        n_evals=n_evals,
        method="is",
        reliable=reliable,
        n_fail=stats["n_fail"],
        diagnostics=diag,
    )


def _floor_normalise(pi: np.ndarray, floor: float) -> np.ndarray:
    pi = pi / pi.sum()
    pi = np.maximum(pi, floor)
    return pi / pi.sum()


def _ce_update(means, pi, w, um, resp, floor):
    """Cross-entropy update of the mixture weights and of each mean's position along its
    own ray (see the module docstring for why the update is restricted to the ray)."""
    wr = w[:, None] * resp  # [n, J]
    a = wr.sum(axis=0)
    if a.sum() <= 0:
        return means, pi
    ess_j = np.where((wr**2).sum(axis=0) > 0, a**2 / np.maximum((wr**2).sum(axis=0), 1e-300), 0)
    new_means = means.copy()
    for j in range(means.shape[0]):
        r = np.linalg.norm(means[j])
        if ess_j[j] >= 5 and r > 1e-6:
            t = float((wr[:, j] * um[:, j] / r).sum() / a[j])
            new_means[j] = means[j] / r * t
    new_pi = _floor_normalise(a + 1e-300, floor) if (ess_j >= 5).any() else pi
    return new_means, new_pi
