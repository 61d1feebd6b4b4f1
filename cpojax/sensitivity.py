"""Sensitivity of lane / engine yield to every design value and spread.

d(yield)/dp = −dPf/dp by the pathwise estimator through a smoothed failure
indicator (:func:`cpojax.estimators.gradients.failure_grad`, method "both": the
scenario values are inside the limit state g(u; p), since spreads act as
dev = σ·u). The indicator 1 − Π_k σ(g_k/τ_k) over all lanes × limit states has a
bias of order τ² (τ = ``tau_rel`` × the spread of each g column); reported
standard errors come from batch means.

Elasticities e = d(yield)/d(log p) = p·d(yield)/dp rank the parameters by the
yield change per relative change: a spread with e = −0.05 costs 0.5 % of yield
per +10 % of spread, so the most negative spreads are the ones to tighten first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import model
from cpojax.estimators.gradients import failure_grad
from cpojax.scenario import Scenario, get_values, numeric_keys

__all__ = ["Sensitivity", "sensitivity"]


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Per-key gradient and elasticity of the yield at one level."""

    level: str
    yield_smoothed: float
    pf: float
    rows: list[dict[str, Any]]  # key, value, grad, grad_se, elasticity, elasticity_se
    n: int
    tau: list[float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sensitivity(
    scenario: Scenario,
    *,
    level: str = "engine",
    keys: list[str] | None = None,
    seed: int = 0,
    key=None,
    n: int = 16384,
    tau_rel: float = 0.05,
) -> Sensitivity:
    """Gradient of lane or engine yield with respect to scenario values.

    Args:
      scenario: the scenario.
      level: "lane" or "engine" (an engine fails when any lane fails; spares ignored).
      keys: dotted keys to differentiate (default: every design value and spread).
      n: samples (lanes or engines), a multiple of 8.
      tau_rel: smoothing temperature relative to the spread of each g column.

    Returns:
      :class:`Sensitivity`, rows sorted by |elasticity|.
    """
    if level == "switch":
        raise ValueError("level must be 'lane' or 'engine' (switch yield = engine_yield^N)")
    keys = numeric_keys(scenario) if keys is None else list(keys)
    values = get_values(scenario, keys)
    g, dim = model.parametric_limit_state(scenario, level)
    key = jax.random.key(seed) if key is None else key
    pf, grads, info = failure_grad(
        g,
        mean=jnp.zeros(dim, jnp.float32),
        std=jnp.ones(dim, jnp.float32),
        design=values,
        key=key,
        n=n,
        method="both",
        tau_rel=tau_rel,
    )
    rows = []
    for k in keys:
        v = float(values[k])
        gr = -float(grads["design"][k])
        se = float(info.se["design"][k])
        rows.append(
            {
                "key": k,
                "value": v,
                "grad": gr,
                "grad_se": se,
                "elasticity": v * gr,
                "elasticity_se": abs(v) * se,
            }
        )
    rows.sort(key=lambda r: -abs(r["elasticity"]))
    return Sensitivity(
        level=level,
        yield_smoothed=1.0 - float(info.pf_smooth),
        pf=float(pf),
        rows=rows,
        n=n,
        tau=np.asarray(info.tau).tolist() if np.ndim(info.tau) else [float(info.tau)],
    )
