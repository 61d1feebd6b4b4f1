"""Parameter sweeps: yield over N-D grids of scenario values, compiled once, on every device.

A grid maps dotted scenario keys (as in ``--set``) to values; its points are the
cartesian product of the values (or, zipped, the i-th value of every key). Every
value is validated like ``--set`` — each point as a whole, so cross-field rules
hold — before anything runs.

How a sweep runs (the statistics are those of docs/model.md#yield-levels-and-statistics):

* Continuous keys are traced scenario leaves. Points are taken ``point_chunk`` at
  a time and vmapped inside each block of :data:`cpojax.rng.BLOCK` engines, so the
  work is a list of items *(point chunk, block)*, each of one compiled shape: a
  10,000-point sweep compiles once and its memory is one item per device.
* Every point sees the same engines (block b draws from ``fold_in(key, b)``:
  common random numbers), so differences between points are far more precise than
  each point's own interval, and curves are smooth.
* Items are spread over every device (:func:`cpojax.estimators.streaming.map_items`:
  ``shard_map`` + ``lax.map``, one compiled shape per item), across processes when
  ``jax.distributed`` runs (:mod:`cpojax.distributed`); every process receives
  every item's counts. The numbers are bit-identical for any device or process
  count.
* Structural keys (``system.spare_lanes``, ``system.lanes_per_engine``, …: static
  fields that set shapes or compiled branches) group the points: each group is
  compiled once, its continuous keys vmapped as above.
* With ``out`` a run folder (:class:`cpojax.outputs.RunFolder`) records the sweep
  (scenario, grid, seed, versions, devices) before computing, writes every finished
  point chunk atomically (``points/``), and ``resume=True`` finishes an interrupted
  sweep to the identical table, refusing a changed scenario, grid, seed or version.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import importlib.metadata
import io
import itertools
import json
import numbers
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import distributed, model, plots, rng, variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.streaming import device_list, fetch_items, item_mesh, map_items
from cpojax.levels import LEVELS, LevelYield, switch_from_engine
from cpojax.outputs import OutputError, RunFolder, strict_json
from cpojax.physics.functional import engine_functional_yield
from cpojax.scenario import Scenario, ScenarioError, numeric_keys, with_values
from cpojax.scenario.codec import check, check_value
from cpojax.scenario.keys import param_keys, param_meta, suggest
from cpojax.validate import as_count, check_scenario, resolve_key
from cpojax.yields import level_yields

__all__ = [
    "SWEEP_FILES",
    "Grid",
    "SweepProgress",
    "SweepTable",
    "figure_name",
    "figures",
    "make_grid",
    "sweep",
    "write_outputs",
    "yield_curve",
]

#: Version of the sweep's counters and folder layout (part of every fingerprint).
SWEEP_FORMAT = 1
#: Files a finished sweep writes in its folder (the point chunks go to ``points/``).
SWEEP_FILES = (
    "sweep.json",
    "sweep.csv",
    "scenario.toml",
    "sweep_curves.png",
    "sweep_heatmap.png",
    "sweep_multiples.png",
)
_PARTS = "points"
_PART_RE = re.compile(r"^g(\d{4})-c(\d{7})\.json$")
#: Per-point counter row: [lane_fail, engine_fail, invalid, state_fail × K, nfail_hist …].
_HEAD = 3
zip_ = zip  # the builtin, shadowed by the ``zip=`` arguments below


def _versions() -> dict[str, str]:
    def v(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {"cpojax": v("cpojax"), "jax": jax.__version__, "jaxlib": v("jaxlib")}


# --------------------------------------------------------------------------- the grid
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


# --------------------------------------------------------------------------- the table
class SweepProgress(NamedTuple):
    """What :func:`sweep` reports after every chunk.

    ``items`` are (point chunk, block) pairs computed by this call (a resumed sweep
    counts only what is left); ``points_done`` includes points loaded from a folder.
    """

    points_done: int
    points_total: int
    items_done: int
    items_total: int
    lane_samples: int
    elapsed_s: float


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
            coords = {k: np.asarray(v) for k, v in zip_(keys, self.grid.values)}
            data = {c: (keys, self.data[c].reshape(shape)) for c in rest}
        return xr.Dataset(data, coords=coords, attrs={"level": self.level})


class _PointInfo(NamedTuple):
    """What a point's counts are turned into yields with."""

    lanes: int
    engines_per_switch: int
    n_engines: int
    functional: float | None  # the engine's functional yield factor (None: off)


def _build_table(
    grid: Grid, level: str, rows: np.ndarray, info: Sequence[_PointInfo], meta: dict
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
        state = r[_HEAD : _HEAD + k]
        hist = r[_HEAD + k : _HEAD + k + lanes + 1]
        lane, engine, switch, deff = level_yields(k_lane, k_eng, n_eng, hist, lanes, e)[:4]
        vals = {}
        for name, ly in zip_(LEVELS, (lane, engine, switch), strict=True):
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


def _point_info(grid: Grid, groups: list[_Group], n_blocks: int) -> list[_PointInfo]:
    """Per point: its structure (lanes, engines per switch), samples and functional factor."""
    info: list[_PointInfo] = [None] * len(grid.points)  # type: ignore[list-item]
    for g in groups:
        sy = g.scenario.system
        for i in g.points:
            f = None
            if sy.functional_yield:  # functional keys may be swept: the point's own values
                values = {
                    k: v for k, v in zip_(grid.keys, grid.points[i]) if k not in grid.structural
                }
                sc = with_values(g.scenario, values)
                n_lasers = sy.lanes_per_engine // sy.lanes_per_laser
                f = float(engine_functional_yield(sc.functional, n_lasers=n_lasers)["engine"])
            info[i] = _PointInfo(
                sy.lanes_per_engine, sy.engines_per_switch, n_blocks * rng.BLOCK, f
            )
    return info


# --------------------------------------------------------------------------- the computation
@functools.lru_cache(maxsize=32)
def _item_fn(dtype_name: str, generator: str, keys: tuple[str, ...]) -> Callable:
    """Per-item counts ``fn(key, item, scenario) -> {name: int32[Pc, ...]}``.

    An item is one block of engines (``item["block"]``) at a chunk of grid points
    (``item["values"]``: [Pc, len(keys)]); the points are vmapped over the block's
    shared normals. Module-level and cached, with the scenario traced, so one
    compilation serves every scenario of one structure.
    """
    dtype = jnp.dtype(dtype_name)

    def fn(key, item, scenario):
        lay = variation.layout(scenario)
        u = rng.block_normals(key, item["block"], lay.engine_dim, dtype, generator=generator)

        def at(vals):
            sc = with_values(scenario, {k: vals[i] for i, k in enumerate(keys)})
            g = model.engine_g(sc, u, dtype)  # [B, L, K]
            finite = jnp.all(jnp.isfinite(g), axis=-1)
            fail_k = g < 0
            lane_fail = jnp.any(fail_k, axis=-1) | ~finite
            nf = jnp.sum(lane_fail, axis=-1)
            return {
                "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
                "engine_fail": jnp.sum(nf > sc.system.spare_lanes).astype(jnp.int32),
                "invalid": jnp.sum(~finite).astype(jnp.int32),
                "state_fail": jnp.sum(fail_k, axis=(0, 1)).astype(jnp.int32),
                "nfail_hist": jnp.bincount(nf, length=lay.lanes + 1).astype(jnp.int32),
            }

        return jax.vmap(at)(item["values"])

    return fn


class _Group(NamedTuple):
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


def _groups(scenario: Scenario, grid: Grid, point_chunk: int) -> tuple[list[_Group], tuple]:
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
        groups.append(_Group(base, np.asarray(idx, np.int64), vals, pc))
    return groups, traced


def _row_width(groups: list[_Group]) -> int:
    lanes = max(g.scenario.system.lanes_per_engine for g in groups)
    return _HEAD + model.N_LIMIT + lanes + 1


def _to_rows(out: dict[str, np.ndarray], width: int) -> np.ndarray:
    """Counter rows [..., width] from one item's (or chunk's) output dict."""
    lead = out["lane_fail"].shape
    rows = np.zeros((*lead, width), np.int64)
    rows[..., 0], rows[..., 1], rows[..., 2] = out["lane_fail"], out["engine_fail"], out["invalid"]
    k = out["state_fail"].shape[-1]
    rows[..., _HEAD : _HEAD + k] = out["state_fail"]
    h = out["nfail_hist"].shape[-1]
    rows[..., _HEAD + model.N_LIMIT : _HEAD + model.N_LIMIT + h] = out["nfail_hist"]
    return rows


def _invalid_message(grid: Grid, i: int, n_bad: int) -> str:
    at = ", ".join(f"{k} = {v}" for k, v in zip_(grid.keys, grid.points[i]))
    return f"the lane model returned NaN/inf for {n_bad} lanes at {at}"


def _compute(
    *,
    grid: Grid,
    groups: list[_Group],
    traced: tuple[str, ...],
    key,
    n_blocks: int,
    done: np.ndarray,
    rows: np.ndarray,
    mesh,
    items_per_device: int,
    dtype,
    generator: str,
    on_chunk_done: Callable[[int, int, np.ndarray], None],
    progress: Callable[[SweepProgress], None] | None,
) -> int:
    """Fill `rows` for every point chunk not flagged in `done` ([group, chunk]).

    Items (group, point chunk, block) are taken point-chunk-major, ``mesh.size ·
    items_per_device`` per call (the last call padded with repeats that are
    discarded); a chunk never mixes groups. The next call is dispatched before the
    previous one's counts are read back. A point chunk is final once all its blocks
    are counted: its rows are stored and `on_chunk_done` is called.

    Returns:
      lane-samples computed.
    """
    fn = _item_fn(jnp.dtype(dtype).name, generator, traced)
    width = rows.shape[1]
    c = mesh.size * items_per_device
    todo = [np.flatnonzero(~done[gi, : g.n_chunks]) for gi, g in enumerate(groups)]
    n_todo = sum(len(t) for t in todo) * n_blocks

    def chunks():  # lazily: a million points × a thousand blocks is never a list
        for gi, pcs in enumerate(todo):
            items = ((gi, int(pc), b) for pc in pcs for b in range(n_blocks))
            while batch := list(itertools.islice(items, c)):
                yield batch

    sizes = [len(g.points) for g in groups]

    def real(gi, pc):
        return min(groups[gi].chunk, sizes[gi] - pc * groups[gi].chunk)

    points_done = sum(real(gi, pc) for gi, pc in zip_(*np.nonzero(done)))
    acc: dict[tuple[int, int], list] = {}
    t0 = time.perf_counter()
    n_done = samples = 0

    def dispatch(chunk):
        g = groups[chunk[0][0]]
        pad = chunk + [chunk[-1]] * (c - len(chunk))
        items = {
            "block": np.asarray([b for _, _, b in pad], np.uint32),
            "values": np.stack([g.chunk_values(pc) for _, pc, _ in pad]).astype(dtype),
        }
        return map_items(fn, key=key, items=items, mesh=mesh, args=(g.scenario,))

    queue = chunks()
    chunk = next(queue, None)
    pending = dispatch(chunk) if chunk else None
    while chunk:
        following = next(queue, None)
        nxt = dispatch(following) if following else None
        out = _to_rows(fetch_items(pending), width)  # [C, Pc, width]
        for j, (gi, pc, _) in enumerate(chunk):
            g, n_real = groups[gi], real(gi, pc)
            a = acc.setdefault((gi, pc), [np.zeros((g.chunk, width), np.int64), 0])
            a[0] += out[j]
            a[1] += 1
            samples += n_real * rng.BLOCK * g.scenario.system.lanes_per_engine
            if a[1] < n_blocks:
                continue
            part = acc.pop((gi, pc))[0][:n_real]
            idx = g.points[pc * g.chunk : pc * g.chunk + n_real]
            bad = np.flatnonzero(part[:, 2])
            if bad.size:
                n_bad = int(part[bad[0], 2])
                raise InvalidModelOutput(
                    _invalid_message(grid, int(idx[bad[0]]), n_bad), n_invalid=n_bad
                )
            rows[idx] = part
            done[gi, pc] = True
            points_done += n_real
            on_chunk_done(gi, pc, part)
        n_done += len(chunk)
        if progress is not None:
            elapsed = time.perf_counter() - t0
            progress(SweepProgress(points_done, len(rows), n_done, n_todo, samples, elapsed))
        pending, chunk = nxt, following
    return samples


# --------------------------------------------------------------------------- the run folder
def _record(scenario, grid, key, seed, n_blocks, dtype, generator, point_chunk) -> dict:
    """Everything that determines a sweep's numbers (compared on resume)."""
    v = _versions()
    return {
        "format": SWEEP_FORMAT,
        "scenario": scenario.to_toml(comments=False),
        "grid": grid.to_dict(),
        "seed": seed,
        "key": np.asarray(jax.random.key_data(key)).tobytes().hex(),
        "n_blocks": n_blocks,
        "numerics": {
            "dtype": jnp.dtype(dtype).name,
            "generator": generator,
            "point_chunk": point_chunk,
        },
        "versions": {"cpojax": v["cpojax"], "jax": v["jax"], "jaxlib": v["jaxlib"]},
    }


def _fingerprint(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


_WHAT = {
    "scenario": "the scenario (--config / --set)",
    "grid": "the grid (--grid / --zip)",
    "seed": "the seed",
    "key": "the random key",
    "n_blocks": "the number of engines (--engines)",
    "numerics": "the numerics (dtype, generator, point chunk)",
    "format": "the sweep format",
}


def _differences(old: Mapping, new: Mapping) -> list[str]:
    out = []
    for k, new_v in new.items():
        old_v = old.get(k)
        if k == "versions":
            if old_v != new_v:
                was = ", ".join(f"{n} {v}" for n, v in (old_v or {}).items())
                now = ", ".join(f"{n} {v}" for n, v in new_v.items())
                out.append(f"the cpojax/JAX version (was {was or 'unknown'}, now {now})")
        elif k == "seed" and old_v != new_v:
            out.append(f"the seed (was {old_v}, now {new_v})")
        elif k == "n_blocks" and old_v != new_v:
            out.append(f"--engines (was {old_v} blocks of {rng.BLOCK}, now {new_v})")
        elif old_v != new_v and not (k == "key" and old.get("seed") != new.get("seed")):
            out.append(_WHAT.get(k, k))
    return out


def _load_parts(rf: RunFolder, fp: str, groups: list[_Group], rows, done) -> None:
    """Mark the point chunks whose part files are complete and belong to this sweep."""
    folder = rf.file(_PARTS)
    for name in sorted(os.listdir(folder)):
        m = _PART_RE.match(name)
        if not m:
            if name.startswith(".tmp-"):  # a write cut short by a crash
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
            continue
        gi, pc = int(m.group(1)), int(m.group(2))
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                data = json.load(f)
            g = groups[gi]
            idx = g.points[pc * g.chunk : (pc + 1) * g.chunk]
            part = np.asarray(data["rows"], np.int64)
            ok = (
                data["fingerprint"] == fp
                and pc < g.n_chunks
                and data["points"] == idx.tolist()
                and part.shape == (len(idx), rows.shape[1])
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            ok = False
        if ok:
            rows[idx] = part
            done[gi, pc] = True


def _open_folder(stack, out, *, resume, force, record, fp, groups, rows, done) -> RunFolder:
    rf = stack.enter_context(RunFolder(out, resume=resume, force=force, outputs=SWEEP_FILES))
    parts = rf.file(_PARTS)
    if resume:
        st = rf.load_checkpoint()["state"]
        if st.get("kind") != "sweep":
            raise OutputError(
                f"--resume: {rf.file('state.json')} is not a sweep's checkpoint "
                "(another command wrote it); use another --out"
            )
        diffs = _differences(st.get("record") or {}, record)
        if diffs:
            raise OutputError(
                f"--resume refused: {'; '.join(diffs)} differ from the interrupted sweep in "
                f"{rf.path!r}; rerun it with the same arguments, or start afresh with --force"
            )
        if os.path.isdir(parts):
            _load_parts(rf, fp, groups, rows, done)
    elif os.path.isdir(parts):  # a fresh sweep: the previous run's chunks go
        for name in os.listdir(parts):
            with contextlib.suppress(IsADirectoryError, FileNotFoundError, PermissionError):
                os.unlink(os.path.join(parts, name))
    try:
        os.makedirs(parts, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {parts}: {e.strerror or e}") from None
    state = {"kind": "sweep", "fingerprint": fp, "next_block": 0, "totals": {}, "record": record}
    rf.save_checkpoint(state)
    return rf


def _share(ok: bool, rows: np.ndarray, done: np.ndarray) -> bool:
    """Process 0's status, rows and done flags on every process (in place)."""
    flat = np.concatenate([[int(ok)], done.ravel().astype(np.int64), rows.ravel()])
    got = distributed.broadcast(flat)
    done[...] = got[1 : 1 + done.size].reshape(done.shape).astype(bool)
    rows[...] = got[1 + done.size :].reshape(rows.shape)
    return bool(got[0])


# --------------------------------------------------------------------------- figures
def figure_name(grid: Grid) -> str | None:
    """File name of a sweep's figure: curves (one swept key, or zipped), heatmap (two),
    small multiples (three), or None (more). Keys with a single value do not count."""
    live = sum(len(v) > 1 for v in grid.values)
    if grid.zip or live <= 1:
        return "sweep_curves.png"
    return {2: "sweep_heatmap.png", 3: "sweep_multiples.png"}.get(live)


def figures(table: SweepTable, target_yield: float = 0.9) -> dict[str, Any]:
    """The figures of a sweep, by file name (:func:`figure_name`).

    Curves: yield at every level with its 95 % band against the swept key (against
    the point index for a zipped grid). Heatmap: the table's level over two keys
    with the `target_yield` contour. Small multiples: that heatmap for every value
    of the third key, on one colour scale.
    """
    g = table.grid
    name = figure_name(g)
    live = [j for j, v in enumerate(g.values) if len(v) > 1]
    if name == "sweep_curves.png":
        j = live[0] if live and not g.zip else 0
        x = np.arange(len(table)) if g.zip else table.data[g.keys[j]]
        bands = {lv: table.yields(lv) for lv in LEVELS}
        xlabel = "point (zipped: " + ", ".join(g.keys) + ")" if g.zip else g.keys[j]
        return {name: plots.sweep_curves(x, bands, xlabel=xlabel)}
    if name is None:
        return {}
    y = table.yields()[0].reshape(g.shape)
    y = y.squeeze(axis=tuple(j for j in range(len(g.shape)) if j not in live))
    axes = [np.asarray(g.values[j], float) for j in live]
    names = [g.keys[j] for j in live]
    kw = {"xlabel": names[0], "ylabel": names[1], "level": table.level, "target": target_yield}
    if len(live) == 2:
        return {name: plots.sweep_heatmap(axes[0], axes[1], y, **kw)}
    panels = [(f"{names[2]} = {v:g}", y[:, :, k]) for k, v in enumerate(axes[2])]
    return {name: plots.sweep_small_multiples(axes[0], axes[1], panels, **kw)}


def write_outputs(rf: RunFolder, table: SweepTable, scenario: Scenario, target_yield: float):
    """sweep.json, sweep.csv, scenario.toml and the figures of a finished sweep."""
    rf.write_json("sweep.json", table.to_dict())
    rf.write_text("sweep.csv", table.to_csv())
    rf.write_text("scenario.toml", scenario.to_toml())
    for name, fig in figures(table, target_yield).items():
        rf.save_figure(name, fig)


# --------------------------------------------------------------------------- the API
def sweep(
    scenario: Scenario,
    grid: Mapping[str, Any],
    *,
    key=None,
    seed: int | None = 0,
    n_engines: int = 16_384,
    level: str = "engine",
    method: str = "mc",
    zip: bool = False,
    devices=None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    structural: str = "group",
    point_chunk: int = 8,
    items_per_device: int = 1,
    dtype=jnp.float32,
    generator: str = "threefry",
    target_yield: float = 0.9,
    progress: Callable[[SweepProgress], None] | None = None,
    on_folder: Callable[[RunFolder], None] | None = None,
) -> SweepTable:
    """Lane / engine / switch yield at every point of a grid of scenario values.

    Args:
      scenario: the base scenario.
      grid: ``{dotted key: values}``, e.g. ``{"design.ring.heater_max_mw":
        np.linspace(30, 80, 20)}``; validated like ``--set``, every point before
        anything runs (:func:`make_grid`).
      key, seed: the random key, or the integer seed that makes it.
      n_engines: engines per point, rounded up to blocks of 4096; every point sees
        the same engines.
      level: the headline level (figures, terminal table); the table has all three.
      method: ``"mc"`` (streamed crude Monte Carlo; the only one for sweeps).
      zip: pair the i-th values of every key instead of the cartesian product.
      devices: None (every device, of every process under ``jax.distributed``), a
        device count or a list of devices. The numbers never depend on it.
      out: a run folder (written by process 0 only); see the module docstring.
      resume: finish the interrupted sweep in `out` (same arguments required).
      force: discard an unfinished run in `out`.
      structural: ``"group"`` (structural keys group the points) or ``"reject"``.
      point_chunk: grid points vmapped together per block (memory ∝ point_chunk);
        part of the numerics, like dtype: a different value may move floats by an ulp.
      items_per_device: (point chunk, block) items per device per call (speed only).
      dtype, generator: numerics of the physics and of :mod:`cpojax.rng`.
      target_yield: the contour drawn on heatmaps.
      progress: ``progress(SweepProgress)`` after every call (process 0 only).
      on_folder: called with the locked run folder before computing.

    Returns:
      :class:`SweepTable`, one row per point in grid order (the same on every process).

    Raises:
      ScenarioError: a bad grid (the message names the key); ValueError/TypeError:
      bad arguments; OutputError: unusable folder or refused resume;
      InvalidModelOutput: the model returned NaN/inf at some point (named).
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if method != "mc":
        raise ValueError(
            f"method={method!r}: sweeps support method='mc' only (the rare-event estimators "
            "adapt per point; call estimate_yield_rare per point instead)"
        )
    if structural not in ("group", "reject"):
        raise ValueError(f"structural must be 'group' or 'reject', got {structural!r}")
    point_chunk = as_count("point_chunk", point_chunk)
    items_per_device = as_count("items_per_device", items_per_device)
    if generator not in rng.GENERATORS:
        raise ValueError(f"generator must be one of {rng.GENERATORS}, got {generator!r}")
    if not (isinstance(target_yield, numbers.Real) and 0 < float(target_yield) < 1):
        raise ValueError(f"target_yield must be a number in (0, 1), got {target_yield!r}")
    for name, f in (("progress", progress), ("on_folder", on_folder)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be callable or None")
    if out is None and (resume or force):
        raise OutputError("resume/force need an output folder (out=...)")
    key, seed = resolve_key(key, seed)
    g = make_grid(scenario, grid, zip=zip, structural=structural)
    groups, traced = _groups(scenario, g, point_chunk)
    n_blocks = -(-n_engines // rng.BLOCK)
    multi = jax.process_count() > 1
    if multi and devices is not None:
        raise ValueError("devices must be None in a multi-process run (every process's devices)")
    devs = device_list(devices)
    if not multi:  # more devices than items would only compute padding
        devs = devs[: max(1, min(len(devs), max(x.n_chunks for x in groups) * n_blocks))]
    mesh = item_mesh(devs)
    record = _record(scenario, g, key, seed, n_blocks, dtype, generator, point_chunk)
    fp = _fingerprint(record)
    rows = np.zeros((len(g.points), _row_width(groups)), np.int64)
    done = np.zeros((len(groups), max(x.n_chunks for x in groups)), bool)
    main = jax.process_index() == 0
    with contextlib.ExitStack() as stack:
        rf = None
        try:
            if out is not None and main:
                rf = _open_folder(
                    stack, out, resume=resume, force=force, record=record, fp=fp,
                    groups=groups, rows=rows, done=done,
                )  # fmt: skip
                if on_folder is not None:
                    on_folder(rf)
        except Exception:
            if multi:
                _share(False, rows, done)
            raise
        if multi and not _share(True, rows, done):
            raise OutputError("process 0 could not use the output folder (see its message)")
        resumed = sum(
            min(x.chunk, len(x.points) - pc * x.chunk)
            for gi, x in enumerate(groups)
            for pc in range(x.n_chunks)
            if done[gi, pc]
        )

        def chunk_done(gi, pc, part):
            if rf is None:
                return
            x = groups[gi]
            idx = x.points[pc * x.chunk : pc * x.chunk + len(part)]
            body = {"fingerprint": fp, "group": gi, "chunk": pc}
            body |= {"points": idx.tolist(), "rows": part.tolist()}
            rf.write_text(f"{_PARTS}/g{gi:04d}-c{pc:07d}.json", strict_json(body))

        t0 = time.perf_counter()
        samples = _compute(
            grid=g, groups=groups, traced=traced, key=key, n_blocks=n_blocks, done=done,
            rows=rows, mesh=mesh, items_per_device=items_per_device, dtype=dtype,
            generator=generator, on_chunk_done=chunk_done,
            progress=progress if main else None,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        meta = {
            "scenario": record["scenario"],
            "seed": seed,
            "key": record["key"],
            "n_engines": n_blocks * rng.BLOCK,
            "method": method,
            **record["numerics"],
            "versions": _versions(),
            "run": {**distributed.describe(devs), "groups": len(groups)},
            "points_resumed": resumed,
            "wall_s": wall,
            "lane_samples_per_s": samples / wall if wall > 0 and samples else None,
            "fingerprint": fp,
        }
        table = _build_table(g, level, rows, _point_info(g, groups, n_blocks), meta)
        if rf is not None:
            write_outputs(rf, table, scenario, float(target_yield))
            state = {"kind": "sweep", "fingerprint": fp, "next_block": 0, "totals": {}}
            rf.save_checkpoint({**state, "record": record}, finished=True)
    return table


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
    """Lane / engine / switch yield as a function of one continuous scenario value.

    A thin wrapper over :func:`sweep` (one key, structural keys refused) that keeps
    the original dict form.

    Args:
      scenario: base scenario.
      param: dotted key of a continuous value, e.g. ``window.engine_temp_max_c``.
      values: grid of values (validated like ``--set``).
      n_engines: engines per grid point (rounded up to whole blocks).

    Returns:
      dict with ``param``, ``values``, ``n_engines`` and, per level, ``yield`` and
      ``ci`` lists.

    Raises:
      InvalidModelOutput: the model returned NaN/inf at some grid value.
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    try:
        vals = [float(v) for v in np.asarray(values, dtype=object).ravel()]
    except (TypeError, ValueError):
        raise TypeError(f"values must be a sequence of numbers, got {values!r}") from None
    if not vals:
        raise ValueError("values must be a non-empty sequence")
    t = sweep(
        scenario, {param: vals}, key=key, seed=seed, n_engines=n_engines, dtype=dtype,
        structural="reject",
    )  # fmt: skip
    out: dict[str, Any] = {"param": param, "values": vals, "n_engines": t.meta["n_engines"]}
    for lv in LEVELS:
        y, lo, hi = t.yields(lv)
        out[lv] = {"yield": y.tolist(), "ci": [[a, b] for a, b in zip_(lo.tolist(), hi.tolist())]}
    return out
