"""Yield over grids of scenario values, every grid point on the same engines.

Grid values are traced scenario leaves, so the whole grid is vmapped inside each
block of engines and compiled once; every grid point sees the same engines
(common random numbers), so differences between points are far more precise
than each point's own interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import model, rng, variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.streaming import stream_counts
from cpojax.scenario import Scenario, ScenarioError
from cpojax.validate import as_count, check_scenario, resolve_key
from cpojax.yields import level_yields

__all__ = ["yield_curve"]


def _leaf_setter(scenario: Scenario, param: str):
    """(flat leaves, index of `param`, treedef) for a numeric, non-static scenario key."""
    scenario.get(param)  # raises ScenarioError for unknown keys
    flat, treedef = jax.tree_util.tree_flatten_with_path(scenario)
    for i, (path, _) in enumerate(flat):
        name = ".".join(getattr(p, "name", str(p)) for p in path)
        if name == param:
            return [v for _, v in flat], i, treedef
    raise ScenarioError(
        f"{param} is structural (static), not a continuous value: sweep it with a loop over scenarios"
    )


def yield_curve(
    scenario: Scenario,
    param: str,
    values: Sequence[float],
    *,
    key=None,
    seed: int = 0,
    n_engines: int = 16_384,
    dtype=jnp.float32,
) -> dict[str, Any]:
    """Lane / engine / switch yield as a function of one scenario value, in one call.

    The grid is vmapped inside each block and every grid point sees the same
    engines (common random numbers), so curves are smooth and differences between
    grid points are far more precise than each point's own interval.

    Args:
      scenario: base scenario.
      param: dotted key of a continuous value, e.g. ``window.engine_temp_max_c`` or
        ``spread.ring_resonance_nm.die``.
      values: grid of values (validated like ``--set``).
      n_engines: engines per grid point (rounded up to whole blocks).

    Returns:
      dict with ``values`` and, per level, ``yield`` and ``ci`` lists (lane
      intervals corrected for clustering as in :func:`estimate_yield`).

    Raises:
      InvalidModelOutput: the model returned NaN/inf at some grid value.
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    try:
        values = [float(v) for v in np.asarray(values, dtype=object).ravel()]
    except (TypeError, ValueError):
        raise TypeError(f"values must be a sequence of numbers, got {values!r}") from None
    if not values:
        raise ValueError("values must be a non-empty sequence")
    for v in values:  # host-side validation of every grid value
        scenario.replace({param: v})
    leaves, idx, treedef = _leaf_setter(scenario, param)
    key, _ = resolve_key(key, seed)
    lay = variation.layout(scenario)
    spares = scenario.system.spare_lanes
    grid = jnp.asarray(values, dtype)

    def fn(k, b):
        u = rng.block_normals(k, b, lay.engine_dim, dtype)

        def at(val):
            sc = jax.tree_util.tree_unflatten(treedef, [*leaves[:idx], val, *leaves[idx + 1 :]])
            g = model.engine_g(sc, u, dtype)
            finite = jnp.all(jnp.isfinite(g), axis=-1)
            lane_fail = jnp.any(g < 0, axis=-1) | ~finite
            nf = jnp.sum(lane_fail, axis=-1)
            return {
                "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
                "engine_fail": jnp.sum(nf > spares).astype(jnp.int32),
                "nfail_hist": jnp.bincount(nf, length=lay.lanes + 1).astype(jnp.int32),
                "invalid": jnp.sum(~finite).astype(jnp.int32),
            }

        return jax.vmap(at)(grid)

    n_blocks = -(-n_engines // rng.BLOCK)
    totals, _ = stream_counts(fn, key=key, n_blocks=n_blocks, chunk_blocks=1)
    n_eng = n_blocks * rng.BLOCK
    e = scenario.system.engines_per_switch
    out: dict[str, Any] = {"param": param, "values": values, "n_engines": n_eng}
    for level in ("lane", "engine", "switch"):
        out[level] = {"yield": [], "ci": []}
    bad = np.asarray(totals["invalid"])
    if bad.any():
        j = int(np.argmax(bad > 0))
        raise InvalidModelOutput(
            f"the lane model returned NaN/inf for {int(bad[j])} lanes at {param} = {values[j]}"
        )
    for j in range(len(values)):
        kl, ke = int(totals["lane_fail"][j]), int(totals["engine_fail"][j])
        levels = level_yields(kl, ke, n_eng, totals["nfail_hist"][j], lay.lanes, e)
        for name, ly in zip(("lane", "engine", "switch"), levels[:3], strict=True):
            out[name]["yield"].append(ly.value)
            out[name]["ci"].append([ly.lo, ly.hi])
    return out
