"""Process targets that reach a target yield at least cost (photonic layer of optimize.py).

The free scenario values (spreads and design values, by dotted key) are the
"design" pytree of :func:`cpojax.optimize.reach_yield`; the random inputs are the
standard normals u of one lane or one engine (:mod:`cpojax.variation`), so
spreads act through dev = σ·u and get pathwise gradients. Spreads move as log σ
(they stay positive); design values move linearly.

Cost model: :mod:`cpojax.cost` (process cost items, US$ per engine:
``inverse`` c·σ₀/σ for spreads, ``linear`` c·(v − v₀) for design values,
``free``), defaults in :data:`cpojax.cost.DEFAULT_COSTS`, replaced or extended by
a fab's own numbers through ``costs=``.

The constraint is written on the β = Φ⁻¹(yield) scale (reach_yield), so engine
yield 0.99 and switch yield 0.9 (engine 0.99854) are equally well conditioned.
The answer is verified with streamed crude Monte Carlo (:func:`cpojax.yields.estimate_yield`)
on an independent seed the optimizer never saw.

Objectives: ``objective="yield"`` (default) reaches ``target_yield`` at least process
cost; ``objective="cost-per-good-switch"`` minimises the capital cost per good CPO
switch (:func:`cpojax.cost.cpo_capex_usd`: known-good-engine test, attach, switch
test, scrap or rework, with the scenario's ``[cost]`` section) with the process cost
change of the free keys added to every engine built. Its gradient is
dC/dθ = ∂C/∂θ − ∂C/∂y · ∂Pf/∂θ, with ∂Pf/∂θ the smoothed pathwise estimate of
:func:`cpojax.estimators.gradients.failure_grad_core` and y = 1 − P̂f the engine
yield of the step (times the functional factor the yield engine reports, held
fixed); Adam on the same coordinates as the yield objective. The verification runs
:func:`cpojax.yields.estimate_yield` on an independent seed before and after and
maps each engine-yield interval through the (monotone) cost.

Result names: ``verification`` is the verified yield at ``level`` as a
:class:`~cpojax.levels.LevelYield` ``(value, lo, hi)`` and ``reached`` says whether
its lower 95 % bound reaches the target; the JSON keys (``verified_yield``,
``verified_ci``, ``verified``, ``n_verify``) are those of earlier versions.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from cpojax.cost import (
    DEFAULT_COSTS,
    check_cost_table,
    item_cost,
)
from cpojax.estimators.streaming import check_int
from cpojax.levels import LevelYield, switch_from_engine
from cpojax.model import parametric_limit_state
from cpojax.optimize import YieldOptConfig, check_target_yield, reach_yield
from cpojax.process_result import ProcessOptResult, cost_rows
from cpojax.process_switch import optimize_switch_cost
from cpojax.scenario import Scenario, ScenarioError, get_values, value_range
from cpojax.validate import check_scenario, resolve_key, resolve_seed
from cpojax.yields import estimate_yield

__all__ = ["DEFAULT_COSTS", "DEFAULT_FREE", "OBJECTIVES", "ProcessOptResult", "optimize_process"]

#: What the optimizer minimises: process cost at a target yield, or cost per good switch.
OBJECTIVES: tuple[str, ...] = ("yield", "cost-per-good-switch")

#: Default ``aim_margin`` of objective "yield": aim 20 % below the allowed failure
#: probability, so the verification's lower bound (interval ≈ ±10 % of the failure rate)
#: clears the target (docs/model.md#optimizer).
DEFAULT_AIM_MARGIN = 0.2

#: The curated free set: the spreads and design values that set the calibrated default's
#: yield (optical margin: fiber placement and array roll, TX penalty; extinction ratio:
#: ring coupling; thermal red edge: heater range and resistance). The ring-resonance
#: spreads are left out: with the heater sized for a full FSR plus the spec window they
#: no longer move yield, so the optimizer would relax them to their bound (20 nm) — a
#: "saving" no fab can take. Free them explicitly (``free=``) to see that.
DEFAULT_FREE: tuple[str, ...] = (
    "spread.fiber_offset_um.die",
    "spread.fiber_offset_um.lane",
    "spread.fiber_array_roll_mrad.die",
    "spread.ring_coupling_ln.die",
    "spread.ring_coupling_ln.lane",
    "spread.heater_resistance_ln.die",
    "spread.tx_penalty_db.lane",
    "design.ring.heater_max_mw",
    "design.ring.bias_nm",
    "design.ring.drive_vpp",
)


def _real(name: str, value: Any, lo: float, hi: float, text: str) -> float:
    """A float in [lo, hi] (Python/NumPy scalars accepted), else ValueError naming it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        raise ValueError(f"{name} must be {text}, got {value!r}")
    return value if type(value) in (int, float) else float(value)


def _free_keys(scenario: Scenario, free: Sequence[str] | str | None) -> list[str]:
    """The free keys, each a known scenario value, no duplicates."""
    if free is None:
        return list(DEFAULT_FREE)
    keys = [free] if isinstance(free, str) else list(free)
    if not keys:
        raise ValueError("free must name at least one scenario key")
    for k in keys:
        if not isinstance(k, str):
            raise ValueError(f"free must list dotted scenario keys (str), got {k!r}")
        value = scenario.get(k)  # unknown key → ScenarioError with suggestions
        if dataclasses.is_dataclass(value):
            raise ScenarioError(f"{k!r} is a section, not a value: name one of its keys")
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError(f"free names {', '.join(dups)} more than once: name each key once")
    return keys


def _cost_table(free: list[str], costs) -> dict[str, tuple[str, float]]:
    if costs is not None and not isinstance(costs, Mapping):
        raise ValueError(f"costs must be a mapping key -> (kind, coefficient), got {costs!r}")
    table = check_cost_table({**DEFAULT_COSTS, **(costs or {})})
    missing = [k for k in free if k not in table]
    if missing:
        k = missing[0]
        raise ScenarioError(
            f"no cost model for {', '.join(missing)}. Keys with a cost model: "
            f"{', '.join(sorted(table))}. Add one in Python with "
            f"costs={{'{k}': (kind, c)}}, kind 'inverse' (c·v0/v), 'linear' (c·(v − v0)) or "
            f"'free' (see cpojax.cost); the command line has no option for cost models yet"
        )
    return table


def optimize_process(
    scenario: Scenario,
    *,
    target_yield: float | None = None,
    objective: str = "yield",
    level: str = "engine",
    free: Sequence[str] | None = None,
    costs: Mapping[str, tuple[str, float]] | None = None,
    seed: int = 0,
    steps: int = 200,
    n_per_step: int | None = None,
    n_verify: int | None = None,
    aim_margin: float | None = None,
    cosine_alpha: float = 0.3,
    learning_rate: float = 0.1,
    importance: bool | None = None,
) -> ProcessOptResult:
    """Find process targets reaching `target_yield` at least cost (or, with
    ``objective="cost-per-good-switch"``, at least cost per good switch), then verify them.

    Args:
      scenario: starting scenario.
      target_yield: in (0, 1), at `level` (objective "yield" only, where it is required).
      objective: "yield" (default: reach ``target_yield`` at least process cost) or
        "cost-per-good-switch" (minimise the capital cost per good CPO switch of
        :func:`cpojax.cost.cpo_capex_usd` with the scenario's ``[cost]`` section, the
        process cost change of the free keys added to ``cost.engine_usd``; the
        optimized scenario carries that engine cost; engine level only; defaults
        ``n_per_step`` 2048, ``n_verify`` 131 072 engines; no importance sampling).
      level: "lane", "engine" or "switch" (switch = engine_yield^engines_per_switch).
      free: dotted keys that may move (default :data:`DEFAULT_FREE`), each once;
        each needs a cost model.
      costs: overrides/additions to :data:`cpojax.cost.DEFAULT_COSTS`, key →
        (kind, coefficient), kind one of :data:`cpojax.cost.COST_KINDS`.
      seed: optimizer seed, an integer in [0, 2**64); verification uses an
        independent stream.
      steps, n_per_step: optimizer steps and samples (lanes or engines) per step;
        default: enough to expect ~10 failures per step at the target (at least 1024,
        at most 16384, a multiple of 8).
      n_verify: lanes or engines for the crude Monte Carlo verification; default
        enough for ~400 expected failures at the target (×5 lanes for the lane
        clustering; at least 65 536, at most 2 097 152), so the verified interval is
        about ±10 % of the failure rate.
      aim_margin: the optimizer aims at a failure probability this fraction below
        the allowed one. Default (None): 0.2 for objective "yield" — the verification
        is sized for an interval of about ±10 % of the failure rate, so an optimum
        exactly at the target would be verified ("reached": lower bound ≥ target)
        only about half the time; 20 % below it clears the bound with room for the
        optimizer's own noise. 0 for "cost-per-good-switch" (no target).
      cosine_alpha: final learning rate as a fraction of ``learning_rate``.
      importance: shifted-proposal importance sampling inside the optimizer; default
        only when (1 − per-level target)·n_per_step < 5. A single Gaussian shift
        cannot cover the union of eight lanes' failure regions, so at moderate
        targets plain sampling (unbiased, noisier) is the honest choice.

    Numbers may be Python or NumPy scalars.

    Returns:
      :class:`ProcessOptResult` (its ``scenario`` is validated and saveable).

    Raises:
      ScenarioError: a free key that is not a scenario value (with the closest
        valid keys), a structural key, or a free key without a cost model.
      ValueError: an argument out of range (named), or a key listed twice in ``free``.
      TypeError: ``scenario`` is not a Scenario, or ``seed`` not an integer.
    """
    scenario = check_scenario(scenario)
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ValueError(f"objective must be 'yield' or 'cost-per-good-switch', got {objective!r}")
    by_cost = objective != "yield"
    if not by_cost:
        target_yield = check_target_yield(target_yield)
    elif target_yield is not None:
        raise ValueError(
            "target_yield applies to objective 'yield' only: cost-per-good-switch finds the "
            f"engine yield that minimises the cost (got target_yield={target_yield!r})"
        )
    if level not in ("lane", "engine", "switch"):
        raise ValueError(f"level must be lane, engine or switch, got {level!r}")
    if by_cost and level != "engine":
        raise ValueError(
            f"level applies to objective 'yield' only (cost per good switch is computed from "
            f"the engine yield), got level={level!r}"
        )
    if level != "lane" and scenario.system.spare_lanes:
        raise ValueError("optimize supports system.spare_lanes = 0 only")
    steps = check_int("steps", steps, 1)
    seed = resolve_seed(seed)
    if n_per_step is not None:
        n_per_step = check_int("n_per_step", n_per_step, 2)
    if n_verify is not None:
        n_verify = check_int("n_verify", n_verify, 1)
    if aim_margin is None:
        aim_margin = 0.0 if by_cost else DEFAULT_AIM_MARGIN
    aim_margin = _real("aim_margin", aim_margin, 0.0, 1.0, "in [0, 1)")
    if aim_margin == 1.0:
        raise ValueError(f"aim_margin must be in [0, 1), got {aim_margin!r}")
    cosine_alpha = _real("cosine_alpha", cosine_alpha, 0.0, 1.0, "in [0, 1]")
    learning_rate = _real("learning_rate", learning_rate, 0.0, math.inf, "> 0")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if importance is not None and not isinstance(importance, bool):
        raise ValueError(f"importance must be True, False or None, got {importance!r}")
    if by_cost and (aim_margin or importance):
        raise ValueError("aim_margin and importance apply to objective 'yield' only")
    free = _free_keys(scenario, free)
    table = _cost_table(free, costs)
    v0 = {k: float(v) for k, v in get_values(scenario, free).items()}
    is_log = {k: table[k][0] == "inverse" for k in free}
    for k in free:
        if is_log[k] and not v0[k] > 0:
            raise ValueError(f"{k} = {v0[k]}: a spread to optimise must start > 0")
    if not by_cost:
        per_level_target = (
            target_yield ** (1.0 / scenario.system.engines_per_switch)
            if level == "switch"
            else target_yield
        )
        if n_verify is None:
            # samples for ~400 expected failures; lanes cluster in engines (design effect
            # ≈ 5 on the default), so a lane-level verification needs ~5× more lanes
            need = 400.0 / max(1.0 - per_level_target, 1e-12) * (5.0 if level == "lane" else 1.0)
            n_verify = int(min(2**21, max(65_536, 4096 * math.ceil(need / 4096))))
        aim_target = 1.0 - (1.0 - per_level_target) * (1.0 - aim_margin)
        if n_per_step is None:
            want = 10.0 / max(1.0 - per_level_target, 1e-12)
            n_per_step = int(min(16384, max(1024, 8 * math.ceil(want / 8))))
        if importance is None:
            importance = (1.0 - per_level_target) * n_per_step < 5.0
    g_level, dim = parametric_limit_state(scenario, "lane" if level == "lane" else "engine")

    # Optimizer coordinates: log σ for spreads; (v − v0)/s for design values with the
    # scale s = 10 % of |v0| (1 if v0 = 0), so that Adam's per-coordinate steps are
    # comparable across units (mW, nm, V).
    scale = {k: (0.1 * abs(v0[k]) if v0[k] != 0 else 1.0) for k in free}

    # Design values are clipped into their allowed range (zero gradient outside), so a
    # long run cannot end on a value the scenario would reject.
    rng_ = {k: value_range(k) for k in free}

    def to_values(design):
        return {
            k: (
                jnp.minimum(jnp.exp(design[k]), rng_[k][1])
                if is_log[k]
                else jnp.clip(v0[k] + scale[k] * design[k], rng_[k][0], rng_[k][1])
            )
            for k in free
        }

    def limit_state(x, design):
        return g_level(x, to_values(design))

    if by_cost:
        return optimize_switch_cost(
            scenario,
            free=free,
            table=table,
            v0=v0,
            to_values=to_values,
            limit_state=limit_state,
            dim=dim,
            seed=seed,
            steps=steps,
            n_per_step=2048 if n_per_step is None else n_per_step,
            n_verify=131_072 if n_verify is None else n_verify,
            cosine_alpha=cosine_alpha,
            learning_rate=learning_rate,
        )

    def cost(params):
        vals = to_values(params["design"])
        return sum(item_cost(table[k][0], table[k][1], vals[k], v0[k]) for k in free) + 1.0

    design0 = {k: jnp.asarray(math.log(v0[k]) if is_log[k] else 0.0, jnp.float32) for k in free}
    params0 = {
        "mean": jnp.zeros(dim, jnp.float32),
        "std": jnp.ones(dim, jnp.float32),
        "design": design0,
    }
    key, _ = resolve_key(None, seed)  # jax.random.key(seed) for seeds < 2**32

    def final_scenario(design) -> Scenario:
        vals = {k: float(v) for k, v in to_values(design).items()}
        return scenario.replace(vals)

    verification = {}

    def verify_fn(_key, params):
        sc = final_scenario(params["design"])
        res = estimate_yield(
            sc,
            seed=(seed + 1_000_003) % 2**64,
            n_engines=max(4096, n_verify // (8 if level == "lane" else 1)),
        )
        verification["result"] = res
        if level == "lane":
            # Lanes of one engine share its variation: an exact binomial interval on
            # n_lanes would be too narrow, so pass the design-effect-adjusted counts.
            deff = res.lane_design_effect
            return round(int(res.counts["lane_fail"]) / deff), max(1, round(res.n_lanes / deff))
        return int(res.counts["engine_fail"]), int(res.n_engines)

    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=cosine_alpha)
    res = reach_yield(
        limit_state,
        params0,
        cost=cost,
        target_yield=aim_target,
        key=key,
        config=YieldOptConfig(
            optimizer=optax.adam(schedule),
            steps=steps,
            n_per_step=n_per_step,
            importance=importance,
        ),
        free={"design": True},
        n_verify=n_verify,
        verify_fn=verify_fn,
    )
    sc_opt = final_scenario(res.params["design"])
    after = {k: float(v) for k, v in to_values(res.params["design"]).items()}
    rows = cost_rows(free, table, v0, after)
    # Report the verification's own estimate and interval (for lanes: the unrounded
    # yield with the clustering-corrected interval of estimate_yield).
    ver = verification["result"]
    if level == "switch":
        verified = switch_from_engine(ver.engine, scenario.system.engines_per_switch)
    else:
        verified = ver.lane if level == "lane" else ver.engine
    hist = {k: np.asarray(v).tolist() for k, v in res.history.items()}
    return ProcessOptResult(
        level=level,
        target_yield=target_yield,
        scenario=sc_opt,
        rows=rows,
        cost_before=sum(r["cost_before"] for r in rows),
        cost_after=sum(r["cost_after"] for r in rows),
        verification=LevelYield(*verified),
        n_verify=ver.n_lanes if level == "lane" else ver.n_engines,
        history=hist,
        n_compiles=res.n_compiles,
    )
