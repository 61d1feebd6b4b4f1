"""Dotted keys: every scenario parameter addressed by its TOML path.

``design.ring.bias_nm``, ``spread.fiber_offset_um.die``, ``system.lanes_per_engine``:
the CLI's ``--set``, `Scenario.get`/`Scenario.replace`, gradients, sweeps and the
optimizer all name a parameter this way. This module walks the parameter table
(keys, metadata, suggestions for a mistyped key) and, inside traced code, turns a
set of keys into a dict of arrays and back into a Scenario (`get_values`,
`with_values`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from cpojax.scenario.errors import ScenarioError
from cpojax.scenario.table import ScenarioTable, leaf_meta

if TYPE_CHECKING:
    from cpojax.scenario.core import Scenario

__all__ = [
    "get_value",
    "get_values",
    "iter_params",
    "numeric_keys",
    "param_keys",
    "param_meta",
    "set_dotted",
    "split_key",
    "suggest",
    "value_range",
    "with_values",
]


# --------------------------------------------------------------------------- the table
def split_key(key: str) -> list[str]:
    """The parts of a dotted key; ScenarioError for an empty part (``design..ring``)."""
    parts = key.strip().split(".")
    if not key or any(not p for p in parts):
        raise ScenarioError(
            f"malformed parameter name {key!r} (expected a dotted path such as design.ring.bias_nm)"
        )
    return parts


def _walk(
    obj: Any, prefix: str, owner_meta: Mapping[str, Any] | None
) -> Iterator[tuple[str, dataclasses.Field, Any, dict[str, Any]]]:
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from _walk(v, key + ".", f.metadata)
        else:
            yield key, f, v, leaf_meta(f, obj, owner_meta)


def iter_params(obj: Any = None, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """Yield (dotted key, field, value) for every leaf parameter of a scenario (default: the
    default scenario)."""
    obj = ScenarioTable() if obj is None else obj
    for key, f, v, _ in _walk(obj, prefix, None):
        yield key, f, v


def param_keys() -> list[str]:
    """Every valid dotted parameter key."""
    return [k for k, _, _ in iter_params()]


def suggest(key: str) -> str:
    """Text to append to an 'unknown parameter' message: the closest valid keys."""
    close = difflib.get_close_matches(key, param_keys(), n=3, cutoff=0.6)
    return (
        f" (did you mean {', '.join(close)}?)" if close else " (run `cpojax scenario` for the list)"
    )


def param_meta(key: str) -> dict[str, Any]:
    """Metadata of a leaf parameter: unit, lo, hi, lo_open, hi_open, doc, src, choices.

    A spread level (``spread.<name>.die``) carries the unit and upper bound of its spread.
    """
    for k, _, _, meta in _walk(ScenarioTable(), "", None):
        if k == key:
            return meta
    raise ScenarioError(f"unknown parameter {key!r}{suggest(key)}")


def get_value(obj: Any, key: str) -> Any:
    """Value at a dotted path of a scenario (a leaf or a whole section)."""
    node = obj
    for part in split_key(key):
        if not dataclasses.is_dataclass(node) or part not in {
            f.name for f in dataclasses.fields(node)
        }:
            raise ScenarioError(f"unknown parameter {key!r}{suggest(key)}")
        node = getattr(node, part)
    return node


def set_dotted(tree: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted-key values in a nested dict (from `Scenario.to_dict`), in place; returns it.

    Every key must name an existing leaf, except a correlation entry
    ``correlation.<level>.<a,b>`` which may be new. Values are not validated here.
    """
    for key, value in updates.items():
        parts = split_key(key)
        node = tree
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                raise ScenarioError(f"unknown parameter {key!r}{suggest(key)}")
            node = node[part]
        corr_entry = len(parts) == 3 and parts[0] == "correlation"
        if not corr_entry and (parts[-1] not in node or isinstance(node[parts[-1]], dict)):
            raise ScenarioError(f"unknown parameter {key!r}{suggest(key)}")
        node[parts[-1]] = value
    return tree


def value_range(key: str) -> tuple[float, float]:
    """Allowed (lo, hi) of a scenario key from its metadata; open ends are nudged
    inwards by 1e-6 of the span (or 1e-9) so a clipped value still validates."""
    m = param_meta(key)
    lo, hi = float(m.get("lo", -math.inf)), float(m.get("hi", math.inf))
    eps = 1e-6 * (hi - lo) if hi - lo < math.inf else 1e-9
    if m.get("lo_open"):
        lo += max(eps, 1e-9)
    if m.get("hi_open"):
        hi -= max(eps, 1e-9)
    return lo, hi


# --------------------------------------------------------------------------- traced values
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
            get_value(scenario, k)  # unknown key → ScenarioError with suggestions
            raise ScenarioError(
                f"{k} is structural (static) and cannot be differentiated or optimised"
            )
        out[k] = where[k]
    return out


def get_values(scenario: Scenario, keys: Iterable[str], dtype=jnp.float32) -> dict[str, jax.Array]:
    """{key: value as a 0-d array} for continuous scenario keys."""
    keys = list(keys)
    _index(scenario, keys)
    return {k: jnp.asarray(get_value(scenario, k), dtype) for k in keys}


def with_values(scenario: Scenario, values: Mapping[str, jax.Array]) -> Scenario:
    """Scenario with the given continuous keys replaced (traceable; no validation)."""
    idx = _index(scenario, values.keys())
    leaves, treedef = jax.tree_util.tree_flatten(scenario)
    for k, i in idx.items():
        leaves[i] = values[k]
    return jax.tree_util.tree_unflatten(treedef, leaves)
