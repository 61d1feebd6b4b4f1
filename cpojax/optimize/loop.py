"""Reach a target yield at least cost: the jitted step and the loop around it.

Each step (one jitted function, compiled once) estimates Pf and ∇Pf
(:mod:`cpojax.optimize.estimate`), turns them into the β-scale constraint and its
multiplier (:mod:`cpojax.optimize.constraint`), and takes one optax update of the
augmented Lagrangian in the unconstrained coordinates of the free parameters
(:mod:`cpojax.optimize.free`). Random numbers are common within a step (every
quantity of step s uses ``fold_in(key_opt, s)``) and fresh across steps.

The step follows blackjax's shape, ``state, info = step(state, s)``: the carried
:class:`YieldOptState` and the reported :class:`YieldOptInfo` are separate
NamedTuples. :func:`reach_yield` runs the steps, stacks the infos into a history
and verifies the answer by crude Monte Carlo on a key the optimiser never saw
(:mod:`cpojax.optimize.verify`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cpojax.estimators.gradients import pick_batches, validate_common
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import norm_ppf
from cpojax.levels import LevelYield
from cpojax.optimize.config import YieldOptConfig
from cpojax.optimize.constraint import (
    beta_gradient,
    dual_multiplier,
    lagrangian_grad,
    ls_multiplier,
    penalty_coefficient,
    reliability_index,
)
from cpojax.optimize.estimate import make_pf_and_grad
from cpojax.optimize.free import (
    NAMES,
    free_mask,
    grad_to_unconstrained,
    moves_design,
    parse_bounds,
    project,
    to_constrained,
    to_unconstrained,
)
from cpojax.optimize.verify import verified_level, verify_yield

__all__ = [
    "HISTORY_KEYS",
    "YieldOptInfo",
    "YieldOptResult",
    "YieldOptState",
    "YieldStep",
    "make_yield_step",
    "reach_yield",
]


class YieldOptState(NamedTuple):
    """Carried from step to step.

    Attributes:
      params_u: unconstrained parameters ``{"mean", "log_std", "design"}``.
      opt_state: the optax state.
      lam: multiplier λ of the normalised cost (0-d).
      shift: importance-sampling proposal shift in standard units, f[dim].
    """

    params_u: Any
    opt_state: Any
    lam: Any
    shift: Any


class YieldOptInfo(NamedTuple):
    """Reported by each step, evaluated before the step's update.

    Attributes:
      yield_: 1 − P̂f (``yield`` is a Python keyword; the history key is "yield").
      pf_se: standard error of P̂f.
      beta: −Φ⁻¹(P̂f).
      cost: cost of the parameters.
      multiplier: effective max(0, λ − ρc) in cost units per unit β.
      ess: effective sample size.
      tau: f[k], temperatures of the smoothed indicator.
      n_invalid: rows where the limit state returned NaN or inf.
    """

    yield_: Any
    pf_se: Any
    beta: Any
    cost: Any
    multiplier: Any
    ess: Any
    tau: Any
    n_invalid: Any


#: History keys of :class:`YieldOptResult`, one per field of :class:`YieldOptInfo`.
HISTORY_KEYS = ("yield", "pf_se", "beta", "cost", "multiplier", "ess", "tau", "n_invalid")


class YieldStep(NamedTuple):
    """What :func:`make_yield_step` returns (unpacks as a 4-tuple).

    Attributes:
      state: the initial :class:`YieldOptState`.
      step: jitted ``step(state, s) -> (state, info)`` for an int32 step index s.
      unpack: ``unpack(params_u) -> {"mean", "std", "design"}``.
      trace_count: ``trace_count() -> int``, traces of ``step`` so far (compilations).
    """

    state: YieldOptState
    step: Callable[[YieldOptState, Any], tuple[YieldOptState, YieldOptInfo]]
    unpack: Callable[[dict], dict]
    trace_count: Callable[[], int]


@dataclasses.dataclass(frozen=True)
class YieldOptResult:
    """Outcome of :func:`reach_yield`.

    Attributes:
      params: final parameters {"mean", "std", "design"} (last iterate).
      history: dict of NumPy arrays, one entry per step (:data:`HISTORY_KEYS` less
        "n_invalid"), evaluated before the step's update: "yield" (1 − P̂f),
        "pf_se", "beta" (−Φ⁻¹(P̂f)), "cost", "multiplier" (effective
        max(0, λ − ρc) in cost units per unit β), "ess", "tau" (f[steps, k]).
      target_yield: the requested yield.
      verification: the verified yield 1 − k/n from crude Monte Carlo on fresh
        samples, with its Clopper-Pearson 95 % interval.
      n_verify: number of verification samples.
      n_verify_fail: failing verification samples.
      n_compiles: number of times the step function was traced (1 when the loop
        never recompiled).
    """

    params: dict
    history: dict
    target_yield: float
    verification: LevelYield
    n_verify: int
    n_verify_fail: int
    n_compiles: int

    @property
    def reached(self) -> bool:
        """True when the lower 95 % bound of the verified yield reaches the target."""
        return self.verification.lo >= self.target_yield

    @property
    def verified(self) -> bool:
        """Same as :attr:`reached` (the earlier name)."""
        return self.reached

    @property
    def verified_yield(self) -> float:
        """``verification.value`` (the earlier name)."""
        return self.verification.value

    @property
    def verified_ci(self) -> tuple[float, float]:
        """``verification.ci`` (the earlier name)."""
        return self.verification.ci


def check_target_yield(target_yield: Any) -> float:
    """``target_yield`` as a float in (0, 1) (NumPy/JAX scalars accepted), else ValueError."""
    if isinstance(target_yield, np.ndarray | jax.Array) and target_yield.shape == ():
        target_yield = np.asarray(target_yield)[()]
    if (
        isinstance(target_yield, numbers.Real)
        and not isinstance(target_yield, bool | np.bool_)
        and 0.0 < float(target_yield) < 1.0
    ):
        return float(target_yield)
    raise ValueError(f"target_yield must be in (0, 1), got {target_yield!r}")


def _resolve_config(config: YieldOptConfig | None, overrides: dict) -> YieldOptConfig:
    if config is None:
        config = YieldOptConfig()
    elif not isinstance(config, YieldOptConfig):
        raise TypeError(f"config must be a YieldOptConfig or None, got {config!r}")
    return config.replace(**overrides) if overrides else config


def make_yield_step(
    limit_state: Callable,
    params0: dict,
    *,
    cost: Callable,
    target_yield: float,
    key,
    config: YieldOptConfig | None = None,
    free=None,
    **overrides: Any,
) -> YieldStep:
    """Build the jitted optimiser step of :func:`reach_yield` (for custom loops, benchmarks).

    Arguments are those of :func:`reach_yield` (``key`` is used as the optimiser key
    directly: step s draws from ``fold_in(key, s)``). ``overrides`` are fields of
    :class:`YieldOptConfig` applied to ``config`` (e.g. ``steps=100``).

    Returns:
      A :class:`YieldStep` ``(state0, step, unpack, trace_count)``: ``state, info =
      step(state, s)`` for an int32 step index s (jitted, compiled on the first
      call); ``unpack(state.params_u)`` gives the constrained params;
      ``trace_count()`` the number of traces so far.
    """
    cfg = _resolve_config(config, overrides)
    target_yield = check_target_yield(target_yield)
    if not isinstance(params0, dict) or set(params0) - set(NAMES) or "mean" not in params0:
        raise ValueError(
            f"params0 must be a dict with keys {NAMES} ('std' and 'design' "
            f"optional), got {params0!r}"
        )
    mean, std = validate_common(
        params0["mean"],
        params0.get("std", jnp.ones_like(jnp.asarray(params0["mean"]))),
        n=cfg.n_per_step,
        method=cfg.method,
        tau=cfg.tau,
        tau_rel=cfg.tau_rel,
        combine=cfg.combine,
        defensive=cfg.defensive,
    )
    dtype = mean.dtype
    # Strongly typed leaves: a weak-typed Python-float leaf would come back strong
    # from the first update and force a second compilation of the step.
    design = jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(leaf, jnp.asarray(leaf).dtype), params0.get("design")
    )
    params = {"mean": mean, "std": std, "design": design}
    mask = free_mask(free, params)
    if cfg.method == "lr" and moves_design(mask):
        raise ValueError(
            "method='lr' cannot differentiate design parameters inside the limit "
            "state; use method='both' or 'smooth', or fix the design in `free`"
        )
    n_batches = pick_batches(cfg.n_per_step, None) if cfg.method != "lr" else 2
    lo_hi = parse_bounds(cfg.bounds, mean.shape[0], dtype)

    optimizer = cfg.optimizer
    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(0.05, cfg.steps, alpha=0.02))
    beta_t = norm_ppf(target_yield)
    cost_scale = abs(float(cost(params)))
    if not math.isfinite(cost_scale):
        raise ValueError(f"cost(params0) must be finite, got {cost_scale}")
    cost_scale = cost_scale if cost_scale > 0 else 1.0
    eta = cfg.eta()
    penalty = cfg.penalty
    traces = [0]
    pf_and_grad = make_pf_and_grad(limit_state, cfg, dtype=dtype, n_batches=n_batches)

    def step(state: YieldOptState, s) -> tuple[YieldOptState, YieldOptInfo]:
        traces[0] += 1  # runs at trace time only: counts compilations
        k = jax.random.fold_in(key, s)
        p = to_constrained(state.params_u)

        def norm_cost(pu):
            return cost(to_constrained(pu)) / cost_scale

        f_val, f_grad = jax.value_and_grad(norm_cost)(state.params_u)
        est = pf_and_grad(p, k, state.shift)
        beta, pdf = reliability_index(est.pf, dtype)
        c = beta - beta_t
        d_beta = beta_gradient(grad_to_unconstrained(est.grad, p), est.pf, pdf, mask)
        f_grad = jax.tree_util.tree_map(lambda gf, m: gf * m, f_grad, mask)
        if cfg.multiplier == "ls":
            lam = ls_multiplier(f_grad, d_beta, state.lam, cfg.multiplier_ema, dtype)
        else:
            lam = state.lam
        coef = penalty_coefficient(lam, c, penalty)
        grad = lagrangian_grad(f_grad, d_beta, coef)
        # optax mixes Python floats with int32 step counts: allow that under a
        # caller's strict promotion setting (our own arithmetic stays strict).
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grad, state.opt_state, state.params_u)
        updates = jax.tree_util.tree_map(lambda u, m: u * m, updates, mask)
        params_u = project(optax.apply_updates(state.params_u, updates), lo_hi)
        if cfg.multiplier == "dual":
            lam = dual_multiplier(state.lam, c, eta)
        info = YieldOptInfo(
            yield_=1.0 - est.pf,
            pf_se=est.pf_se,
            beta=beta,
            cost=f_val * cost_scale,
            multiplier=coef * cost_scale,
            ess=est.ess,
            tau=est.tau,
            n_invalid=est.n_invalid,
        )
        return YieldOptState(params_u, opt_state, lam, est.shift), info

    params_u0 = to_unconstrained(params)
    with jax.numpy_dtype_promotion("standard"):
        opt_state0 = optimizer.init(params_u0)
    state0 = YieldOptState(params_u0, opt_state0, jnp.zeros((), dtype), jnp.zeros_like(mean))
    return YieldStep(state0, jax.jit(step), to_constrained, lambda: traces[0])


def reach_yield(
    limit_state: Callable,
    params0: dict,
    *,
    cost: Callable,
    target_yield: float,
    key,
    config: YieldOptConfig | None = None,
    free=None,
    n_verify: int = 1_000_000,
    verify_fn: Callable | None = None,
    **overrides: Any,
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
      config: a :class:`YieldOptConfig` (optimizer, steps, samples per step,
        estimator, smoothing, constraint, importance sampling, bounds); None for
        the defaults.
      free: which parameters move: None (all), a name or list of names from
        ("mean", "std", "design"), or a dict name -> bool | bool mask f[dim] |
        list of indices (mean, std) | prefix pytree of bools (design), e.g.
        ``{"std": [0, 2], "design": {"gap": True}}``.
      n_verify: crude Monte Carlo samples for the verification, >= 1 (≈ 100/(1 − Y_t)
        for a useful interval).
      verify_fn: optional ``verify_fn(key, params) -> (n_fail, n)`` replacing the
        built-in crude Monte Carlo.
      **overrides: fields of :class:`YieldOptConfig` replacing those of ``config``
        (``steps=250, multiplier="dual"``); an unknown name is a TypeError.

    Returns:
      A :class:`YieldOptResult`.

    Raises:
      ValueError: bad arguments (named, with the allowed range).
      TypeError: an unknown setting in ``overrides``, or a config of another type.
      InvalidModelOutput: NaN/inf from the limit state during optimisation or
        verification.
    """
    if (
        isinstance(n_verify, bool)
        or not isinstance(n_verify, int | np.integer)
        or not 1 <= n_verify < 2**32
    ):
        raise ValueError(f"n_verify must be an int in [1, 2**32), got {n_verify!r}")
    cfg = _resolve_config(config, overrides)
    key_opt, key_verify = jax.random.split(key)
    state, step, unpack, trace_count = make_yield_step(
        limit_state,
        params0,
        cost=cost,
        target_yield=target_yield,
        key=key_opt,
        config=cfg,
        free=free,
    )
    infos = []
    for s in range(cfg.steps):
        state, info = step(state, jnp.asarray(s, jnp.int32))
        infos.append(info)
    infos = jax.device_get(infos)
    history = {
        name: np.stack([np.asarray(r[i]) for r in infos]) for i, name in enumerate(HISTORY_KEYS)
    }
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
            sampler=cfg.sampler,
            chunk=cfg.verify_chunk,
        )
    else:
        k_fail, n_tot = (int(v) for v in verify_fn(key_verify, params))
    return YieldOptResult(
        params=params,
        history=history,
        target_yield=check_target_yield(target_yield),
        verification=verified_level(k_fail, n_tot),
        n_verify=n_tot,
        n_verify_fail=k_fail,
        n_compiles=trace_count(),
    )
