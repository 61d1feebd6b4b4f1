"""Process targets that reach a target yield at least cost (photonic layer of optimize.py).

The free scenario values (spreads and design values, by dotted key) are the
"design" pytree of :func:`cpojax.optimize.reach_yield`; the random inputs are the
standard normals u of one lane or one engine (:mod:`cpojax.variation`), so
spreads act through dev = σ·u and get pathwise gradients. Spreads move as log σ
(they stay positive); design values move linearly.

Cost model (units: US$ per engine, rough engineering estimates [E], meant to be
replaced by a fab's own numbers through ``costs=``):

* a spread costs ``c·σ₀/σ``: ``c`` is what holding today's spread σ₀ costs, and
  halving the spread doubles it (tighter lithography, active instead of passive
  fiber alignment, wavelength binning of lasers);
* a design value costs ``c·(v − v₀)`` per unit above the default (more heater
  power needs bigger drivers and more energy; more laser current, more ELS power);
* some values are free (``c = 0``): the ring's design bias is a mask offset.

The constraint is written on the β = Φ⁻¹(yield) scale (reach_yield), so engine
yield 0.99 and switch yield 0.9 (engine 0.99854) are equally well conditioned.
The answer is verified with streamed crude Monte Carlo (:func:`cpojax.yields.estimate_yield`)
on an independent seed the optimizer never saw.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cpojax.levels import switch_from_engine
from cpojax.model import parametric_limit_state
from cpojax.optimize import reach_yield
from cpojax.params import get_values, value_range
from cpojax.scenario import Scenario, ScenarioError

__all__ = ["DEFAULT_COSTS", "DEFAULT_FREE", "ProcessOptResult", "optimize_process"]

# key: (kind, coefficient). kind "inverse": c·σ0/σ; "linear": c·(v − v0) per unit; "free".
DEFAULT_COSTS: dict[str, tuple[str, float]] = {
    "spread.ring_resonance_nm.wafer": ("inverse", 4.0),
    "spread.ring_resonance_nm.die": ("inverse", 4.0),
    "spread.ring_resonance_nm.lane": ("inverse", 2.0),
    "spread.fiber_offset_um.die": ("inverse", 3.0),
    "spread.fiber_offset_um.lane": ("inverse", 3.0),
    "spread.laser_wavelength_nm.wafer": ("inverse", 1.0),
    "spread.laser_wavelength_nm.lane": ("inverse", 1.0),
    "spread.laser_power_db.lane": ("inverse", 1.0),
    "spread.coupler_loss_db.lane": ("inverse", 1.0),
    "spread.ring_coupling_ln.die": ("inverse", 1.0),
    "spread.ring_coupling_ln.lane": ("inverse", 1.0),
    "spread.mod_efficiency_ln.lane": ("inverse", 1.0),
    "spread.heater_efficiency_ln.die": ("inverse", 1.0),
    "spread.heater_efficiency_ln.lane": ("inverse", 1.0),
    "design.ring.heater_max_mw": ("linear", 0.08),
    "design.laser.current_ma": ("linear", 0.02),
    "design.ring.drive_vpp": ("linear", 2.0),
    "design.ring.bias_nm": ("free", 0.0),
}

DEFAULT_FREE: tuple[str, ...] = (
    "spread.ring_resonance_nm.wafer",
    "spread.ring_resonance_nm.die",
    "spread.ring_resonance_nm.lane",
    "spread.laser_wavelength_nm.lane",
    "spread.fiber_offset_um.die",
    "spread.fiber_offset_um.lane",
    "spread.ring_coupling_ln.die",
    "spread.ring_coupling_ln.lane",
    "design.ring.heater_max_mw",
    "design.ring.bias_nm",
    "design.ring.drive_vpp",
)


@dataclasses.dataclass(frozen=True)
class ProcessOptResult:
    """Before/after of every free value, costs, verified yield and the trajectory."""

    level: str
    target_yield: float
    scenario: Scenario
    rows: list[dict[str, Any]]  # key, before, after, cost_before, cost_after
    cost_before: float
    cost_after: float
    verified_yield: float
    verified_ci: tuple[float, float]
    n_verify: int
    history: dict[str, list]
    n_compiles: int

    @property
    def verified(self) -> bool:
        return self.verified_ci[0] >= self.target_yield

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "target_yield": self.target_yield,
            "rows": self.rows,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "verified_yield": self.verified_yield,
            "verified_ci": list(self.verified_ci),
            "verified": self.verified,
            "n_verify": self.n_verify,
            "n_compiles": self.n_compiles,
            "history": self.history,
        }


def _item_cost(kind: str, c: float, v, v0: float):
    if kind == "inverse":
        return c * v0 / v
    if kind == "linear":
        return c * (v - v0)
    return 0.0 * v


def optimize_process(
    scenario: Scenario,
    *,
    target_yield: float,
    level: str = "engine",
    free: Sequence[str] | None = None,
    costs: Mapping[str, tuple[str, float]] | None = None,
    seed: int = 0,
    steps: int = 200,
    n_per_step: int | None = None,
    n_verify: int | None = None,
    aim_margin: float = 0.0,
    cosine_alpha: float = 0.3,
    learning_rate: float = 0.1,
    importance: bool | None = None,
) -> ProcessOptResult:
    """Find process targets reaching `target_yield` at least cost, then verify them.

    Args:
      scenario: starting scenario.
      target_yield: in (0, 1), at `level`.
      level: "lane", "engine" or "switch" (switch = engine_yield^engines_per_switch).
      free: dotted keys that may move (default :data:`DEFAULT_FREE`).
      costs: overrides/additions to :data:`DEFAULT_COSTS`, key → (kind, coefficient).
      seed: optimizer seed; verification uses an independent stream.
      steps, n_per_step: optimizer steps and samples (lanes or engines) per step;
        default: enough to expect ~10 failures per step at the target (at least 1024,
        at most 16384, a multiple of 8).
      n_verify: lanes or engines for the crude Monte Carlo verification; default
        enough for ~400 expected failures at the target (×5 lanes for the lane
        clustering; at least 65 536, at most 2 097 152), so the verified interval is
        about ±10 % of the failure rate.
      aim_margin: the optimizer aims at a failure probability this fraction below
        the allowed one (default 0: the stochastic search approaches the target
        from the feasible side after its first overshoot, which already leaves a
        small margin; raise it if the verified lower bound misses the target).
      cosine_alpha: final learning rate as a fraction of ``learning_rate``.
      importance: shifted-proposal importance sampling inside the optimizer; default
        only when (1 − per-level target)·n_per_step < 5. A single Gaussian shift
        cannot cover the union of eight lanes' failure regions, so at moderate
        targets plain sampling (unbiased, noisier) is the honest choice.

    Returns:
      :class:`ProcessOptResult` (its ``scenario`` is validated and saveable).
    """
    if not 0.0 < target_yield < 1.0:
        raise ValueError(f"target_yield must be in (0, 1), got {target_yield}")
    if level not in ("lane", "engine", "switch"):
        raise ValueError(f"level must be lane, engine or switch, got {level!r}")
    if level != "lane" and scenario.system.spare_lanes:
        raise ValueError("optimize supports system.spare_lanes = 0 only")
    free = list(DEFAULT_FREE if free is None else free)
    if not free:
        raise ValueError("free must name at least one scenario key")
    table = {**DEFAULT_COSTS, **(costs or {})}
    for k in free:
        if k not in table:
            raise ScenarioError(
                f"no cost model for {k!r}: pass costs={{'{k}': ('inverse'|'linear'|'free', c)}}"
            )
        if table[k][0] not in ("inverse", "linear", "free"):
            raise ValueError(
                f"cost kind for {k} must be inverse, linear or free, got {table[k][0]!r}"
            )
    v0 = {k: float(v) for k, v in get_values(scenario, free).items()}
    is_log = {k: table[k][0] == "inverse" for k in free}
    for k in free:
        if is_log[k] and not v0[k] > 0:
            raise ValueError(f"{k} = {v0[k]}: a spread to optimise must start > 0")
    per_level_target = (
        target_yield ** (1.0 / scenario.system.engines_per_switch)
        if level == "switch"
        else target_yield
    )
    if not 0.0 <= aim_margin < 1.0:
        raise ValueError(f"aim_margin must be in [0, 1), got {aim_margin}")
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
                jnp.exp(design[k])
                if is_log[k]
                else jnp.clip(v0[k] + scale[k] * design[k], rng_[k][0], rng_[k][1])
            )
            for k in free
        }

    def limit_state(x, design):
        return g_level(x, to_values(design))

    def cost(params):
        vals = to_values(params["design"])
        return sum(_item_cost(table[k][0], table[k][1], vals[k], v0[k]) for k in free) + 1.0

    design0 = {k: jnp.asarray(math.log(v0[k]) if is_log[k] else 0.0, jnp.float32) for k in free}
    params0 = {
        "mean": jnp.zeros(dim, jnp.float32),
        "std": jnp.ones(dim, jnp.float32),
        "design": design0,
    }
    key = jax.random.key(seed)

    def final_scenario(design) -> Scenario:
        vals = {k: float(v) for k, v in to_values(design).items()}
        return scenario.replace(vals)

    verification = {}

    def verify_fn(_key, params):
        from cpojax.yields import estimate_yield

        sc = final_scenario(params["design"])
        res = estimate_yield(
            sc,
            seed=seed + 1_000_003,
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
        free={"design": True},
        optimizer=optax.adam(schedule),
        steps=steps,
        n_per_step=n_per_step,
        n_verify=n_verify,
        verify_fn=verify_fn,
        importance=importance,
    )
    sc_opt = final_scenario(res.params["design"])
    after = {k: float(v) for k, v in to_values(res.params["design"]).items()}
    rows = []
    for k in free:
        kind, c = table[k]
        rows.append(
            {
                "key": k,
                "before": v0[k],
                "after": after[k],
                "cost_kind": kind,
                "coef": c,
                "cost_before": float(_item_cost(kind, c, v0[k], v0[k])),
                "cost_after": float(_item_cost(kind, c, after[k], v0[k])),
            }
        )
    # Report the verification's own estimate and interval (for lanes: the unrounded
    # yield with the clustering-corrected interval of estimate_yield).
    ver = verification["result"]
    vy, lo, hi = ver.lane if level == "lane" else ver.engine
    if level == "switch":
        vy, lo, hi = switch_from_engine(ver.engine, scenario.system.engines_per_switch)
    hist = {k: np.asarray(v).tolist() for k, v in res.history.items()}
    return ProcessOptResult(
        level=level,
        target_yield=target_yield,
        scenario=sc_opt,
        rows=rows,
        cost_before=sum(r["cost_before"] for r in rows),
        cost_after=sum(r["cost_after"] for r in rows),
        verified_yield=vy,
        verified_ci=(lo, hi),
        n_verify=ver.n_lanes if level == "lane" else ver.n_engines,
        history=hist,
        n_compiles=res.n_compiles,
    )
