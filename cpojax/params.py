"""Dotted-key access to the continuous (traced) values of a Scenario pytree.

Gradients, sweeps and the optimizer address scenario values by their TOML key
(``design.ring.bias_nm``, ``spread.fiber_offset_um.die``); these helpers turn a set
of keys into a dict of arrays and back into a Scenario inside traced code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp

from cpojax.scenario import Scenario, ScenarioError

__all__ = ["get_values", "numeric_keys", "value_range", "with_values"]


def _path_name(path) -> str:
    return ".".join(getattr(p, "name", str(p)) for p in path)


def numeric_keys(scenario: Scenario, prefixes: Iterable[str] = ("design.", "spread.")) -> list[str]:
    """Dotted keys of the traced leaves of `scenario` starting with one of `prefixes`."""
    flat, _ = jax.tree_util.tree_flatten_with_path(scenario)
    names = [_path_name(p) for p, _ in flat]
    return [n for n in names if any(n.startswith(pr) for pr in prefixes)]


def _index(scenario: Scenario, keys: Iterable[str]) -> dict[str, int]:
    flat, _ = jax.tree_util.tree_flatten_with_path(scenario)
    where = {_path_name(p): i for i, (p, _) in enumerate(flat)}
    out = {}
    for k in keys:
        if k not in where:
            scenario.get(k)  # unknown key → ScenarioError with suggestions
            raise ScenarioError(
                f"{k} is structural (static) and cannot be differentiated or optimised"
            )
        out[k] = where[k]
    return out


def get_values(scenario: Scenario, keys: Iterable[str], dtype=jnp.float32) -> dict[str, jax.Array]:
    """{key: value as a 0-d array} for continuous scenario keys."""
    keys = list(keys)
    _index(scenario, keys)
    return {k: jnp.asarray(scenario.get(k), dtype) for k in keys}


def with_values(scenario: Scenario, values: Mapping[str, jax.Array]) -> Scenario:
    """Scenario with the given continuous keys replaced (traceable; no validation)."""
    idx = _index(scenario, values.keys())
    leaves, treedef = jax.tree_util.tree_flatten(scenario)
    for k, i in idx.items():
        leaves[i] = values[k]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def value_range(key: str) -> tuple[float, float]:
    """Allowed (lo, hi) of a scenario key from its metadata; open ends are nudged
    inwards by 1e-6 of the span (or 1e-9) so a clipped value still validates."""
    from cpojax.scenario import iter_params

    for k, f, _ in iter_params():
        if k == key:
            m = f.metadata
            lo, hi = float(m.get("lo", float("-inf"))), float(m.get("hi", float("inf")))
            eps = 1e-6 * (hi - lo) if hi - lo < float("inf") else 1e-9
            if m.get("lo_open"):
                lo += max(eps, 1e-9)
            if m.get("hi_open"):
                hi -= max(eps, 1e-9)
            return lo, hi
    raise ScenarioError(f"unknown parameter {key!r}")
