"""Gradients of a failure probability, checked against exact answers.

A pass/fail count has zero gradient almost everywhere, so two estimators are used:

* **Likelihood ratio (score function)** for the parameters of the input
  distribution x ~ N(mean, diag(std²)). With x = mean + std·u,

      ∂/∂mean_i log p(x) = u_i / std_i,     ∂/∂std_i log p(x) = (u_i² − 1) / std_i,

  and ∇Pf = E[(1[fail] − b)·∇log p(x)] for any baseline b independent of the
  sample (E[∇log p] = 0). The baseline is the leave-one-out estimate
  b_i = Σ_{j≠i} w_j f_j / (n − 1), independent of sample i, so the estimator stays
  unbiased (a leave-none-out baseline b = P̂f would add an O(1/n) bias
  −Cov(P̂f, f_i·score_i)). Rubinstein & Kroese, *Simulation and the Monte Carlo
  Method*, 3rd ed., Wiley 2016, §7.3 (score function method) and §5.3 (control
  variates).

* **Pathwise through a smoothed indicator** for parameters inside the limit state
  (the ``design`` pytree). The indicator 1[g < 0] is replaced by the logistic
  σ(−g/τ) and differentiated by automatic differentiation:
  P̃f(τ) = E[σ(−g/τ)] → Pf as τ → 0. Because the logistic kernel is symmetric its
  first moment vanishes and the bias is second order:

      P̃f − Pf = ∫ (σ(−t/τ) − 1[t < 0]) f_g(t) dt ≈ (π²/6)·τ²·f_g'(0),

  with f_g the density of g (so for a linear, Gaussian g with reliability index
  β and spread s_g: bias/Pf ≈ (π²/6)(τ/s_g)²·β·φ(β)/Φ(−β) ≈ (π²/6)(τ/s_g)²β²).
  The gradient carries a bias of the same order; its variance grows like 1/τ.
  τ is given explicitly (annealable) or chosen as ``tau_rel``·std(g_k) per
  column, computed on the current samples and held constant for the derivative.
  Several columns (failure when any g_k < 0) are combined as the product of
  smoothed pass indicators, P̃fail = 1 − Π_k σ(g_k/τ_k) (``combine="product"``,
  default), or through a smooth minimum of the normalised columns,
  σ(−softmin(g/τ)) with softmin(z) = −log Σ_k exp(−z_k) (``combine="softmin"``;
  softmin ≤ min, so this errs on the side of failure by at most log k in units
  of τ).

Importance sampling: samples may come from a defensive mixture
q = α·p + (1 − α)·p_shift, with p_shift = N(proposal_mean, diag(std²))
(Hesterberg, Technometrics 37, 185, 1995); everything is written in the target's
standard-normal coordinates u = (x − mean)/std, shift s = (proposal_mean − mean)/std,
and every term is weighted by w = p/q = 1/(α + (1 − α)·exp(u·s − |s|²/2)); the
scores are those of the target. With α > 0 the weights are bounded by 1/α, so a
proposal that misses a failure mode costs variance but never unbounded weights.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.result import InvalidModelOutput

__all__ = [
    "GradInfo",
    "as_columns",
    "failure_grad",
    "failure_grad_core",
    "pick_batches",
    "smoothed_failure",
    "validate_common",
]

_METHODS = ("lr", "smooth", "both")
_COMBINES = ("product", "softmin")
_BATCH_CHOICES = (32, 25, 20, 16, 10, 8)
# Elite fraction of the one-step cross-entropy update of the proposal shift.
_CE_RHO = 0.1


class GradInfo(NamedTuple):
    """Diagnostics returned as the third element of :func:`failure_grad`.

    Attributes:
      pf_se: standard error of ``pf`` (sample std of w·1[fail] over sqrt(n)).
      se: standard errors of the gradients, a dict shaped like ``grads``. Likelihood
        ratio entries use the per-sample spread (the leave-one-out baseline couples
        samples only at O(1/n)); smoothed entries use batch means over ``n_batches``
        batches (relative accuracy of the SE itself ≈ 1/sqrt(2·(n_batches − 1))).
      pf_smooth: smoothed failure probability E[w·P̃fail] (nan for method "lr").
      pf_smooth_se: its standard error (batch means; nan for method "lr").
      tau: f[k], the temperature used for each limit-state column.
      ess: Kish effective sample size (Σw)²/Σw² (= n without a proposal).
      n_fail: number of failing samples, unweighted.
      n_invalid: rows where the limit state returned NaN or inf.
      ce_shift: f[dim], cross-entropy update of the proposal shift in standard
        units: E_p[u | min_k g_k ≤ γ] with γ = max(0, 10 % quantile of min_k g_k)
        (Rubinstein & Kroese 2016, §8.3). Pass ``mean + std·ce_shift`` as the
        next ``proposal_mean`` to walk the proposal into a rare failure region.
    """

    pf_se: Any
    se: dict
    pf_smooth: Any
    pf_smooth_se: Any
    tau: Any
    ess: Any
    n_fail: Any
    n_invalid: Any
    ce_shift: Any


def as_columns(g):
    """A limit-state output as columns: f[n] becomes f[n, 1], f[n, k] is unchanged."""
    return g[:, None] if g.ndim == 1 else g


def smoothed_failure(g, tau, combine: str):
    """Smoothed failure indicator P̃fail of each row (module docstring), traceable.

    Args:
      g: f[n, k], limit-state columns (failure where any column < 0).
      tau: f[k], temperature of each column (> 0, units of g).
      combine: "product" (1 − Π_k σ(g_k/τ_k)) or "softmin" (σ(−softmin(g/τ))).

    Returns:
      f[n], values in [0, 1].
    """
    z = g / tau[None, :]
    if combine == "product":
        # 1 − Π σ(z_k) = −expm1(Σ log σ(z_k)), log σ(z) = −softplus(−z): exact for
        # pf ≪ 1 where 1 − (1 − ε) would lose every digit.
        return -jnp.expm1(-jnp.sum(jax.nn.softplus(-z), axis=1))
    soft_min = -jax.nn.logsumexp(-z, axis=1)
    return jax.nn.sigmoid(-soft_min)


def _sample_u(key, n: int, dim: int, shift, defensive, dtype):
    """Standard-normal coordinates from the defensive mixture and weights p/q.

    The mixture is sampled deterministically (Owen & Zhou, JASA 95, 135, 2000):
    every m-th row, m = round(1/α), comes from the target and the others from the
    shifted component; the weights use the realised fraction α' of target rows,
    w = 1/(α' + (1 − α')·exp(u·s − |s|²/2)), which keeps the estimator unbiased and
    spreads both components evenly over the batches used for standard errors.
    """
    z = jax.random.normal(key, (n, dim), dtype)
    row = jnp.arange(n)
    period = jnp.round(1.0 / jnp.maximum(defensive, 1.0 / n)).astype(row.dtype)
    from_target = (defensive > 0) & (row % period == 0)
    alpha = jnp.sum(from_target.astype(dtype)) / n
    v = z + (~from_target).astype(dtype)[:, None] * shift[None, :]
    log_ratio = v @ shift - 0.5 * jnp.sum(shift * shift)  # log p_shift/p at v
    log_q_over_p = jnp.logaddexp(jnp.log(alpha), jnp.log1p(-alpha) + log_ratio)
    return v, jnp.exp(-log_q_over_p)


def failure_grad_core(
    limit_state,
    mean,
    std,
    design,
    key,
    shift,
    tau,
    tau_rel,
    defensive,
    *,
    n: int,
    method: str,
    auto_tau: bool,
    combine: str,
    n_batches: int,
):
    """Traceable body of :func:`failure_grad`: no validation, no jit (callers jit it).

    Used inside other jitted loops (the optimizer step of :mod:`cpojax.optimize`).
    Arguments are those of :func:`failure_grad` after its checks: ``mean``/``std``
    f[dim] arrays of the working dtype, ``shift`` f[dim] the proposal shift in
    standard units, ``tau``/``tau_rel``/``defensive`` 0-d arrays of that dtype
    (``tau`` ignored when ``auto_tau``), ``n_batches`` from :func:`pick_batches`.

    Returns:
      ``(pf, grads, info)`` as :func:`failure_grad`.
    """
    dtype = mean.dtype
    dim = mean.shape[0]
    sqrt_n = math.sqrt(n)
    v, w = _sample_u(key, n, dim, shift, defensive, dtype)
    x = mean[None, :] + std[None, :] * v
    g = as_columns(limit_state(x, design)).astype(dtype)
    k = g.shape[1]
    finite = jnp.all(jnp.isfinite(g), axis=1)
    fail = jnp.any(g < 0, axis=1).astype(dtype)
    wf = w * fail
    pf = jnp.mean(wf)
    pf_se = jnp.std(wf, ddof=1) / sqrt_n
    ess = jnp.sum(w) ** 2 / jnp.sum(w * w)

    if auto_tau:
        spread = jax.lax.stop_gradient(jnp.std(g, axis=0))
        tau_k = tau_rel * jnp.where(spread > 0, spread, jnp.ones_like(spread))
    else:
        tau_k = jnp.broadcast_to(tau, (k,))

    # Cross-entropy shift: target-weighted mean of u over the elite (near-failing) set.
    gmin = jnp.min(g, axis=1)
    n_elite = max(1, math.ceil(_CE_RHO * n))
    level = jnp.maximum(-jax.lax.top_k(-gmin, n_elite)[0][-1], jnp.zeros((), dtype))
    elite_w = w * (gmin <= level).astype(dtype)
    ce_shift = (elite_w @ v) / jnp.maximum(jnp.sum(elite_w), jnp.finfo(dtype).tiny)

    grads = {"mean": None, "std": None, "design": None}
    se = {"mean": None, "std": None, "design": None}
    nan = jnp.full((), jnp.nan, dtype)
    pf_smooth, pf_smooth_se = nan, nan

    if method in ("lr", "both"):
        loo = (jnp.sum(wf) - wf) / (n - 1)
        a = w * (fail - loo)
        h_mean = a[:, None] * v / std[None, :]
        h_std = a[:, None] * (v * v - 1.0) / std[None, :]
        grads["mean"] = jnp.mean(h_mean, axis=0)
        grads["std"] = jnp.mean(h_std, axis=0)
        se["mean"] = jnp.std(h_mean, axis=0, ddof=1) / sqrt_n
        se["std"] = jnp.std(h_std, axis=0, ddof=1) / sqrt_n

    if method in ("smooth", "both"):
        m = n // n_batches
        v_b = v.reshape(n_batches, m, dim)
        w_b = w.reshape(n_batches, m)

        def batch_pf(p, vb, wb):
            mu, sd, des = p
            xb = mu[None, :] + sd[None, :] * vb
            gb = as_columns(limit_state(xb, des)).astype(dtype)
            return jnp.mean(wb * smoothed_failure(gb, tau_k, combine))

        vals, bgrads = jax.vmap(jax.value_and_grad(batch_pf), in_axes=(None, 0, 0))(
            (mean, std, design), v_b, w_b
        )
        sqrt_b = math.sqrt(n_batches)
        pf_smooth = jnp.mean(vals)
        pf_smooth_se = jnp.std(vals, ddof=1) / sqrt_b
        g_mean, g_std, g_design = jax.tree_util.tree_map(lambda t: jnp.mean(t, axis=0), bgrads)
        s_mean, s_std, s_design = jax.tree_util.tree_map(
            lambda t: jnp.std(t, axis=0, ddof=1) / sqrt_b, bgrads
        )
        grads["design"], se["design"] = g_design, s_design
        if method == "smooth":
            grads["mean"], grads["std"] = g_mean, g_std
            se["mean"], se["std"] = s_mean, s_std

    info = GradInfo(
        pf_se=pf_se,
        se=se,
        pf_smooth=pf_smooth,
        pf_smooth_se=pf_smooth_se,
        tau=tau_k,
        ess=ess,
        n_fail=jnp.sum(fail.astype(jnp.int32)),
        n_invalid=jnp.sum((~finite).astype(jnp.int32)),
        ce_shift=ce_shift,
    )
    return pf, grads, info


_core_jit = jax.jit(
    failure_grad_core,
    static_argnames=("limit_state", "n", "method", "auto_tau", "combine", "n_batches"),
)


def pick_batches(n: int, n_batches: int | None) -> int:
    """Number of batches for batch-mean standard errors of n samples.

    None picks the first of (32, 25, 20, 16, 10, 8) dividing n into batches of
    >= 2 samples; an explicit value is checked. Raises ValueError otherwise.
    """
    if n_batches is None:
        for b in _BATCH_CHOICES:
            if n % b == 0 and n // b >= 2:
                return b
        raise ValueError(
            f"n={n} has no divisor in {_BATCH_CHOICES} for batch-mean standard errors; "
            "choose n as a multiple of 8 or pass n_batches (an int >= 2 dividing n)"
        )
    if not isinstance(n_batches, int) or n_batches < 2 or n % n_batches or n // n_batches < 2:
        raise ValueError(
            f"n_batches must be an int >= 2 dividing n into batches of >= 2 samples, "
            f"got n_batches={n_batches!r} for n={n}"
        )
    return n_batches


def _is_concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _float_dtype(mean):
    dt = jnp.asarray(mean).dtype
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.dtype(jnp.float32)


def validate_common(
    mean, std, *, n: int, method: str, tau, tau_rel: float, combine: str, defensive: float
):
    """Host-side checks shared with :mod:`cpojax.optimize`; returns (mean, std) arrays."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if combine not in _COMBINES:
        raise ValueError(f"combine must be one of {_COMBINES}, got {combine!r}")
    if not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    dtype = _float_dtype(mean)
    mean = jnp.asarray(mean, dtype)
    std = jnp.asarray(std, dtype)
    if mean.ndim != 1 or mean.shape[0] < 1:
        raise ValueError(f"mean must be a 1-D array f[dim] with dim >= 1, got shape {mean.shape}")
    if std.shape != mean.shape:
        raise ValueError(f"std must have the shape of mean {mean.shape}, got {std.shape}")
    if _is_concrete(std) and not bool(np.all(np.asarray(std) > 0)):
        raise ValueError(f"std must be > 0 (and finite) in every entry, got {np.asarray(std)}")
    if _is_concrete(mean) and not bool(np.all(np.isfinite(np.asarray(mean)))):
        raise ValueError("mean must be finite in every entry")
    if tau is not None:
        tau_np = np.asarray(tau, dtype=float)
        if tau_np.ndim > 1 or not np.all(tau_np > 0) or not np.all(np.isfinite(tau_np)):
            raise ValueError(f"tau must be a positive finite scalar or f[k], got {tau!r}")
    if not (isinstance(tau_rel, int | float) and 0 < tau_rel < math.inf):
        raise ValueError(f"tau_rel must be a positive float, got {tau_rel!r}")
    if not (isinstance(defensive, int | float) and 0.0 <= defensive < 1.0):
        raise ValueError(f"defensive must be in [0, 1), got {defensive!r}")
    return mean, std


def failure_grad(
    limit_state,
    *,
    mean,
    std,
    design=None,
    key,
    n: int,
    method: str = "both",
    tau=None,
    tau_rel: float = 0.05,
    combine: str = "product",
    proposal_mean=None,
    defensive: float = 0.0,
    n_batches: int | None = None,
):
    """Failure probability and its gradients for x ~ N(mean, diag(std²)).

    Pf(mean, std, design) = P[min_k g_k(x, design) < 0]. The function is jitted
    once per (limit_state, n, method, combine, n_batches, shapes); tau, tau_rel,
    defensive and proposal_mean are traced, so annealing τ does not recompile.

    Args:
      limit_state: ``g(x: f[n, dim], design) -> f[n] | f[n, k]``, jnp-traceable and
        row-wise (row i of the output depends only on row i of x); failure where
        any column is < 0.
      mean: f[dim], mean of x (its dtype, if floating, is the working dtype).
      std: f[dim], standard deviations of x, > 0.
      design: any pytree of float arrays passed to ``limit_state``, or None.
      key: a ``jax.random`` key.
      n: number of samples (rows), >= 2; a multiple of 8 for the default batching.
      method: "lr": likelihood ratio for mean/std, no design gradient (None);
        "smooth": every gradient pathwise through the smoothed indicator (biased,
        O(τ²)); "both" (default): likelihood ratio for mean/std, smoothed pathwise
        for design.
      tau: temperature(s) of the smoothed indicator, scalar or f[k] in units of g,
        > 0; None: ``tau_rel``·std(g_k) on the current samples.
      tau_rel: relative temperature for the automatic choice, > 0.
      combine: "product" or "softmin", how smoothed columns are combined (module
        docstring).
      proposal_mean: f[dim] mean of the shifted importance-sampling proposal (same
        std as the target), or None for plain sampling from the target.
      defensive: mixture weight α of the target in the proposal, in [0, 1); weights
        are bounded by 1/α when α > 0; realised as every round(1/α)-th row (a
        deterministic mixture, see ``_sample_u``). Ignored when proposal_mean is None.
      n_batches: number of batches for batch-mean standard errors of the smoothed
        estimator (an int >= 2 dividing n); None picks the first of
        (32, 25, 20, 16, 10, 8) that divides n.

    Returns:
      ``(pf, grads, info)``: ``pf`` the unbiased (importance-weighted) estimate of
      P[fail], mean of w·1[fail]; ``grads`` a dict with "mean" f[dim], "std" f[dim]
      and "design" (a pytree like ``design``; None if design is None or method is
      "lr"); ``info`` a :class:`GradInfo` with standard errors shaped like
      ``grads``, the smoothed pf, τ, effective sample size and counts.

    Raises:
      ValueError: bad arguments (message names the argument and allowed range).
      InvalidModelOutput: the limit state returned NaN/inf for some rows.
    """
    mean, std = validate_common(
        mean,
        std,
        n=n,
        method=method,
        tau=tau,
        tau_rel=tau_rel,
        combine=combine,
        defensive=defensive,
    )
    n = int(n)
    dtype = mean.dtype
    nb = pick_batches(n, n_batches) if method != "lr" else 2
    if proposal_mean is None:
        shift = jnp.zeros_like(mean)
        defensive = 0.0
    else:
        pm = jnp.asarray(proposal_mean, dtype)
        if pm.shape != mean.shape:
            raise ValueError(f"proposal_mean must have shape {mean.shape}, got {pm.shape}")
        shift = (pm - mean) / std
    tau_arr = jnp.ones((), dtype) if tau is None else jnp.asarray(tau, dtype)
    pf, grads, info = _core_jit(
        limit_state,
        mean,
        std,
        design,
        key,
        shift,
        tau_arr,
        jnp.asarray(tau_rel, dtype),
        jnp.asarray(defensive, dtype),
        n=n,
        method=method,
        auto_tau=tau is None,
        combine=combine,
        n_batches=nb,
    )
    if _is_concrete(info.n_invalid) and int(info.n_invalid) > 0:
        raise InvalidModelOutput(
            f"limit_state returned NaN/inf for {int(info.n_invalid)} of {n} samples"
        )
    return pf, grads, info
