"""The sweep's table: per-point counter rows, and the tidy :class:`SweepTable` made
from them (one row per grid point).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from cpojax import model, rng
from cpojax.levels import LEVELS, LevelYield, switch_from_engine
from cpojax.physics.functional import engine_functional_yield
from cpojax.scenario import with_values
from cpojax.sweep.grid import Grid, Group
from cpojax.yields import level_yields

__all__ = [
    "COUNTER_HEAD",
    "SWEEP_FORMAT",
    "PointInfo",
    "SweepTable",
    "build_table",
    "point_info",
    "row_width",
    "to_rows",
]

#: Version of the sweep's counters and folder layout (part of every fingerprint).
SWEEP_FORMAT = 1
#: Per-point counter row: [lane_fail, engine_fail, invalid, state_fail × K, nfail_hist …].
COUNTER_HEAD = 3


@dataclasses.dataclass(frozen=True, eq=False)
class SweepTable:
    """Tidy result of a sweep: one row per grid point.

    Columns: one per grid key; ``<level>_yield``, ``<level>_lo``, ``<level>_hi`` for
    lane, engine and switch (95 % intervals as in :func:`cpojax.estimate_yield`);
    ``functional_engine``, ``engine_total_*``, ``switch_total_*`` (parametric ×
    functional yield, as :func:`cpojax.estimate_yield` reports them, when
    ``system.functional_yield`` is on); ``lane_design_effect``; ``mode_<limit state>``
    (share of failing lanes that violate it; a lane may fail several);
    ``lane_fail``, ``engine_fail`` (counts), ``n_engines``, ``n_lanes`` (samples).

    Attributes:
      grid: the :class:`Grid`.
      level: the headline level (terminal table, figures).
      data: column name → numpy array (one entry per point).
      counts: per point, the raw counters (``nfail_hist``, ``state_fail``).
      meta: scenario, seed, versions, devices, timing (see :meth:`to_dict`).
    """

    grid: Grid
    level: str
    data: dict[str, np.ndarray]
    counts: dict[str, list]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.grid.points)

    def __repr__(self) -> str:
        return (
            f"SweepTable({len(self)} points over {', '.join(self.grid.keys)}, "
            f"level={self.level!r}, {self.meta.get('n_engines')} engines per point)"
        )

    @property
    def column_names(self) -> list[str]:
        return list(self.data)

    def columns(self) -> dict[str, np.ndarray]:
        """Column name → numpy array (copies)."""
        return {k: v.copy() for k, v in self.data.items()}

    def rows(self) -> list[dict[str, Any]]:
        """One dict of Python scalars per point."""
        cols = {k: v.tolist() for k, v in self.data.items()}
        return [{k: cols[k][i] for k in cols} for i in range(len(self))]

    def yields(self, level: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(yield, lo, hi) arrays at `level` (default: the table's level)."""
        lv = level or self.level
        if lv not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {lv!r}")
        return self.data[f"{lv}_yield"], self.data[f"{lv}_lo"], self.data[f"{lv}_hi"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: ``grid``, ``level``, ``columns``, ``rows``, ``counts``, ``meta``."""
        return {
            "format": f"cpojax.sweep/{SWEEP_FORMAT}",
            "grid": self.grid.to_dict(),
            "level": self.level,
            "columns": self.column_names,
            "rows": self.rows(),
            "counts": self.counts,
            "meta": self.meta,
        }

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """CSV text (header + one line per point; floats at full precision); also
        written to `path` when given."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.column_names)
        for r in self.rows():
            w.writerow([repr(v) if isinstance(v, float) else v for v in r.values()])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_pandas(self):
        """A ``pandas.DataFrame`` (one row per point); needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SweepTable.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.columns())

    def to_xarray(self):
        """An ``xarray.Dataset``: one dimension per key (cartesian grids) or ``point``
        (zipped, with every key as a coordinate); needs xarray."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("SweepTable.to_xarray needs xarray: pip install xarray") from None
        keys = self.grid.keys
        rest = [c for c in self.data if c not in keys]
        if self.grid.zip:
            coords = {k: ("point", self.data[k]) for k in keys}
            data = {c: ("point", self.data[c]) for c in rest}
        else:
            shape = self.grid.shape
            coords = {k: np.asarray(v) for k, v in zip(keys, self.grid.values, strict=False)}
            data = {c: (keys, self.data[c].reshape(shape)) for c in rest}
        return xr.Dataset(data, coords=coords, attrs={"level": self.level})


class PointInfo(NamedTuple):
    """What a point's counts are turned into yields with."""

    lanes: int
    engines_per_switch: int
    n_engines: int
    functional: float | None  # the engine's functional yield factor (None: off)


def build_table(
    grid: Grid, level: str, rows: np.ndarray, info: Sequence[PointInfo], meta: dict
) -> SweepTable:
    """The table from per-point counter rows (see :class:`SweepTable` for the columns)."""
    n = len(grid.points)
    k = model.N_LIMIT
    data: dict[str, Any] = {key: [p[j] for p in grid.points] for j, key in enumerate(grid.keys)}
    cols: dict[str, list] = {}
    counts: dict[str, list] = {"nfail_hist": [], "state_fail": []}
    for i in range(n):
        lanes, e, n_eng, f = info[i]
        r = rows[i]
        k_lane, k_eng = int(r[0]), int(r[1])
        state = r[COUNTER_HEAD : COUNTER_HEAD + k]
        hist = r[COUNTER_HEAD + k : COUNTER_HEAD + k + lanes + 1]
        lane, engine, switch, deff = level_yields(k_lane, k_eng, n_eng, hist, lanes, e)[:4]
        vals = {}
        for name, ly in zip(LEVELS, (lane, engine, switch), strict=True):
            vals[f"{name}_yield"], vals[f"{name}_lo"], vals[f"{name}_hi"] = ly
        if f is not None:  # parametric × functional, as estimate_yield's engine_total
            total = LevelYield(engine.value * f, engine.lo * f, engine.hi * f)
            vals["functional_engine"] = f
            for name, ly in (("engine", total), ("switch", switch_from_engine(total, e))):
                t = f"{name}_total"
                vals[f"{t}_yield"], vals[f"{t}_lo"], vals[f"{t}_hi"] = ly
        vals["lane_design_effect"] = float(deff)
        for j, name in enumerate(model.LIMIT_NAMES):
            vals[f"mode_{name}"] = float(state[j]) / k_lane if k_lane else 0.0
        vals.update(lane_fail=k_lane, engine_fail=k_eng, n_engines=n_eng, n_lanes=n_eng * lanes)
        for c, v in vals.items():
            cols.setdefault(c, []).append(v)
        counts["nfail_hist"].append([int(x) for x in hist])
        counts["state_fail"].append([int(x) for x in state])
    data.update(cols)
    arrays = {c: np.asarray(v) for c, v in data.items()}
    return SweepTable(grid, level, arrays, counts, meta)


def point_info(grid: Grid, groups: list[Group], n_blocks: int) -> list[PointInfo]:
    """Per point: its structure (lanes, engines per switch), samples and functional factor."""
    info: list[PointInfo] = [None] * len(grid.points)  # type: ignore[list-item]
    for g in groups:
        sy = g.scenario.system
        for i in g.points:
            f = None
            if sy.functional_yield:  # functional keys may be swept: the point's own values
                values = {
                    k: v
                    for k, v in zip(grid.keys, grid.points[i], strict=False)
                    if k not in grid.structural
                }
                sc = with_values(g.scenario, values)
                n_lasers = sy.lanes_per_engine // sy.lanes_per_laser
                f = float(engine_functional_yield(sc.functional, n_lasers=n_lasers)["engine"])
            info[i] = PointInfo(sy.lanes_per_engine, sy.engines_per_switch, n_blocks * rng.BLOCK, f)
    return info


def row_width(groups: list[Group]) -> int:
    """Width of a counter row: that of the group with the most lanes per engine."""
    lanes = max(g.scenario.system.lanes_per_engine for g in groups)
    return COUNTER_HEAD + model.N_LIMIT + lanes + 1


def to_rows(out: dict[str, np.ndarray], width: int) -> np.ndarray:
    """Counter rows [..., width] from one item's (or chunk's) output dict."""
    lead = out["lane_fail"].shape
    rows = np.zeros((*lead, width), np.int64)
    rows[..., 0], rows[..., 1], rows[..., 2] = out["lane_fail"], out["engine_fail"], out["invalid"]
    k = out["state_fail"].shape[-1]
    rows[..., COUNTER_HEAD : COUNTER_HEAD + k] = out["state_fail"]
    h = out["nfail_hist"].shape[-1]
    rows[..., COUNTER_HEAD + model.N_LIMIT : COUNTER_HEAD + model.N_LIMIT + h] = out["nfail_hist"]
    return rows
