"""Failure probability and its gradient inside one optimiser step (traceable).

Two paths, chosen by :attr:`YieldOptConfig.sampler`:

* Gaussian inputs x = mean + std·u (no sampler): :func:`cpojax.estimators.gradients.
  failure_grad_core` — likelihood ratio for mean and std, smoothed pathwise for the
  design — with a defensive importance-sampling proposal whose shift is carried
  from step to step and updated by one cross-entropy step each time (Rubinstein &
  Kroese 2016, §8.3), so rare targets (Y_t = 0.99999) see failures in every step;
* a custom ``sampler(key, params, n)``: pathwise through the smoothed indicator
  (reparameterisation through the sampler), no importance sampling.

Both return an unbiased P̂f (the indicator, not the smoothed value) with the
gradient w.r.t. the constrained parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from cpojax.estimators.gradients import as_columns, failure_grad_core, smoothed_failure
from cpojax.optimize.config import YieldOptConfig

__all__ = ["PfEstimate", "make_pf_and_grad"]


class PfEstimate(NamedTuple):
    """One step's estimate (all traced).

    Attributes:
      pf: unbiased failure probability (importance-weighted in the Gaussian case).
      grad: ∇Pf w.r.t. ``{"mean", "std", "design"}`` (design zeros when not estimated).
      shift: proposal shift for the next step, f[dim], standard units.
      pf_se: standard error of ``pf``.
      ess: effective sample size (n without importance sampling).
      tau: f[k], temperatures of the smoothed indicator.
      n_invalid: rows where the limit state returned NaN or inf.
    """

    pf: Any
    grad: dict
    shift: Any
    pf_se: Any
    ess: Any
    tau: Any
    n_invalid: Any


def make_pf_and_grad(
    limit_state: Callable, cfg: YieldOptConfig, *, dtype, n_batches: int
) -> Callable[[dict, Any, Any], PfEstimate]:
    """``estimate(params, key, shift) -> PfEstimate`` for the configured path.

    Args:
      limit_state: ``g(x: f[n, dim], design) -> f[n] | f[n, k]``.
      cfg: the optimiser configuration (n_per_step, method, tau, tau_rel, combine,
        importance, defensive, sampler).
      dtype: working float dtype.
      n_batches: batches for batch-mean standard errors (Gaussian path).
    """
    n = cfg.n_per_step
    tau, tau_rel, combine = cfg.tau, cfg.tau_rel, cfg.combine
    tau_arr = jnp.ones((), dtype) if tau is None else jnp.asarray(tau, dtype)

    def gaussian(p, k, shift) -> PfEstimate:
        pf, g, info = failure_grad_core(
            limit_state,
            p["mean"],
            p["std"],
            p["design"],
            k,
            shift,
            tau_arr,
            jnp.asarray(tau_rel, dtype),
            jnp.asarray(cfg.defensive if cfg.importance else 0.0, dtype),
            n=n,
            method=cfg.method,
            auto_tau=tau is None,
            combine=combine,
            n_batches=n_batches,
        )
        new_shift = info.ce_shift if cfg.importance else shift
        if g["design"] is None:
            g = {**g, "design": jax.tree_util.tree_map(jnp.zeros_like, p["design"])}
        return PfEstimate(pf, g, new_shift, info.pf_se, info.ess, info.tau, info.n_invalid)

    def generic(p, k, shift) -> PfEstimate:
        sampler = cfg.sampler
        x = jax.lax.stop_gradient(sampler(k, p, n))
        g0 = jax.lax.stop_gradient(as_columns(limit_state(x, p["design"])).astype(dtype))
        fail = jnp.any(g0 < 0, axis=1).astype(dtype)
        spread = jnp.std(g0, axis=0)
        tau_k = (
            tau_rel * jnp.where(spread > 0, spread, jnp.ones_like(spread))
            if tau is None
            else jnp.broadcast_to(tau_arr, (g0.shape[1],))
        )

        def smooth(pp):
            xx = sampler(k, pp, n)
            gg = as_columns(limit_state(xx, pp["design"])).astype(dtype)
            return jnp.mean(smoothed_failure(gg, tau_k, combine))

        grad = jax.grad(smooth)(p)
        n_inv = jnp.sum((~jnp.all(jnp.isfinite(g0), axis=1)).astype(jnp.int32))
        return PfEstimate(
            jnp.mean(fail),
            grad,
            shift,
            jnp.std(fail, ddof=1) / math.sqrt(n),
            jnp.asarray(float(n), dtype),
            tau_k,
            n_inv,
        )

    return gaussian if cfg.sampler is None else generic
