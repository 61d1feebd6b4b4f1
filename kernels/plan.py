"""Static plan and in-kernel hierarchy of the fused yield kernel (:mod:`cpojax.kernels.yield_block`).

:class:`Plan` holds what is static about a scenario for the kernel (columns, groups,
Cholesky factors, truncation bounds, lever arms); the functions build, inside a kernel
program, the counter-stream normals of a tile's columns, their correlation and
truncation, the :class:`~cpojax.physics.link.Deviations` of every lane and the rigid
fiber array — the arithmetic of :mod:`cpojax.variation`, addressed by static indices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from cpojax.kernels.special import ndtri
from jax.scipy.special import ndtr

from cpojax import rng, variation
from cpojax.estimators.stats import norm_cdf
from cpojax.physics import fiber_array
from cpojax.physics.link import Deviations
from cpojax.scenario import Scenario

__all__ = [
    "Plan",
    "columns",
    "correlate",
    "deviations",
    "iota",
    "isum",
    "make_plan",
    "parity",
    "rigid",
    "truncate",
]


# --------------------------------------------------------------------------- static plan
@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about a scenario's kernel (hashable: the kernel cache key)."""

    treedef: object
    n_params: int
    lanes: int
    lanes_per_laser: int
    n_shared: int
    n_lane: int
    n_laser: int
    engine_dim: int
    variables: tuple[str, ...]
    fields: tuple[str, ...]
    var_of_field: tuple[str, ...]
    shared_col: tuple[int, ...]
    own_col: tuple[int, ...]
    var_of_shared: tuple[str, ...]
    var_of_own: tuple[str, ...]
    trunc: tuple[tuple[str, float], ...]  # truncate_sigma per variable (static)
    chol: tuple  # (wafer, die, lane, laser): (cols, matrix as nested tuples) or None
    system: object
    fiber_map: str | None
    spare_lanes: int


def _chol_static(entries, pairs):
    if not entries:
        return None
    names, cols = variation.single_columns(pairs)
    m = variation.cholesky(entries, names)
    return (tuple(cols), tuple(tuple(float(x) for x in row) for row in m))


def make_plan(scenario: Scenario) -> Plan:
    leaves, treedef = jax.tree_util.tree_flatten(scenario)
    for x in leaves:
        if not isinstance(x, float | int | np.floating | np.integer) and np.ndim(x) != 0:
            raise ValueError("the Pallas yield kernel needs a scenario of scalar values")
    lay = variation.layout(scenario)
    fields, var_f, shared_col, own_col, var_s, var_o = variation.column_plan(lay)
    names = [v.name for v in variation.VARIABLES]
    corr = scenario.correlation
    lane_e = laser_e = ()
    if corr.lane:
        lane_names, _ = variation.single_columns(lay.lane)
        laser_names, _ = variation.single_columns(lay.laser)
        lane_e = tuple(e for e in corr.lane if e[0] in lane_names and e[1] in lane_names)
        laser_e = tuple(e for e in corr.lane if e[0] in laser_names and e[1] in laser_names)
        if len(lane_e) + len(laser_e) != len(corr.lane):
            raise ValueError("correlation.lane mixes a per-lane and a per-laser variable")
    return Plan(
        treedef=treedef,
        n_params=len(leaves),
        lanes=lay.lanes,
        lanes_per_laser=lay.lanes_per_laser,
        n_shared=lay.n_shared,
        n_lane=len(lay.lane),
        n_laser=len(lay.laser),
        engine_dim=lay.engine_dim,
        variables=lay.variables,
        fields=tuple(fields),
        var_of_field=tuple(names[i] for i in var_f),
        shared_col=tuple(int(i) for i in shared_col),
        own_col=tuple(int(i) for i in own_col),
        var_of_shared=tuple(names[i] for i in var_s),
        var_of_own=tuple(names[i] for i in var_o),
        trunc=tuple((n, float(getattr(scenario.spread, n).truncate_sigma)) for n in lay.variables),
        chol=(
            _chol_static(corr.wafer, lay.shared),
            _chol_static(corr.die, lay.shared),
            _chol_static(lane_e, lay.lane),
            _chol_static(laser_e, lay.laser),
        ),
        system=scenario.system,
        fiber_map=lay.fiber_map,
        spare_lanes=int(scenario.system.spare_lanes),
    )


# --------------------------------------------------------------------------- kernel pieces
def columns(k0, k1, b, row, base, count: int, n_pairs: int, parity_static):
    """uint32 words of columns base … base + count − 1 of the counter stream.

    ``base`` is a uint32 array (per lane) or int; ``row`` uint32[1, T]. Column c of row r
    is word (c mod 2) of threefry(k, (b, r·n_pairs + c // 2)) (:func:`rng.counter_normals`).
    Each threefry call serves two consecutive columns; where the parity of ``base`` is not
    static, each column picks its word with a select.
    """
    half = (base >> 1) if not isinstance(base, int) else base // 2
    n_calls = (count + 1) // 2 if parity_static == 0 else count // 2 + 1
    words = []
    for h in range(n_calls):
        pair = row * jnp.uint32(n_pairs) + (
            half + h if isinstance(half, int) else half + jnp.uint32(h)
        )
        pair = jnp.asarray(pair, jnp.uint32)
        w0, w1 = rng.threefry2x32(k0, k1, jnp.broadcast_to(b, pair.shape), pair)
        words += [w0, w1]
    if parity_static == 0:
        return words[:count]
    if parity_static == 1:
        return words[1 : count + 1]
    odd = (base & jnp.uint32(1)) == jnp.uint32(1)
    return [jnp.where(odd, words[j + 1], words[j]) for j in range(count)]


def parity(bases: np.ndarray) -> int | None:
    p = set((np.asarray(bases) % 2).tolist())
    return p.pop() if len(p) == 1 else None


def correlate(cols: list, chol):
    """Columns ``cols[i]`` mixed by a static lower Cholesky factor (variation._correlate)."""
    if chol is None:
        return cols
    idx, m = chol
    sub = [cols[i] for i in idx]
    out = list(cols)
    for a, i in enumerate(idx):
        acc = None
        for b_, x in enumerate(sub):
            t = jnp.asarray(m[a][b_], x.dtype) * x
            acc = t if acc is None else acc + t
        out[i] = acc
    return out


def truncate(cols: list, ks: Sequence[float], dtype, ndtr=ndtr):
    """variation._truncate_cols, column by column (``ndtr``: see :func:`_tile_counts`)."""
    out = []
    for x, k in zip(cols, ks, strict=True):
        if k > 0:
            lo = norm_cdf(-float(k))
            p = jnp.asarray(lo, dtype) + ndtr(x) * jnp.asarray(1.0 - 2.0 * lo, dtype)
            x = ndtri(p).astype(dtype)
        out.append(x)
    return out


def deviations(
    plan: Plan, sc: Scenario, w, d, lane_c, laser_c, dtype, shape, ndtr=ndtr
) -> Deviations:
    """variation._build on column lists (w, d: [1, T]; lane_c, laser_c: [L or 1, T])."""
    w = correlate(w, plan.chol[0])
    d = correlate(d, plan.chol[1])
    lane_c = correlate(lane_c, plan.chol[2])
    laser_c = correlate(laser_c, plan.chol[3])
    own = lane_c + laser_c
    ks = dict(plan.trunc)
    w = truncate(w, [ks[v] for v in plan.var_of_shared], dtype, ndtr)
    d = truncate(d, [ks[v] for v in plan.var_of_shared], dtype, ndtr)
    own = truncate(own, [ks[v] for v in plan.var_of_own], dtype, ndtr)

    def sig(v, level):
        return jnp.asarray(getattr(getattr(sc.spread, v), level), dtype)

    shared = [
        sig(v, "wafer") * w[i] + sig(v, "die") * d[i] for i, v in enumerate(plan.var_of_shared)
    ]
    out = {}
    for f, v, sc_i, oc_i in zip(
        plan.fields, plan.var_of_field, plan.shared_col, plan.own_col, strict=True
    ):
        out[f] = jnp.broadcast_to(shared[sc_i] + sig(v, "lane") * own[oc_i], shape)
    zero = jnp.zeros(shape, dtype)
    return Deviations(**{f.name: out.get(f.name, zero) for f in dataclasses.fields(Deviations)})


def rigid(plan: Plan, sc: Scenario, dev: Deviations, arms, dtype) -> Deviations:
    """variation._rigid_array with the lever arms as [L, 1] columns."""
    if plan.fiber_map is None:
        return dev
    pitch = jnp.asarray(sc.design.fiber_array.pitch_um, dtype)
    upd = {}
    for (ox, gap), arm in zip(fiber_array.FIBER_FIELDS, arms, strict=True):
        dy, dz = fiber_array.rigid_body_shift_um(
            x_um=arm * pitch, roll_mrad=dev.array_roll_mrad, yaw_mrad=dev.tilt_x_mrad
        )
        upd[ox] = getattr(dev, ox) + dy
        upd[gap] = getattr(dev, gap) + dz
    return dataclasses.replace(dev, **upd)


def iota(dtype, n: int, axis: int):
    """0 … n − 1 along `axis` of a [n, 1] or [1, n] array: a 1-D iota and a broadcast (the
    Triton lowering of Pallas takes 1-D iotas only)."""
    shape = (n, 1) if axis == 0 else (1, n)
    return jax.lax.broadcast_in_dim(jax.lax.iota(dtype, n), shape, (axis,))


def isum(x):
    return jnp.sum(x.astype(jnp.int32), dtype=jnp.int32)
