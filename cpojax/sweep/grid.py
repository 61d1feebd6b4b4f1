"""Sweep grids: dotted scenario keys and their values, validated point by point, and the
grouping of points by their structural (static) keys.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from cpojax.scenario import Scenario, ScenarioError, numeric_keys, with_values
from cpojax.scenario.codec import check, check_value
from cpojax.scenario.keys import param_keys, param_meta, suggest

__all__ = ["Grid", "Group", "group_points", "make_grid"]

zip_ = zip  # the builtin, shadowed by the ``zip=`` argument of make_grid


@dataclasses.dataclass(frozen=True)
class Grid:
    """A validated grid: keys, their values, and the points.

    Attributes:
      keys: dotted scenario keys, in the given order.
      values: per key, its values (Python numbers, canonical as the scenario stores them).
      zip: points are the i-th value of every key (else the cartesian product, first
        key outermost).
      points: one tuple of values (in ``keys`` order) per point.
      structural: the keys that are static scenario fields (they group the points).
    """

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    zip: bool
    points: tuple[tuple[Any, ...], ...]
    structural: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Table shape: one axis per key (cartesian) or ``(n_points,)`` (zipped)."""
        return (len(self.points),) if self.zip else tuple(len(v) for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "values": [list(v) for v in self.values], "zip": self.zip}


def _as_number_list(key: str, values: Any) -> list:
    if isinstance(values, str | bytes) or isinstance(values, Mapping):
        raise ScenarioError(f"grid {key}: values must be a sequence of numbers, got {values!r}")
    try:
        flat = list(np.asarray(values, dtype=object).ravel())
    except (TypeError, ValueError):
        raise ScenarioError(
            f"grid {key}: values must be a sequence of numbers, got {values!r}"
        ) from None
    if not flat:
        raise ScenarioError(f"grid {key}: no values (an empty range)")
    out = []
    for v in flat:
        if isinstance(v, np.ndarray | jax.Array) and np.ndim(v) == 0:
            v = v.item()
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ScenarioError(f"grid {key}: {v!r} is not a number")
        out.append(int(v) if isinstance(v, numbers.Integral) else float(v))
    return out


def make_grid(
    scenario: Scenario, grid: Mapping[str, Any], *, zip: bool = False, structural: str = "group"
) -> Grid:
    """Validate a grid against `scenario`: every key, every value, every point.

    Args:
      scenario: the base scenario.
      grid: ``{dotted key: sequence of numbers}``.
      zip: pair the i-th values of every key instead of taking the cartesian product.
      structural: ``"group"`` (structural keys allowed; their points are grouped) or
        ``"reject"``.

    Raises:
      ScenarioError: unknown or non-numeric key (with suggestions), empty or
        non-numeric values, a value out of range, or a point that breaks a
        cross-field rule; the message names the key (and the point).
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ScenarioError("grid must be a non-empty mapping {dotted key: values}")
    traced = set(numeric_keys(scenario, prefixes=("",)))
    known = set(param_keys())
    keys, values, static = [], [], []
    for key, raw in grid.items():
        if not isinstance(key, str) or key not in known:
            raise ScenarioError(f"grid: unknown parameter {key!r}{suggest(str(key))}")
        default = scenario.get(key)
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise ScenarioError(
                f"grid {key}: not a numeric parameter (it is {default!r}); "
                "run one sweep per value with --set instead"
            )
        meta = param_meta(key)  # type and range here; whole points below
        canon = [check_value(key, v, default, meta) for v in _as_number_list(key, raw)]
        if key not in traced:
            if structural == "reject":
                raise ScenarioError(
                    f"{key} is structural (static: it sets array shapes or compiled branches), "
                    "not a continuous value: sweep it with cpojax.sweep, which groups points by it"
                )
            static.append(key)
        keys.append(key)
        values.append(tuple(canon))
    if zip:
        lengths = {k: len(v) for k, v in zip_(keys, values)}
        if len(set(lengths.values())) > 1:
            raise ScenarioError(
                "zipped grid keys must have as many values each: "
                + ", ".join(f"{k} has {n}" for k, n in lengths.items())
            )
        points = tuple(zip_(*values))
    else:
        points = tuple(itertools.product(*values))
    # Cross-field rules (a window's min <= max) need whole points. Scenario.replace is
    # per-field checks + codec.check; the fields are checked above, so each point needs
    # only codec.check (its structural values through a full replace, once per group).
    bases: dict[tuple, Scenario] = {}
    for i, p in enumerate(points):
        assign = dict(zip_(keys, p))
        try:
            st = tuple(assign[k] for k in static)
            if st not in bases:
                bases[st] = scenario.replace(dict(zip_(static, st))) if st else scenario
            check(with_values(bases[st], {k: v for k, v in assign.items() if k not in static}))
        except ScenarioError as e:
            at = ", ".join(f"{k} = {v}" for k, v in assign.items())
            raise ScenarioError(f"grid point {i} ({at}): {e}") from None
    return Grid(tuple(keys), tuple(values), bool(zip), points, tuple(static))


class Group(NamedTuple):
    """Points sharing one structure: base scenario, point indices, traced values, chunk."""

    scenario: Scenario
    points: np.ndarray  # int64 [n] global point indices
    values: np.ndarray  # float64 [n, n_traced]
    chunk: int  # points per item (Pc)

    @property
    def n_chunks(self) -> int:
        return -(-len(self.points) // self.chunk)

    def chunk_values(self, pc: int) -> np.ndarray:
        """[Pc, n_traced] values of point chunk `pc`, the last padded with its last point."""
        idx = np.minimum(np.arange(pc * self.chunk, (pc + 1) * self.chunk), len(self.points) - 1)
        return self.values[idx]


def group_points(scenario: Scenario, grid: Grid, point_chunk: int) -> tuple[list[Group], tuple]:
    """The grid's points grouped by their structural values, and the traced keys.

    Returns:
      ``(groups, traced)``: one :class:`Group` per distinct tuple of structural values
      (its base scenario has them; up to `point_chunk` points per item), and the keys
      that stay traced (the non-structural ones, in grid order).
    """
    traced = tuple(k for k in grid.keys if k not in grid.structural)
    col = {k: j for j, k in enumerate(grid.keys)}
    by_static: dict[tuple, list[int]] = {}
    for i, p in enumerate(grid.points):
        by_static.setdefault(tuple(p[col[k]] for k in grid.structural), []).append(i)
    groups = []
    for static, idx in by_static.items():
        base = scenario.replace(dict(zip_(grid.structural, static))) if static else scenario
        vals = np.asarray([[grid.points[i][col[k]] for k in traced] for i in idx], np.float64)
        vals = vals.reshape(len(idx), len(traced))
        pc = min(point_chunk, len(idx)) if traced else 1
        groups.append(Group(base, np.asarray(idx, np.int64), vals, pc))
    return groups, traced
