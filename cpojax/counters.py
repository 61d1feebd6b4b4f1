"""Per-block counters of the crude Monte Carlo yield engine (:mod:`cpojax.yields`).

:func:`block_fn` is the function the streaming loop runs on every block of engines:
normals → deviations (:mod:`cpojax.variation`) → limit states of every lane and of the
engine's die-level probe lane (:mod:`cpojax.model`) → integer counters only (failing lanes,
engines, limit states, the histogram of failing lanes per engine, the die-level share, the
attribution sums in exact fixed point, the limit-state histograms). Integers summed on
the host make the result bit-identical for any chunk size, device count or resume point.
The fused kernel of :mod:`cpojax.kernels` computes the same yield counters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import model, rng, variation

__all__ = ["FIXED", "THERMAL", "Z_CAP", "block_fn", "combine", "exact_sum", "quantise"]

#: Fixed-point scale of the attribution sums: each lane's value is rounded to
#: 1/FIXED and summed as integers, so sums are exact and order-independent.
FIXED = 1000.0
#: Column of the thermal limit state.
THERMAL = model.LIMIT_NAMES.index("thermal")
#: Cap of |z|² and |z| per lane before quantisation (keeps one lane's integer
#: below 2**20, an engine's sum below 2**31 for up to 1024 lanes).
Z_CAP = 1000.0


def _hist(x, lo, hi, bins):
    idx = jnp.clip(jnp.floor((x - lo) / (hi - lo) * bins).astype(jnp.int32) + 1, 0, bins + 1)
    return jnp.bincount(idx.ravel(), length=bins + 2).astype(jnp.int32)


def _concat_lanes(a, b):
    """Join two Deviations along the lane axis (last axis)."""
    return jax.tree_util.tree_map(lambda x, y: jnp.concatenate([x, y], axis=-1), a, b)


def exact_sum(q):
    """Exact, order-independent sum over axis 0 of int32 values |q| < 2**31.

    Each value is split as q = hi·2**16 + lo (arithmetic shift, lo in [0, 2**16)),
    and the two parts are summed separately: for up to 2**15 rows neither sum can
    overflow int32. The host recombines them in int64 (:func:`combine`).
    """
    hi = jnp.right_shift(q, jnp.int32(16))
    lo = jnp.bitwise_and(q, jnp.int32(0xFFFF))
    return jnp.stack([jnp.sum(hi, axis=0, dtype=jnp.int32), jnp.sum(lo, axis=0, dtype=jnp.int32)])


def combine(pair) -> np.ndarray:
    """Host side of :func:`exact_sum`: hi·2**16 + lo in int64."""
    a = np.asarray(pair, np.int64)
    return a[0] * 65536 + a[1]


def quantise(x):
    """Per-lane fixed-point integer of a float in [−Z_CAP, Z_CAP]."""
    return jnp.round(jnp.clip(x, -Z_CAP, Z_CAP) * FIXED).astype(jnp.int32)


@functools.lru_cache(maxsize=16)
def block_fn(dtype_name: str, generator: str) -> Callable:
    """Per-block counter function fn(key, block, scenario) for the full yield analysis.

    Module-level and cached per (dtype, generator), with the scenario as a traced
    argument: one compilation serves every scenario of the same structure.
    """
    dtype = jnp.dtype(dtype_name)

    def fn(key, b, scenario):
        lay = variation.layout(scenario)
        lanes = lay.lanes
        names = list(lay.variables)
        u = rng.block_normals(key, b, lay.engine_dim, dtype, generator=generator)
        dev = variation.engine_deviations(scenario, u)  # [B, L]
        # One extra lane per engine with only the engine-wide (wafer + die) deviations,
        # evaluated in the same link call: it tells die-level from lane-level failures.
        u_die = jnp.concatenate(
            [
                u[:, : 2 * lay.n_shared],
                jnp.zeros((u.shape[0], lay.lane_dim - 2 * lay.n_shared), dtype),
            ],
            axis=-1,
        )
        dev_die = jax.tree_util.tree_map(
            lambda x: x[:, None], variation.lane_deviations(scenario, u_die)
        )
        # The limit states by the fast formulation (cpojax.physics.limits: the same model
        # as model.engine_budget, limit states only; the kernel evaluates the same).
        if scenario.system.thermal_coupling:
            # Engine-level physics: the engine's lanes together (crosstalk, temperature
            # map); the probe is a lane on its own (model.lane_g).
            g, red = model.engine_limits(scenario, dev, dtype)  # [B, L, K], [B, L]
            g_die = model.lane_g(scenario, dev_die, dtype)[:, 0]
        else:
            # One call for the engine's lanes and the probe lane (lanes are independent).
            g_all, red_all = model.lane_limits(scenario, _concat_lanes(dev, dev_die), dtype)
            g, g_die = g_all[:, :lanes], g_all[:, lanes]  # [B, L, K], [B, K]
            red = red_all[:, :lanes]
        finite_k = jnp.isfinite(g)
        finite = jnp.all(finite_k, axis=-1)  # [B, L]
        fail_k = g < 0
        lane_fail = jnp.any(fail_k, axis=-1) | ~finite
        nf = jnp.sum(lane_fail, axis=-1)
        eng_fail = nf > scenario.system.spare_lanes
        prefix_fail = jnp.cumsum(lane_fail, axis=-1) > 0  # [B, L]
        die_fail = jnp.any(g_die < 0, axis=-1)
        z = variation.standardized(scenario, u)  # {var: [B, L, F]}
        z2 = jnp.stack([jnp.mean(z[n] ** 2, axis=-1) for n in names], axis=-1)  # [B, L, V]
        z1 = jnp.stack([jnp.mean(z[n], axis=-1) for n in names], axis=-1)
        q2, q1 = quantise(z2), quantise(z1)  # [B, L, V] int32
        w = lane_fail.astype(jnp.int32)[..., None]
        bad = (~finite).astype(jnp.int32)[..., None]
        wk = fail_k.astype(jnp.int32)  # [B, L, K]
        out = {
            "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
            "state_fail": jnp.sum(fail_k, axis=(0, 1)).astype(jnp.int32),
            # thermal failures nearer the red edge (heater runs out); the rest are blue
            "thermal_red_fail": jnp.sum(fail_k[..., THERMAL] & (red > 0.5)).astype(jnp.int32),
            "invalid": jnp.sum(~finite).astype(jnp.int32),
            "invalid_state": jnp.sum(~finite_k, axis=(0, 1)).astype(jnp.int32),
            "invalid_probe": jnp.sum(~jnp.all(jnp.isfinite(g_die), axis=-1)).astype(jnp.int32),
            "engine_fail": jnp.sum(eng_fail).astype(jnp.int32),
            "nfail_hist": jnp.bincount(nf, length=lanes + 1).astype(jnp.int32),
            "prefix_fail": jnp.sum(prefix_fail, axis=0).astype(jnp.int32),
            "die_fail_engines": jnp.sum(die_fail & eng_fail).astype(jnp.int32),
            # Per-lane integers summed per engine (< 2**31), then exactly over engines.
            "z2_fail": exact_sum(jnp.sum(w * q2, axis=1, dtype=jnp.int32)),
            "z1_fail": exact_sum(jnp.sum(w * q1, axis=1, dtype=jnp.int32)),
            "z2_state": exact_sum(
                jnp.einsum("blk,blv->bkv", wk, q2, preferred_element_type=jnp.int32)
            ),
            "z2_invalid": exact_sum(jnp.sum(bad * q2, axis=1, dtype=jnp.int32)),
        }
        for j, ls in enumerate(model.LIMIT_STATES):
            lo, hi, bins = ls.hist
            out[f"hist_{ls.name}"] = _hist(g[..., j], lo, hi, bins)
        return out

    return fn
