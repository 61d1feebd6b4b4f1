"""What the cost model takes from the yield engine and the physics (docs/cost.md).

The engine yield that enters the cost (parametric × functional factors when the yield
engine reports them) and the engine's electrical power from the lane budget.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.levels import LevelYield
from cpojax.physics.link import lane_budget
from cpojax.validate import resolve_key

__all__ = ["EnginePower", "cost_engine_yield", "engine_power_w", "functional_factor"]


def functional_factor(result: Any) -> LevelYield | None:
    """The functional (defect-limited and assembly) engine-yield factor a yield result
    reports, as a :class:`LevelYield`, or None when it reports none.

    Read from ``result.functional`` when present: a LevelYield or ``(value, lo, hi)``,
    a number (an exact factor), an object or mapping with an ``engine`` entry of
    those forms (:class:`cpojax.yields.YieldResult` reports ``{"pic", "eic", ...,
    "engine": factor}``, empty when ``system.functional_yield`` is off), or a
    mapping ``{"yield": v, "ci": [lo, hi]}``.
    """
    f = getattr(result, "functional", None)
    if not isinstance(f, LevelYield | tuple | numbers.Real | type(None)):
        f = f.get("engine") if isinstance(f, Mapping) else getattr(f, "engine", f)
    if f is None:  # none reported (an empty mapping: functional yield switched off)
        return None
    if isinstance(f, Mapping):
        f = (f["yield"], *f["ci"])
    if isinstance(f, numbers.Real):
        return LevelYield(float(f), float(f), float(f))
    if isinstance(f, tuple) and len(f) == 3:
        return LevelYield(*(float(v) for v in f))
    raise TypeError(f"cannot read a functional engine yield from {type(f).__name__}: {f!r}")


def cost_engine_yield(result: Any) -> tuple[LevelYield, str]:
    """The engine yield entering the cost model, and what it is made of.

    ``parametric × functional``: the Monte Carlo engine yield of
    :func:`cpojax.estimate_yield` (``result.engine``) times the functional factor
    when the result reports one (:func:`functional_factor`). The interval multiplies
    the bounds (both factors are monotone in the yield; the product of two 95 %
    intervals is conservative, not exact).
    """
    par = LevelYield(*(float(v) for v in result.engine))
    fun = functional_factor(result)
    if fun is None:
        return par, "parametric engine yield (no functional/defect yield reported)"
    return (
        LevelYield(par.value * fun.value, par.lo * fun.lo, par.hi * fun.hi),
        "parametric × functional engine yield",
    )


@functools.lru_cache(maxsize=8)
def _power_fn(n_engines: int):
    def fn(key, scenario):
        dev = variation.sample(key, scenario, n_engines)  # fields [n, lanes]
        flat = jax.tree_util.tree_map(lambda x: x.reshape(-1), dev)
        b = lane_budget(
            design=scenario.design,
            dev=flat,
            system=scenario.system,
            window=scenario.window,
            limits=scenario.limits,
        )
        lanes = scenario.system.lanes_per_engine
        lane_mw = jnp.mean(b.lane_power_mw, axis=-1).reshape(n_engines, lanes)  # window mean
        engine_w = jnp.sum(lane_mw, axis=-1) / 1000.0
        good = jnp.all(b.g >= 0, axis=-1).reshape(n_engines, lanes)
        engine_good = jnp.sum(good, axis=-1) >= lanes - scenario.system.spare_lanes
        return engine_w, engine_good

    return jax.jit(fn)


class EnginePower(NamedTuple):
    """Electrical power of one engine from the physics (:func:`engine_power_w`).

    Attributes:
      mean_w: mean over the simulated engines (the population), W.
      se_w: its standard error, W.
      good_mean_w: mean over the engines whose lanes all pass, W (NaN if none).
      n_engines: engines simulated.
    """

    mean_w: float
    se_w: float
    good_mean_w: float
    n_engines: int


def engine_power_w(scenario: Any, *, seed: int = 0, n_engines: int = 4096) -> EnginePower:
    """Mean electrical power of one engine, including its lasers, from the physics.

    For each of ``n_engines`` simulated engines (the first engines of the yield run
    with the same seed, :func:`cpojax.variation.sample`) the lane budget gives the
    lane's electrical power (laser wall power / lanes per laser, heater, driver,
    TIA, host interface; ``Budget.lane_power_mw``) at the four corners of the
    operating window; the engine's power is the sum over its lanes of the mean over
    the corners.

    Raises:
      InvalidModelOutput: the model returned NaN/inf power.
    """
    key, _ = resolve_key(None, seed)
    w, good = _power_fn(int(n_engines))(key, scenario)
    w, good = np.asarray(w, np.float64), np.asarray(good)
    if not np.all(np.isfinite(w)):
        raise InvalidModelOutput(
            f"lane power is NaN/inf for {int(np.sum(~np.isfinite(w)))} of {n_engines} engines"
        )
    good_mean = float(w[good].mean()) if good.any() else math.nan
    return EnginePower(
        mean_w=float(w.mean()),
        se_w=float(w.std(ddof=1) / math.sqrt(n_engines)) if n_engines > 1 else 0.0,
        good_mean_w=good_mean,
        n_engines=int(n_engines),
    )
