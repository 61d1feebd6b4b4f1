"""Reach a target yield at least cost: augmented Lagrangian on the β scale + optax.

Problem: minimise cost(θ) subject to Y(θ) ≥ Y_t, where θ = {"mean", "std",
"design"} are the parameters of Gaussian inputs x ~ N(mean, diag(std²)) and of
the limit state g(x, design), and Y = 1 − P[min_k g_k < 0]. Generic: the
optimiser knows nothing of photonics (:mod:`cpojax.process_opt` is the photonic
layer on top).

Modules, one job each:

* :mod:`~cpojax.optimize.config` — :class:`YieldOptConfig`, the frozen settings;
* :mod:`~cpojax.optimize.free` — which parameters move, unconstrained
  coordinates (log σ), box bounds and projection;
* :mod:`~cpojax.optimize.estimate` — P̂f and ∇Pf inside a step (likelihood ratio,
  smoothed pathwise, cross-entropy-adapted defensive importance sampling);
* :mod:`~cpojax.optimize.constraint` — the β-scale constraint, the augmented
  Lagrangian gradient and the multiplier rules;
* :mod:`~cpojax.optimize.verify` — crude Monte Carlo verification on fresh
  samples, streamed by :func:`cpojax.estimators.streaming.stream_counts`;
* :mod:`~cpojax.optimize.loop` — the jitted step (``state, info = step(state, s)``)
  and :func:`reach_yield`.

Example::

    res = reach_yield(g, {"mean": m, "std": s}, cost=cost, target_yield=0.999,
                      key=jax.random.key(0), free="std",
                      config=YieldOptConfig(steps=200, n_per_step=8192))
    res.params["std"], res.verification, res.reached
"""

from cpojax.optimize.config import YieldOptConfig
from cpojax.optimize.loop import (
    HISTORY_KEYS,
    YieldOptInfo,
    YieldOptResult,
    YieldOptState,
    YieldStep,
    check_target_yield,
    make_yield_step,
    reach_yield,
)
from cpojax.optimize.verify import gaussian_sampler, verify_yield

__all__ = [
    "HISTORY_KEYS",
    "YieldOptConfig",
    "YieldOptInfo",
    "YieldOptResult",
    "YieldOptState",
    "YieldStep",
    "check_target_yield",
    "gaussian_sampler",
    "make_yield_step",
    "reach_yield",
    "verify_yield",
]
