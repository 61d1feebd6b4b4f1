"""Objective "cost-per-good-switch" of :func:`cpojax.process_opt.optimize_process`.

Minimises the capital cost per good CPO switch (:func:`cpojax.cost.cpo_capex_usd`) over
the free keys with the process-cost change of the free items added to every engine
built; the gradient is dC/dθ = ∂C/∂θ − ∂C/∂y · ∂Pf/∂θ with ∂Pf/∂θ the smoothed pathwise
estimate of :func:`cpojax.estimators.gradients.failure_grad_core`, and the result is
verified before and after with :func:`cpojax.yields.estimate_yield` on an independent
seed (see the module docstring of :mod:`cpojax.process_opt`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cpojax.cost import (
    cost_engine_yield,
    cpo_capex_usd,
    energy_usd,
    engine_power_w,
    functional_factor,
    item_cost,
)
from cpojax.estimators.gradients import failure_grad_core, pick_batches
from cpojax.estimators.result import InvalidModelOutput
from cpojax.process_result import ProcessOptResult, cost_rows
from cpojax.scenario import Scenario
from cpojax.validate import resolve_key
from cpojax.yields import estimate_yield

__all__ = ["optimize_switch_cost", "switch_point"]


def switch_point(sc: Scenario, res, power) -> dict[str, Any]:
    """Verified cost per good switch of `sc` at the engine yield of `res` (a YieldResult)."""
    y, _ = cost_engine_yield(res)
    n = sc.system.engines_per_switch
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        usd = float(cpo_capex_usd(engine_yield=y.value, cost=sc.cost, engines_per_switch=n))
        ci = [
            float(cpo_capex_usd(engine_yield=y.hi, cost=sc.cost, engines_per_switch=n)),
            float(cpo_capex_usd(engine_yield=y.lo, cost=sc.cost, engines_per_switch=n)),
        ]
    energy = float(energy_usd(watts=n * power.mean_w, cost=sc.cost))
    return {
        "engine_yield": y.to_dict(),
        "engine_usd": sc.cost.engine_usd,
        "usd": usd,
        "ci_usd": ci,
        "tco_usd": usd + energy,
        "tco_ci_usd": [ci[0] + energy, ci[1] + energy],
        "engine_power_w": power.mean_w,
    }


def optimize_switch_cost(
    scenario: Scenario,
    *,
    free: list[str],
    table: dict[str, tuple[str, float]],
    v0: dict[str, float],
    to_values,
    limit_state,
    dim: int,
    seed: int,
    steps: int,
    n_per_step: int,
    n_verify: int,
    cosine_alpha: float,
    learning_rate: float,
) -> ProcessOptResult:
    """Minimise the capital cost per good switch over the free keys (see the module
    docstring), then verify before and after on an independent seed."""
    n_sw = scenario.system.engines_per_switch
    verify_seed = (seed + 1_000_003) % 2**64
    # The start on the verification engines: its cost, and the functional factor the
    # yield engine reports (held fixed while the parametric yield moves).
    res0 = estimate_yield(scenario, seed=verify_seed, n_engines=n_verify)
    fun = functional_factor(res0)
    f_fun = 1.0 if fun is None else fun.value
    n_batches = pick_batches(n_per_step, None)
    f32 = jnp.float32
    prices = jax.tree_util.tree_map(lambda x: jnp.asarray(x, f32), scenario.cost)
    items0 = sum(item_cost(table[k][0], table[k][1], v0[k], v0[k]) for k in free)

    def process_usd(design):
        """Process cost change of the free items, US$ per engine."""
        vals = to_values(design)
        return sum(item_cost(table[k][0], table[k][1], vals[k], v0[k]) for k in free) - items0

    def switch_usd(design, y_par):
        return cpo_capex_usd(
            engine_yield=y_par * f_fun,
            cost=prices,
            engines_per_switch=n_sw,
            engine_extra_usd=process_usd(design),
        )

    mean0, std0 = jnp.zeros(dim, f32), jnp.ones(dim, f32)
    zero = jnp.zeros((), f32)
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=cosine_alpha))
    key, _ = resolve_key(None, seed)
    traces = [0]

    def step(state, s):
        traces[0] += 1
        design, opt_state = state
        pf, grads, info = failure_grad_core(
            limit_state,
            mean0,
            std0,
            design,
            jax.random.fold_in(key, s),
            mean0,  # no importance-sampling shift
            jnp.ones((), f32),
            jnp.asarray(0.05, f32),
            zero,
            n=n_per_step,
            method="smooth",
            auto_tau=True,
            combine="product",
            n_batches=n_batches,
        )
        y_par = 1.0 - pf
        usd, (g_design, g_y) = jax.value_and_grad(switch_usd, argnums=(0, 1))(design, y_par)
        # dC/dθ = ∂C/∂θ + ∂C/∂y · dy/dθ, dy/dθ = −∂Pf/∂θ (smoothed pathwise)
        grad = jax.tree_util.tree_map(lambda a, b: a - g_y * b, g_design, grads["design"])
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts and floats
            updates, opt_state = optimizer.update(grad, opt_state, design)
        design = optax.apply_updates(design, updates)
        out = (y_par * f_fun, info.pf_se, usd, process_usd(state[0]), info.n_invalid)
        return (design, opt_state), out

    design0 = {
        k: jnp.asarray(math.log(v0[k]) if table[k][0] == "inverse" else 0.0, f32) for k in free
    }
    with jax.numpy_dtype_promotion("standard"):
        state = (design0, optimizer.init(design0))
    step = jax.jit(step)
    outs = []
    for s in range(steps):
        state, out = step(state, jnp.asarray(s, jnp.int32))
        outs.append(out)
    outs = jax.device_get(outs)
    names = ("yield", "pf_se", "cost_per_good_switch", "process_usd", "n_invalid")
    hist = {k: np.asarray([o[i] for o in outs]) for i, k in enumerate(names)}
    n_inv = hist.pop("n_invalid")
    if np.any(n_inv > 0):
        raise InvalidModelOutput(
            f"limit_state returned NaN/inf for {int(n_inv.sum())} samples during "
            f"optimisation (first at step {int(np.argmax(n_inv > 0))})"
        )
    design = state[0]
    after = {k: float(v) for k, v in to_values(design).items()}
    delta = sum(item_cost(table[k][0], table[k][1], after[k], v0[k]) for k in free) - items0
    engine_usd = max(0.0, scenario.cost.engine_usd + float(delta))
    sc_opt = scenario.replace({**after, "cost.engine_usd": engine_usd})
    res1 = estimate_yield(sc_opt, seed=verify_seed, n_engines=n_verify)
    before = switch_point(scenario, res0, engine_power_w(scenario, seed=verify_seed))
    verified = switch_point(sc_opt, res1, engine_power_w(sc_opt, seed=verify_seed))
    rows = cost_rows(free, table, v0, after)
    y1, what = cost_engine_yield(res1)
    switch_cost = {
        "failure_policy": scenario.cost.failure_policy,
        "engines_per_switch": n_sw,
        "yield_entering_cost": what,
        "functional_factor": None if fun is None else fun.to_dict(),
        "before": before,
        "after": verified,
        "process_usd_per_engine": float(delta),
        "lowered": verified["ci_usd"][1] < before["ci_usd"][0],
    }
    return ProcessOptResult(
        level="engine",
        target_yield=math.nan,
        scenario=sc_opt,
        rows=rows,
        cost_before=sum(r["cost_before"] for r in rows),
        cost_after=sum(r["cost_after"] for r in rows),
        verification=y1,
        n_verify=res1.n_engines,
        history={k: v.tolist() for k, v in hist.items()},
        n_compiles=traces[0],
        objective="cost-per-good-switch",
        switch_cost=switch_cost,
    )
