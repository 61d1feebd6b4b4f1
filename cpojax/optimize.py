"""Reach a target yield at least cost: augmented Lagrangian on the β scale + optax.

Problem: minimise cost(θ) subject to Y(θ) ≥ Y_t, where θ = {"mean", "std",
"design"} and Y = 1 − Pf. The constraint is written on the reliability-index
scale, c(θ) = β(θ) − β_t ≥ 0 with β = Φ⁻¹(Y) = −Φ⁻¹(Pf), so that Y_t = 0.99
(β_t = 2.33) and Y_t = 0.99999 (β_t = 4.26) are equally well conditioned:
∇β = −∇Pf/φ(β) has the same magnitude whatever the size of Pf.

Each step minimises the augmented Lagrangian for inequality constraints
(Nocedal & Wright, *Numerical Optimization*, 2nd ed., Springer 2006, §17.4,
eq. 17.65), with penalty ρ and multiplier λ ≥ 0,

    L(θ) = f(θ)/f₀ + ψ(c(θ); λ, ρ),
    ψ(c; λ, ρ) = −λc + ρc²/2   if c ≤ λ/ρ,   else −λ²/(2ρ),
    ∇L = ∇f/f₀ − max(0, λ − ρc)·∇β,

by one optax update in an unconstrained parameterisation (identity for means
and design, log σ for standard deviations). The multiplier is either

* ``multiplier="ls"`` (default): the least-squares first-order estimate
  λ_LS = ⟨∇f, ∇β⟩/‖∇β‖² over the free parameters (N&W §18.3, eq. 18.21),
  exponentially averaged with weight ``multiplier_ema``; on the constraint the
  step then follows the projection of ∇f orthogonal to ∇β while the penalty term
  ρ·c restores feasibility. It does not integrate the (noisy, initially large)
  constraint violation, so it cannot overshoot; or
* ``multiplier="dual"``: the classical first-order update λ ← max(0, λ − η·c)
  (N&W eq. 17.39 has η = ρ; the default η = ρ/10 averages the noise in ĉ, at
  the price of overshoot when the primal moves slowly).

f₀ = |cost(θ₀)| normalises the cost so that λ and ρ
are O(1); the multiplier reported in the history is the effective
max(0, λ − ρc)·f₀ (cost per unit of β; → λ* at a KKT point).

Pf and ∇Pf come from :mod:`cpojax.estimators.gradients` (likelihood ratio for
mean and std, smoothed pathwise for the design) with a defensive importance
sampling proposal whose shift is carried from step to step and updated by one
cross-entropy step each time (Rubinstein & Kroese 2016, §8.3), so rare targets
(Y_t = 0.99999) see failures in every step. Random numbers are common within a
step (every quantity of step s uses ``fold_in(key_opt, s)``) and fresh across
steps. The step is one jitted function, compiled once.

The optimiser's answer is then verified by crude Monte Carlo on fresh samples
(a key split off before the optimiser starts, never seen by it), streamed in
fixed-size blocks so memory stays flat for n_verify ~ 1e7, and reported with an
exact Clopper-Pearson 95 % interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cpojax.estimators.gradients import (
    _as_2d,
    _core,
    _pick_batches,
    _smooth_fail,
    validate_common,
)
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson, norm_ppf

__all__ = ["YieldOptResult", "gaussian_sampler", "make_yield_step", "reach_yield", "verify_yield"]

_NAMES = ("mean", "std", "design")
_VERIFY_BLOCK = 4096  # samples per PRNG block; results do not depend on the chunk size
_PF_FLOOR = 1e-30  # keeps β finite (≈ 11.4) and φ(β) a normal float32 when no sample fails


def gaussian_sampler(key, params, n: int):
    """Default sampler: x = mean + std·u, u ~ N(0, I), x: f[n, dim]."""
    mean, std = params["mean"], params["std"]
    u = jax.random.normal(key, (n, mean.shape[0]), mean.dtype)
    return mean[None, :] + std[None, :] * u


class _State(NamedTuple):
    params_u: Any  # unconstrained parameters {"mean", "log_std", "design"}
    opt_state: Any
    lam: Any  # multiplier for the normalised cost
    shift: Any  # IS proposal shift in standard units, f[dim]


@dataclasses.dataclass(frozen=True)
class YieldOptResult:
    """Outcome of :func:`reach_yield`.

    Attributes:
      params: final parameters {"mean", "std", "design"} (last iterate).
      history: dict of NumPy arrays, one entry per step, evaluated before the
        step's update: "yield" (1 − P̂f), "pf_se", "beta" (−Φ⁻¹(P̂f)), "cost",
        "multiplier" (effective max(0, λ − ρc) in cost units per unit β), "ess",
        "tau" (f[steps, k]).
      target_yield: the requested yield.
      verified_yield: 1 − k/n from crude Monte Carlo on fresh samples.
      verified_ci: Clopper-Pearson 95 % interval of the verified yield.
      n_verify: number of verification samples.
      n_verify_fail: failing verification samples.
      n_compiles: number of times the step function was traced (1 when the loop
        never recompiled).
    """

    params: dict
    history: dict
    target_yield: float
    verified_yield: float
    verified_ci: tuple[float, float]
    n_verify: int
    n_verify_fail: int
    n_compiles: int

    @property
    def verified(self) -> bool:
        """True when the lower 95 % bound of the verified yield reaches the target."""
        return self.verified_ci[0] >= self.target_yield


def _to_unconstrained(params):
    return {"mean": params["mean"], "log_std": jnp.log(params["std"]), "design": params["design"]}


def _to_constrained(params_u):
    return {
        "mean": params_u["mean"],
        "std": jnp.exp(params_u["log_std"]),
        "design": params_u["design"],
    }


def _vector_mask(value, dim: int, name: str) -> np.ndarray:
    if isinstance(value, bool | np.bool_):
        return np.full(dim, bool(value))
    arr = np.asarray(value)
    if arr.dtype == bool:
        if arr.shape != (dim,):
            raise ValueError(
                f"free[{name!r}] as a bool mask must have shape ({dim},), got {arr.shape}"
            )
        return arr
    if np.issubdtype(arr.dtype, np.integer) and arr.ndim <= 1:
        idx = arr.reshape(-1)
        if np.any(idx < 0) or np.any(idx >= dim):
            raise ValueError(f"free[{name!r}] indices must be in [0, {dim}), got {idx.tolist()}")
        mask = np.zeros(dim, bool)
        mask[idx] = True
        return mask
    raise ValueError(
        f"free[{name!r}] must be a bool, a bool mask of shape ({dim},) or a list "
        f"of indices in [0, {dim}), got {value!r}"
    )


def _free_mask(free, params) -> dict:
    """Turn ``free`` into a float mask pytree shaped like the unconstrained params.

    Accepted forms: None (everything free); a name or a sequence of names from
    ("mean", "std", "design"); a dict name -> spec where the spec is a bool, for
    "mean"/"std" also a bool mask f[dim] or a list of indices, and for "design" a
    pytree of bools that is a prefix of the design pytree. Names absent from the
    dict are fixed.
    """
    dim = params["mean"].shape[0]
    if free is None:
        spec = dict.fromkeys(_NAMES, True)
    elif isinstance(free, str):
        spec = {free: True}
    elif isinstance(free, dict):
        spec = dict(free)
    elif isinstance(free, Sequence) and all(isinstance(f, str) for f in free):
        spec = dict.fromkeys(free, True)
    else:
        raise ValueError(
            f"free must be None, a name, a sequence of names from {_NAMES} or a "
            f"dict name -> mask, got {free!r}"
        )
    unknown = [k for k in spec if k not in _NAMES]
    if unknown:
        raise ValueError(f"free: unknown name(s) {unknown}; allowed names are {_NAMES}")
    dtype = params["mean"].dtype
    masks = {
        "mean": jnp.asarray(_vector_mask(spec.get("mean", False), dim, "mean"), dtype),
        "log_std": jnp.asarray(_vector_mask(spec.get("std", False), dim, "std"), dtype),
    }
    design = params["design"]
    dspec = spec.get("design", False)
    try:
        masks["design"] = jax.tree_util.tree_map(
            lambda m, sub: jax.tree_util.tree_map(
                lambda leaf: jnp.broadcast_to(
                    jnp.asarray(bool(m), jnp.asarray(leaf).dtype), jnp.shape(leaf)
                ),
                sub,
            ),
            dspec,
            design,
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"free['design'] must be a bool or a pytree of bools that is a prefix "
            f"of the design pytree: {err}"
        ) from err
    if not any(bool(jnp.any(leaf != 0)) for leaf in jax.tree_util.tree_leaves(masks)):
        raise ValueError(f"free selects no parameter at all: {free!r}")
    return masks


def make_yield_step(
    limit_state: Callable,
    params0: dict,
    *,
    cost: Callable,
    target_yield: float,
    key,
    free=None,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 300,
    n_per_step: int = 4096,
    sampler: Callable | None = None,
    method: str = "both",
    tau=None,
    tau_rel: float = 0.05,
    combine: str = "product",
    penalty: float = 10.0,
    multiplier: str = "ls",
    multiplier_ema: float = 0.2,
    dual_lr: float | None = None,
    importance: bool = True,
    defensive: float = 0.1,
    bounds: dict | None = None,
):
    """Build the jitted optimiser step of :func:`reach_yield` (for custom loops, benchmarks).

    Arguments are those of :func:`reach_yield`. Returns ``(state0, step, unpack,
    trace_count)``: ``state, record = step(state, s)`` for an int step index s
    (jitted, compiled on the first call); ``unpack(state)`` gives the constrained
    params; ``trace_count()`` the number of traces so far.
    """
    if not (isinstance(target_yield, int | float) and 0.0 < target_yield < 1.0):
        raise ValueError(f"target_yield must be in (0, 1), got {target_yield!r}")
    if not isinstance(params0, dict) or set(params0) - set(_NAMES) or "mean" not in params0:
        raise ValueError(
            f"params0 must be a dict with keys {_NAMES} ('std' and 'design' "
            f"optional), got {params0!r}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not (isinstance(penalty, int | float) and penalty > 0):
        raise ValueError(f"penalty must be > 0, got {penalty!r}")
    if multiplier not in ("ls", "dual"):
        raise ValueError(f"multiplier must be 'ls' or 'dual', got {multiplier!r}")
    if not (isinstance(multiplier_ema, int | float) and 0.0 < multiplier_ema <= 1.0):
        raise ValueError(f"multiplier_ema must be in (0, 1], got {multiplier_ema!r}")
    if dual_lr is not None and not (isinstance(dual_lr, int | float) and dual_lr >= 0):
        raise ValueError(f"dual_lr must be >= 0, got {dual_lr!r}")
    mean, std = validate_common(
        params0["mean"],
        params0.get("std", jnp.ones_like(jnp.asarray(params0["mean"]))),
        n=n_per_step,
        method=method,
        tau=tau,
        tau_rel=tau_rel,
        combine=combine,
        defensive=defensive,
    )
    dtype = mean.dtype
    # Strongly typed leaves: a weak-typed Python-float leaf would come back strong
    # from the first update and force a second compilation of the step.
    design = jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(leaf, jnp.asarray(leaf).dtype), params0.get("design")
    )
    params = {"mean": mean, "std": std, "design": design}
    mask = _free_mask(free, params)
    if method == "lr" and any(
        bool(jnp.any(m != 0)) for m in jax.tree_util.tree_leaves(mask["design"])
    ):
        raise ValueError(
            "method='lr' cannot differentiate design parameters inside the limit "
            "state; use method='both' or 'smooth', or fix the design in `free`"
        )
    n_batches = _pick_batches(n_per_step, None) if method != "lr" else 2
    lo_hi = _parse_bounds(bounds, mean.shape[0], dtype)

    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(0.05, steps, alpha=0.02))
    beta_t = norm_ppf(float(target_yield))
    cost_scale = abs(float(cost(params)))
    if not math.isfinite(cost_scale):
        raise ValueError(f"cost(params0) must be finite, got {cost_scale}")
    cost_scale = cost_scale if cost_scale > 0 else 1.0
    eta = float(0.1 * penalty if dual_lr is None else dual_lr)
    key_opt = key
    traces = [0]
    tau_arr = jnp.ones((), dtype) if tau is None else jnp.asarray(tau, dtype)

    def pf_and_grad(p, k, shift):
        """P̂f (unbiased), ∇Pf w.r.t. constrained params, new shift, diagnostics."""
        if sampler is None:
            pf, g, info = _core(
                limit_state,
                p["mean"],
                p["std"],
                p["design"],
                k,
                shift,
                tau_arr,
                jnp.asarray(tau_rel, dtype),
                jnp.asarray(defensive if importance else 0.0, dtype),
                n=n_per_step,
                method=method,
                auto_tau=tau is None,
                combine=combine,
                n_batches=n_batches,
            )
            new_shift = info.ce_shift if importance else shift
            if g["design"] is None:
                g = {**g, "design": jax.tree_util.tree_map(jnp.zeros_like, p["design"])}
            return pf, g, new_shift, (info.pf_se, info.ess, info.tau, info.n_invalid)
        # Generic sampler: pathwise through the smoothed indicator, no IS.
        x = jax.lax.stop_gradient(sampler(k, p, n_per_step))
        g0 = jax.lax.stop_gradient(_as_2d(limit_state(x, p["design"])).astype(dtype))
        fail = jnp.any(g0 < 0, axis=1).astype(dtype)
        spread = jnp.std(g0, axis=0)
        tau_k = (
            tau_rel * jnp.where(spread > 0, spread, jnp.ones_like(spread))
            if tau is None
            else jnp.broadcast_to(tau_arr, (g0.shape[1],))
        )

        def smooth(pp):
            xx = sampler(k, pp, n_per_step)
            gg = _as_2d(limit_state(xx, pp["design"])).astype(dtype)
            return jnp.mean(_smooth_fail(gg, tau_k, combine))

        grad = jax.grad(smooth)(p)
        pf = jnp.mean(fail)
        n_inv = jnp.sum((~jnp.all(jnp.isfinite(g0), axis=1)).astype(jnp.int32))
        return (
            pf,
            grad,
            shift,
            (
                jnp.std(fail, ddof=1) / math.sqrt(n_per_step),
                jnp.asarray(float(n_per_step), dtype),
                tau_k,
                n_inv,
            ),
        )

    def step(state: _State, s):
        traces[0] += 1  # runs at trace time only: counts compilations
        k = jax.random.fold_in(key_opt, s)
        p = _to_constrained(state.params_u)

        def norm_cost(pu):
            return cost(_to_constrained(pu)) / cost_scale

        f_val, f_grad = jax.value_and_grad(norm_cost)(state.params_u)
        pf, g_pf, new_shift, (pf_se, ess, tau_k, n_inv) = pf_and_grad(p, k, state.shift)
        pf_c = jnp.clip(pf, _PF_FLOOR, 1.0 - jnp.finfo(dtype).eps)
        beta = -jax.scipy.special.ndtri(pf_c)
        pdf = jnp.exp(-0.5 * beta * beta) / math.sqrt(2.0 * math.pi)
        # ∇β in unconstrained coordinates: dσ/dlogσ = σ.
        g_pf_u = {"mean": g_pf["mean"], "log_std": g_pf["std"] * p["std"], "design": g_pf["design"]}
        c = beta - beta_t
        # A step with no failing sample says only Pf ≲ 1/n: φ(β) at the floor is ~1e-29,
        # and −∇Pf/φ(β) would be ~1e20 or more; one such step poisons Adam's second
        # moment and freezes every parameter for thousands of steps. Such steps carry
        # no usable direction for β, so their β-gradient is set to zero.
        has_fail = pf > 0
        d_beta = jax.tree_util.tree_map(
            lambda gp, m: jnp.where(has_fail, -m * gp / pdf, jnp.zeros_like(gp)), g_pf_u, mask
        )
        f_grad = jax.tree_util.tree_map(lambda gf, m: gf * m, f_grad, mask)
        if multiplier == "ls":
            # Least-squares multiplier λ_LS = ⟨∇f, ∇β⟩/‖∇β‖² over the free
            # parameters (N&W eq. 18.21), smoothed by an exponential average.
            dots = [
                jnp.sum(a * b)
                for a, b in zip(
                    jax.tree_util.tree_leaves(f_grad),
                    jax.tree_util.tree_leaves(d_beta),
                    strict=True,
                )
            ]
            norms = [jnp.sum(b * b) for b in jax.tree_util.tree_leaves(d_beta)]
            lam_ls = jnp.maximum(sum(dots), 0.0) / jnp.maximum(sum(norms), jnp.finfo(dtype).tiny)
            lam_ls = jnp.where(jnp.isfinite(lam_ls), lam_ls, state.lam)
            lam = state.lam + multiplier_ema * (lam_ls - state.lam)
        else:
            lam = state.lam
        coef = jnp.maximum(0.0, lam - penalty * c)
        # ∇L = ∇f/f₀ − max(0, λ − ρc)·∇β.
        grad = jax.tree_util.tree_map(lambda gf, gb: gf - coef * gb, f_grad, d_beta)
        # optax mixes Python floats with int32 step counts: allow that under a
        # caller's strict promotion setting (our own arithmetic stays strict).
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grad, state.opt_state, state.params_u)
        updates = jax.tree_util.tree_map(lambda u, m: u * m, updates, mask)
        params_u = optax.apply_updates(state.params_u, updates)
        params_u = _project(params_u, lo_hi)
        if multiplier == "dual":
            lam = jnp.maximum(0.0, state.lam - eta * c)
        record = {
            "yield": 1.0 - pf,
            "pf_se": pf_se,
            "beta": beta,
            "cost": f_val * cost_scale,
            "multiplier": coef * cost_scale,
            "ess": ess,
            "tau": tau_k,
            "n_invalid": n_inv,
        }
        return _State(params_u, opt_state, lam, new_shift), record

    params_u0 = _to_unconstrained(params)
    with jax.numpy_dtype_promotion("standard"):
        opt_state0 = optimizer.init(params_u0)
    state0 = _State(params_u0, opt_state0, jnp.zeros((), dtype), jnp.zeros_like(mean))
    return state0, jax.jit(step), _to_constrained, lambda: traces[0]


def _parse_bounds(bounds, dim: int, dtype):
    if bounds is None:
        return {}
    out = {}
    for name, pair in bounds.items():
        if name not in ("mean", "std"):
            raise ValueError(f"bounds: unknown name {name!r}; allowed names are ('mean', 'std')")
        lo, hi = (np.broadcast_to(np.asarray(b, float), (dim,)) for b in pair)
        if np.any(lo > hi) or (name == "std" and np.any(lo <= 0)):
            raise ValueError(
                f"bounds[{name!r}] must satisfy lo <= hi (and lo > 0 for std), got {pair!r}"
            )
        key = "log_std" if name == "std" else "mean"
        tr = np.log if name == "std" else (lambda a: a)
        out[key] = (jnp.asarray(tr(lo), dtype), jnp.asarray(tr(hi), dtype))
    return out


def _project(params_u, lo_hi):
    """Projection onto box bounds after each update (projected gradient step)."""
    out = dict(params_u)
    for name, (lo, hi) in lo_hi.items():
        out[name] = jnp.clip(params_u[name], lo, hi)
    return out


def verify_yield(
    limit_state, params, *, key, n_verify: int, sampler: Callable | None = None, chunk: int = 2**18
) -> tuple[int, int]:
    """Crude Monte Carlo count of failures on fresh samples, streamed in chunks.

    Samples are drawn in blocks of 4096 rows, block b from ``fold_in(key, b)``, so
    the count does not depend on ``chunk``; memory is O(chunk·dim).

    Args:
      limit_state: ``g(x, design) -> f[n] | f[n, k]``.
      params: {"mean", "std", "design"}.
      key: a key the optimiser never saw.
      n_verify: number of samples, >= 1.
      sampler: ``sampler(key, params, n) -> f[n, dim]``; default :func:`gaussian_sampler`.
      chunk: samples per jitted call, rounded up to a multiple of 4096.

    Returns:
      ``(n_fail, n_verify)``.

    Raises:
      InvalidModelOutput: when the limit state returned NaN/inf for some samples.
    """
    if not isinstance(n_verify, int | np.integer) or n_verify < 1:
        raise ValueError(f"n_verify must be an int >= 1, got {n_verify!r}")
    sampler = gaussian_sampler if sampler is None else sampler
    blocks_per_chunk = max(1, -(-int(chunk) // _VERIFY_BLOCK))
    n_blocks = -(-int(n_verify) // _VERIFY_BLOCK)

    @jax.jit
    def count(p, first_block, n_total):
        blocks = first_block + jnp.arange(blocks_per_chunk)
        x = jax.vmap(lambda b: sampler(jax.random.fold_in(key, b), p, _VERIFY_BLOCK))(blocks)
        x = x.reshape(blocks_per_chunk * _VERIFY_BLOCK, x.shape[-1])
        g = _as_2d(limit_state(x, p["design"]))
        row = (blocks[:, None] * _VERIFY_BLOCK + jnp.arange(_VERIFY_BLOCK)[None, :]).reshape(-1)
        valid = row < n_total
        fail = jnp.any(g < 0, axis=1) & valid
        bad = ~jnp.all(jnp.isfinite(g), axis=1) & valid
        return jnp.sum(fail.astype(jnp.int32)), jnp.sum(bad.astype(jnp.int32))

    n_fail = n_bad = 0
    for first in range(0, n_blocks, blocks_per_chunk):
        f, b = count(params, first, n_verify)
        n_fail += int(f)
        n_bad += int(b)
    if n_bad:
        raise InvalidModelOutput(
            f"verification: limit_state returned NaN/inf for {n_bad} of {n_verify} samples"
        )
    return n_fail, int(n_verify)


def reach_yield(
    limit_state: Callable,
    params0: dict,
    *,
    cost: Callable,
    target_yield: float,
    key,
    free=None,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 300,
    n_per_step: int = 4096,
    n_verify: int = 1_000_000,
    verify_chunk: int = 2**18,
    verify_fn: Callable | None = None,
    sampler: Callable | None = None,
    method: str = "both",
    tau=None,
    tau_rel: float = 0.05,
    combine: str = "product",
    penalty: float = 10.0,
    multiplier: str = "ls",
    multiplier_ema: float = 0.2,
    dual_lr: float | None = None,
    importance: bool = True,
    defensive: float = 0.1,
    bounds: dict | None = None,
) -> YieldOptResult:
    """Minimise cost(params) subject to yield ≥ target_yield, then verify the yield.

    Args:
      limit_state: ``g(x: f[n, dim], design) -> f[n] | f[n, k]``, failure where any
        column < 0; row-wise, jnp-traceable.
      params0: {"mean": f[dim], "std": f[dim] (> 0), "design": pytree or None}.
      cost: ``cost(params) -> scalar``, differentiable, on constrained params.
      target_yield: Y_t in (0, 1); the constraint is β ≥ Φ⁻¹(Y_t).
      key: a ``jax.random`` key; split into an optimiser key (step s uses
        ``fold_in(key_opt, s)``) and a verification key the optimiser never sees.
      free: which parameters move: None (all), a name or list of names from
        ("mean", "std", "design"), or a dict name -> bool | bool mask f[dim] |
        list of indices (mean, std) | prefix pytree of bools (design), e.g.
        ``{"std": [0, 2], "design": {"gap": True}}``.
      optimizer: optax transformation acting on the unconstrained parameters
        (mean, log std, design); default Adam with a cosine-decayed step 0.05 → 0.001.
      steps: number of optimiser steps, >= 1.
      n_per_step: samples per step, >= 2 (a multiple of 8 unless method is "lr").
      n_verify: crude Monte Carlo samples for the verification, >= 1 (≈ 100/(1 − Y_t)
        for a useful interval).
      verify_chunk: samples per verification call (memory bound).
      verify_fn: optional ``verify_fn(key, params) -> (n_fail, n)`` replacing the
        built-in crude Monte Carlo.
      sampler: optional ``sampler(key, params, n) -> x: f[n, dim]`` replacing
        x = mean + std·u (e.g. hierarchical wafer/die/lane sampling). Gradients
        then come from the pathwise smoothed estimator through the sampler
        (reparameterisation) with no importance sampling, so keep (1 − Y_t)·n_per_step
        ≳ 10.
      method: estimator for the Gaussian case, see :func:`failure_grad`.
      tau, tau_rel, combine: smoothing, see :func:`failure_grad`.
      penalty: augmented-Lagrangian penalty ρ > 0 on the normalised cost scale.
      multiplier: "ls" (least-squares estimate, default) or "dual" (first-order
        update); see the module docstring.
      multiplier_ema: averaging weight of the "ls" estimate, in (0, 1].
      dual_lr: multiplier step η >= 0 for "dual" (default ρ/10).
      importance: carry a cross-entropy-adapted shifted proposal (Gaussian case).
      defensive: weight of the target in the defensive IS mixture, in [0, 1).
      bounds: optional {"mean": (lo, hi), "std": (lo, hi)} box bounds (scalars or
        f[dim]), enforced by projection after each update.

    Returns:
      A :class:`YieldOptResult`.

    Raises:
      ValueError: bad arguments (named, with the allowed range).
      InvalidModelOutput: NaN/inf from the limit state during optimisation or
        verification.
    """
    if not isinstance(n_verify, int | np.integer) or n_verify < 1:
        raise ValueError(f"n_verify must be an int >= 1, got {n_verify!r}")
    key_opt, key_verify = jax.random.split(key)
    state, step, unpack, trace_count = make_yield_step(
        limit_state,
        params0,
        cost=cost,
        target_yield=target_yield,
        key=key_opt,
        free=free,
        optimizer=optimizer,
        steps=steps,
        n_per_step=n_per_step,
        sampler=sampler,
        method=method,
        tau=tau,
        tau_rel=tau_rel,
        combine=combine,
        penalty=penalty,
        multiplier=multiplier,
        multiplier_ema=multiplier_ema,
        dual_lr=dual_lr,
        importance=importance,
        defensive=defensive,
        bounds=bounds,
    )
    records = []
    for s in range(steps):
        state, rec = step(state, jnp.asarray(s, jnp.int32))
        records.append(rec)
    history = {k: np.stack([np.asarray(r[k]) for r in jax.device_get(records)]) for k in records[0]}
    n_inv = history.pop("n_invalid")
    if np.any(n_inv > 0):
        first = int(np.argmax(n_inv > 0))
        raise InvalidModelOutput(
            f"limit_state returned NaN/inf for {int(n_inv.sum())} samples "
            f"during optimisation (first at step {first})"
        )
    params = unpack(state.params_u)
    if verify_fn is None:
        k_fail, n_tot = verify_yield(
            limit_state,
            params,
            key=key_verify,
            n_verify=int(n_verify),
            sampler=sampler,
            chunk=verify_chunk,
        )
    else:
        k_fail, n_tot = (int(v) for v in verify_fn(key_verify, params))
    lo, hi = clopper_pearson(k_fail, n_tot)
    return YieldOptResult(
        params=params,
        history=history,
        target_yield=float(target_yield),
        verified_yield=1.0 - k_fail / n_tot,
        verified_ci=(1.0 - hi, 1.0 - lo),
        n_verify=n_tot,
        n_verify_fail=k_fail,
        n_compiles=trace_count(),
    )
