"""A differentiable companion of the yield kernel: the smoothed lane failure fraction.

Counts have no gradient, so the kernel's differentiable output is the pathwise-smoothed
failure fraction of :mod:`cpojax.estimators.gradients` (``combine="product"``),

    P̃f(τ) = mean over the lanes of a block of 1 − Π_k σ(g_k/τ),

as a function of scenario values (dotted keys → scalars, as
:func:`cpojax.scenario.with_values`). The forward value comes from the fused kernel (one
block, the ``"counter"`` stream); the gradient is a ``jax.custom_vjp`` onto the XLA path:
the vector–Jacobian product of the same quantity written with ``cpojax.rng``,
``cpojax.variation`` and ``cpojax.model.engine_limits``, on the same random numbers.
The two forward values agree to float rounding (the kernel sums per program, XLA in its
own order); the gradient is exactly the XLA path's.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from cpojax.kernels import plan as kp
from cpojax.kernels import yield_block as yb

from cpojax import model, rng, variation
from cpojax.scenario import Scenario, with_values

__all__ = ["smoothed_failure_fraction", "smoothed_failure_fraction_xla"]


def smoothed_failure_fraction_xla(
    scenario: Scenario, values: Mapping, *, key, block: int = 0, tau: float = 0.1, dtype=jnp.float32
):
    """P̃f(τ) of block ``block`` on the XLA path (the reference and the gradient's source)."""
    sc = with_values(scenario, values)
    lay = variation.layout(sc)
    u = rng.block_normals(key, block, lay.engine_dim, dtype, generator="counter")
    dev = variation.engine_deviations(sc, u)
    g, _ = model.engine_limits(sc, dev, dtype)  # [BLOCK, L, K]
    lanes = yb.smoothed_lane_failure(tuple(g[..., k] for k in range(g.shape[-1])), tau)
    return jnp.mean(lanes)


def _kernel_value(scenario, values, key, block, tau, dtype, interpret, tile):
    sc = with_values(scenario, values)
    plan = kp.make_plan(sc)
    tile = yb.default_tile(interpret) if tile is None else int(tile)
    run = yb.kernel_call(plan, jnp.dtype(dtype).name, 1, tile, bool(interpret), float(tau))
    k0, k1 = rng.key_words(key)
    words = jnp.stack([k0, k1, jnp.asarray(block, jnp.uint32), jnp.uint32(0)])
    _, sums = run(words, *yb.kernel_inputs(plan, sc, jnp.dtype(dtype)))
    return sums[0] / (rng.BLOCK * plan.lanes)


def smoothed_failure_fraction(
    scenario: Scenario,
    values: Mapping,
    *,
    key,
    block: int = 0,
    tau: float = 0.1,
    dtype=jnp.float32,
    interpret: bool = False,
    tile: int | None = None,
):
    """P̃f(τ) of block ``block`` from the fused kernel, differentiable in ``values``.

    Args:
      scenario: the scenario.
      values: {dotted key: scalar} replacing scenario values (the differentiated inputs).
      key: the run's root key (``"counter"`` stream); block: the block of 4096 engines.
      tau: smoothing width of the logistic σ(g/τ), in the units of every g column.
      dtype: float dtype of the physics; interpret, tile: as :func:`cpojax.kernels.block_counts`.

    Returns:
      A scalar; ``jax.grad`` gives the XLA path's gradient (``custom_vjp``).
    """
    values = dict(values)

    @jax.custom_vjp
    def f(vals):
        return _kernel_value(scenario, vals, key, block, tau, dtype, interpret, tile)

    def f_fwd(vals):
        return f(vals), vals

    def f_bwd(vals, ct):
        _, vjp = jax.vjp(
            lambda v: smoothed_failure_fraction_xla(
                scenario, v, key=key, block=block, tau=tau, dtype=dtype
            ),
            vals,
        )
        return vjp(ct)

    f.defvjp(f_fwd, f_bwd)
    return f(values)
