"""The crude Monte Carlo yield block as one fused Pallas kernel (docs/kernels.md).

One program of the kernel takes ``tile`` engines of one block of :data:`cpojax.rng.BLOCK`
engines and, without touching memory between the steps:

1. draws their standard normals in-kernel with the ``"counter"`` generator of
   :mod:`cpojax.rng` (Threefry-2x32-20 on uint32 words, inverse-CDF normals: the same
   functions, :func:`cpojax.rng.threefry2x32` and :func:`cpojax.rng.normals_from_bits`,
   on the same counters, so bit-identical to ``rng.block_normals(generator="counter")``);
2. builds the hierarchy (wafer, die, lane, laser → :class:`~cpojax.physics.link.Deviations`)
   from static column indices of :func:`cpojax.variation.layout` — the same arithmetic as
   :mod:`cpojax.variation`, with the per-lane and per-laser columns addressed by a lane
   index instead of a gather;
3. evaluates every lane at every corner through the fast formulation of the limit states
   (:mod:`cpojax.physics.limits`: ``limit_front``/``lock_shift``/``limit_back``, or
   ``lane_limits``; elementwise on the tile), with the engine-level thermal crosstalk
   (I + C)·q = s solved as a matrix–vector product with (I + C)⁻¹ computed outside;
4. evaluates the engine's die-only probe lane (wafer + die deviations only);
5. reduces to integer counters per program (:data:`COUNTERS`).

The tile is laid out [lanes, engines]: lanes on the first axis (static, ``L`` of the
scenario), engines on the second. Everything is elementwise, a broadcast, an iota or a
reduction over one axis — no gathers, no value slicing, no scatters — which is what the
Triton (GPU) lowering of Pallas accepts. Scalars (key words, block number, scenario
values) come in through small input refs and are read by static index.

Counters, per program: ``lane_fail``, ``state_fail[K]``, ``thermal_red_fail``,
``invalid``, ``invalid_state[K]``, ``invalid_probe``, ``engine_fail``,
``nfail_hist[L + 1]``, ``prefix_fail[L]``, ``die_fail_engines``: the counters of
:func:`cpojax.counters.block_fn` that decide the yields and the failure modes. The
histograms of g and the attribution sums are not computed here.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from cpojax.kernels import hoist as kh
from cpojax.kernels import plan as kp
from cpojax.kernels import special
from cpojax.kernels.special import normals_from_bits
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton
from jax.scipy.special import ndtr

from cpojax import rng
from cpojax.physics import fiber_array, thermal
from cpojax.physics import limits as fast
from cpojax.scenario import Scenario

__all__ = ["COUNTERS", "block_counts", "counter_layout", "default_tile"]

#: Threefry rows of :func:`cpojax.rng.counter_normals`: one counter per pair of columns.
_THERMAL = 1  # column of the thermal limit state (cpojax.model.LIMIT_NAMES order)


_SCALAR = frozenset(
    {"lane_fail", "thermal_red_fail", "invalid", "invalid_probe", "engine_fail", "die_fail_engines"}
)


def counter_layout(lanes: int, k: int = 4) -> tuple[tuple[str, int], ...]:
    """(name, length) of each counter in the kernel's output vector, in order."""
    return (
        ("lane_fail", 1),
        ("state_fail", k),
        ("thermal_red_fail", 1),
        ("invalid", 1),
        ("invalid_state", k),
        ("invalid_probe", 1),
        ("engine_fail", 1),
        ("nfail_hist", lanes + 1),
        ("prefix_fail", lanes),
        ("die_fail_engines", 1),
    )


#: Names of the counters the kernel returns (a subset of the XLA block's counters).
COUNTERS: tuple[str, ...] = tuple(n for n, _ in counter_layout(1))


def _pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def default_tile(interpret: bool) -> int:
    """Engines per program: a whole block in interpret mode (one vectorised body per block
    on the CPU), 256 on a GPU (8 lanes × 256 engines = 2048 lanes per program)."""
    return rng.BLOCK if interpret else 256


def smoothed_lane_failure(g, tau: float):
    """1 − Π_k σ(g_k/τ) per lane (the ``"product"`` smoothing of
    :mod:`cpojax.estimators.gradients`), from the tuple of limit states g; the logistic
    as σ(x) = ½(1 + tanh(x/2)), whose derivative stays finite for |g| up to the clamp."""
    p = None
    for x in g:
        s = 0.5 * (1.0 + jnp.tanh(x * (0.5 / tau)))
        p = s if p is None else p * s
    return 1.0 - p


def _tile_counts(
    plan: kp.Plan, dtype, k0, k1, b, row, params, table, minv_cols, n_out: int, tau=None, exact=True
):
    """Counter vector int32[1, n_out] of the engines ``row`` (uint32[1, T]) of block b.

    ``params``: the scenario's leaves (scalars); ``table``: [L, 1] columns (lane position,
    lever arms tx, rx, laser-in); ``minv_cols``: column j of (I + C)⁻¹ as [L, 1] (or ()).
    ``exact``: Φ of the truncated columns by ``jax.scipy.special.ndtr`` (``erf``/``erfc``,
    bit-identical to the XLA path; interpret mode), else by
    :func:`cpojax.kernels.special.ndtr_elementary` (exp and arithmetic only: the Triton
    lowering has no ``erf``).
    """
    L, t = plan.lanes, row.shape[-1]
    shape = (L, t)
    sc = jax.tree_util.tree_unflatten(plan.treedef, params)
    sy = plan.system
    s, p, q = plan.n_shared, plan.n_lane, plan.n_laser
    n_pairs = (plan.engine_dim + 1) // 2
    lane_i = kp.iota(jnp.uint32, L, 0)  # [L, 1]

    def normals(words):
        return [normals_from_bits(x).astype(dtype) for x in words]

    shared = normals(kp.columns(k0, k1, b, row, 0, 2 * s, n_pairs, 0))
    w, d = shared[:s], shared[s:]
    lane_base = np.arange(L) * p + 2 * s
    lane_c = normals(
        kp.columns(
            k0,
            k1,
            b,
            row,
            jnp.uint32(2 * s) + lane_i * jnp.uint32(p),
            p,
            n_pairs,
            kp.parity(lane_base),
        )
    )
    laser_base = 2 * s + L * p + (np.arange(L) // plan.lanes_per_laser) * q
    laser_c = normals(
        kp.columns(
            k0,
            k1,
            b,
            row,
            jnp.uint32(2 * s + L * p)
            + (lane_i // jnp.uint32(plan.lanes_per_laser)) * jnp.uint32(q),
            q,
            n_pairs,
            kp.parity(laser_base),
        )
    )
    cdf = ndtr if exact else special.ndtr_elementary
    dev = kp.deviations(plan, sc, w, d, lane_c, laser_c, dtype, shape, cdf)
    pos, arms = table[0], table[1:4]
    dev = kp.rigid(plan, sc, dev, arms, dtype)

    kw = dict(system=sy, window=sc.window, limits=sc.limits)
    if sy.thermal_coupling:
        front = fast.limit_front(
            design=sc.design, dev=dev, dtype=dtype, lane_position=jnp.broadcast_to(pos, shape), **kw
        )
        neigh = []
        for s_k in fast.lock_shift(front):
            # q = (I + C)⁻¹ s along the lane axis: row j of s by a one-hot reduction.
            qk = None
            for j, col in enumerate(minv_cols):
                s_j = jnp.sum(jnp.where(lane_i == jnp.uint32(j), s_k, 0.0), axis=0, keepdims=True)
                term = col * s_j
                qk = term if qk is None else qk + term
            neigh.append(s_k - qk)
        lim = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), sc.limits)
        g, red = fast.limit_back(front, system=sy, limits=lim, neighbour_shift_nm=tuple(neigh))
    else:
        g, red = fast.lane_limits(design=sc.design, dev=dev, dtype=dtype, **kw)

    # die-only probe: the engine's wafer + die deviations, lane and laser normals at zero
    zeros1 = jnp.zeros((1, t), dtype)
    dev_die = kp.deviations(plan, sc, w, d, [zeros1] * p, [zeros1] * q, dtype, (1, t), cdf)
    g_die, _ = fast.lane_limits(design=sc.design, dev=dev_die, dtype=dtype, **kw)

    fail_k = [x < 0 for x in g]
    finite_k = [jnp.isfinite(x) for x in g]
    finite = functools.reduce(jnp.logical_and, finite_k)
    lane_fail = functools.reduce(jnp.logical_or, fail_k) | ~finite  # [L, T]
    nf = jnp.sum(lane_fail.astype(jnp.int32), axis=0, keepdims=True, dtype=jnp.int32)  # [1, T]
    eng_fail = nf > plan.spare_lanes
    first = jnp.min(
        jnp.where(lane_fail, lane_i.astype(jnp.int32), jnp.int32(L)), axis=0, keepdims=True
    )
    die_fail = functools.reduce(jnp.logical_or, [x < 0 for x in g_die])
    die_finite = functools.reduce(jnp.logical_and, [jnp.isfinite(x) for x in g_die])

    vals = [kp.isum(lane_fail)]
    vals += [kp.isum(f) for f in fail_k]
    vals.append(kp.isum(fail_k[_THERMAL] & (red > 0.5)))
    vals.append(kp.isum(~finite))
    vals += [kp.isum(~f) for f in finite_k]
    vals.append(kp.isum(~die_finite))
    vals.append(kp.isum(eng_fail))
    vals += [kp.isum(nf == k) for k in range(L + 1)]
    vals += [kp.isum(first <= k) for k in range(L)]
    vals.append(kp.isum(die_fail & eng_fail))
    slot = kp.iota(jnp.int32, n_out, 1)
    out = jnp.zeros((1, n_out), jnp.int32)
    for i, v in enumerate(vals):
        out = out + jnp.where(slot == i, v, jnp.int32(0))
    if tau is None:
        return out
    sm = jnp.sum(smoothed_lane_failure(g, tau), axis=0, keepdims=True)
    return out, jnp.sum(sm, axis=1, keepdims=True)  # [1, 1]


# --------------------------------------------------------------------------- pallas_call
def _n_counters(lanes: int) -> int:
    return sum(n for _, n in counter_layout(lanes))


@functools.lru_cache(maxsize=32)
def kernel_call(
    plan: kp.Plan, dtype_name: str, n_blocks: int, tile: int, interpret: bool, tau=None
):
    """Jitted ``(words u32[4], params f[NP], table f[4, L, 1], minv f[L, L, 1]) ->
    per-block counters int32[n_blocks, n_counters]`` (and, with ``tau``, the per-block
    sums of :func:`smoothed_lane_failure`, f[n_blocks])."""
    dtype = jnp.dtype(dtype_name)
    L = plan.lanes
    if tile < 1 or rng.BLOCK % tile:
        raise ValueError(f"tile must divide BLOCK={rng.BLOCK}, got {tile}")
    n_tiles = rng.BLOCK // tile
    n_cnt = _n_counters(L)
    n_out = _pow2(n_cnt)
    coupled = bool(plan.system.thermal_coupling)
    n_minv = L if coupled else 0

    def body(params, k0, k1, b, row, table, minv_cols):
        return _tile_counts(
            plan, dtype, k0, k1, b, row, params, table, minv_cols, n_out, tau=tau, exact=interpret
        )

    sds = jax.ShapeDtypeStruct
    col = sds((L, 1), dtype)
    closed = jax.make_jaxpr(body)(
        [sds((), dtype)] * plan.n_params,
        sds((), jnp.uint32),
        sds((), jnp.uint32),
        sds((), jnp.uint32),
        sds((1, tile), jnp.uint32),
        [col] * 4,
        [col] * n_minv,
    )
    jaxpr = closed.jaxpr
    hoisted, staged, residuals = kh.split_jaxpr(closed, plan.n_params)
    consts = dict(zip(jaxpr.constvars, closed.consts, strict=True))
    groups: dict[str, list] = {}
    for v in residuals:
        groups.setdefault(kh.res_dtype(v.aval.dtype), []).append(v)
    group_names = sorted(groups)
    slot = {v: (g, i) for g in group_names for i, v in enumerate(groups[g])}

    def hoist(params):
        env = dict(consts)
        env.update(zip(jaxpr.invars[: plan.n_params], params, strict=True))
        for eqn in hoisted:
            outs = kh.eval_eqn(eqn, [kh.read(env, v) for v in eqn.invars])
            env.update(zip(eqn.outvars, outs, strict=True))
        vecs = []
        for g in group_names:
            xs = [jnp.asarray(env[v]).astype(g) for v in groups[g]]
            xs += [jnp.zeros((), g)] * (_pow2(len(xs)) - len(xs))
            vecs.append(jnp.stack(xs))
        return vecs

    n_res = len(group_names)

    def kernel(words_ref, table_ref, minv_ref, *refs):
        res_refs, out_refs = refs[:n_res], refs[n_res:]
        i, t = pl.program_id(0), pl.program_id(1)
        k0, k1 = words_ref[0], words_ref[1]
        b = words_ref[2] + i.astype(jnp.uint32)
        row0 = t.astype(jnp.uint32) * jnp.uint32(tile)
        row = row0 + kp.iota(jnp.uint32, tile, 1)
        env = {v: c for v, c in consts.items() if np.ndim(c) == 0}
        for v, (g, j) in slot.items():
            x = res_refs[group_names.index(g)][j]
            env[v] = (x != 0) if v.aval.dtype == jnp.bool_ else x
        ins = jaxpr.invars[plan.n_params :]
        vals = [k0, k1, b, row, *[table_ref[j] for j in range(4)]]
        vals += [minv_ref[j] for j in range(n_minv)]
        env.update(zip(ins, vals, strict=True))
        for eqn in staged:
            outs = kh.eval_eqn(eqn, [kh.read(env, v) for v in eqn.invars])
            env.update(zip(eqn.outvars, outs, strict=True))
        for ref, v in zip(out_refs, jaxpr.outvars, strict=True):
            ref[...] = kh.read(env, v)

    def full(shape):
        return pl.BlockSpec(shape, lambda i, t, n=len(shape): (0,) * n)

    res_specs = [full((_pow2(len(groups[g])),)) for g in group_names]
    n_prog = n_blocks * n_tiles
    out_shape = [jax.ShapeDtypeStruct((n_prog, n_out), jnp.int32)]
    out_specs = [pl.BlockSpec((1, n_out), lambda i, t: (i * n_tiles + t, 0))]
    if tau is not None:
        out_shape.append(jax.ShapeDtypeStruct((n_prog, 1), dtype))
        out_specs.append(pl.BlockSpec((1, 1), lambda i, t: (i * n_tiles + t, 0)))
    call = pl.pallas_call(
        kernel,
        out_shape=tuple(out_shape),
        grid=(n_blocks, n_tiles),
        in_specs=[full((4,)), full((4, L, 1)), full((L, L, 1)), *res_specs],
        out_specs=tuple(out_specs),
        interpret=interpret,
        # the Triton backend (JAX's GPU default may be Mosaic GPU, which wants TMA-sized
        # copies and warpgroup layouts that this elementwise kernel does not use)
        compiler_params=None if interpret else pltriton.CompilerParams(num_warps=4),
        name="cpojax_yield_block",
    )

    @jax.jit
    def run(words, params, table, minv):
        res = hoist([params[j] for j in range(plan.n_params)])
        outs = call(words, table, minv, *res)
        counts = jnp.sum(outs[0].reshape(n_blocks, n_tiles, n_out), axis=1, dtype=jnp.int32)
        if tau is None:
            return counts[:, :n_cnt]
        return counts[:, :n_cnt], jnp.sum(outs[1].reshape(n_blocks, n_tiles), axis=1)

    run.n_hoisted, run.n_staged, run.n_residuals = len(hoisted), len(staged), len(residuals)
    return run


def kernel_inputs(plan: kp.Plan, scenario: Scenario, dtype):
    """(params f[NP], table f[4, L, 1], minv f[L, L, 1]) for the kernel."""
    leaves = jax.tree_util.tree_leaves(scenario)
    n_par = _pow2(plan.n_params)
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        params = jnp.concatenate(
            [
                jnp.stack([jnp.asarray(x, dtype) for x in leaves]),
                jnp.zeros((n_par - len(leaves),), dtype),
            ]
        )
    else:  # one host array, one transfer (each value rounded once to dtype, as jnp does)
        params = np.zeros(n_par, dtype)
        params[: len(leaves)] = np.asarray([np.asarray(x, np.float64) for x in leaves])
    L = plan.lanes
    pos = thermal.lane_positions(L)
    if plan.fiber_map is not None:
        arms = fiber_array.slot_offsets(L, plan.lanes_per_laser, plan.fiber_map)
    else:
        arms = (np.zeros(L),) * 3
    table = jnp.asarray(np.stack([pos, *arms])[..., None], dtype)
    if plan.system.thermal_coupling:
        th = scenario.design.thermal
        c1 = jnp.asarray(th.crosstalk_nn, dtype)
        c2 = jnp.asarray(th.crosstalk_nnn, dtype)
        minv = jnp.linalg.inv(thermal.coupling_matrix(L, c1, c2))  # as thermal.coupled_shifts_nm
        minv = minv.T[..., None]  # minv[j] = column j, [L, 1]
    else:
        minv = jnp.zeros((L, L, 1), dtype)
    return params, table, minv


def block_counts(
    scenario: Scenario,
    key,
    start_block: int,
    n_blocks: int,
    *,
    dtype=jnp.float32,
    interpret: bool = False,
    tile: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-block counters of blocks ``start_block … start_block + n_blocks − 1`` from the
    fused kernel, as {name: int32[n_blocks, ...]} (names: :data:`COUNTERS`).

    Args:
      scenario: the scenario (scalar values).
      key: the run's root ``jax.random`` key (the ``"counter"`` generator's key).
      start_block, n_blocks: the blocks (each :data:`cpojax.rng.BLOCK` engines).
      dtype: float dtype of the physics (the normals are float32, cast to it).
      interpret: run the kernel in Pallas interpret mode (CPU; slow, for tests).
      tile: engines per program (divides BLOCK); default :func:`default_tile`.
    """
    launch = launcher(scenario, key, dtype=dtype, interpret=interpret, tile=tile)
    return split_counters(np.asarray(launch(start_block, n_blocks)), launch.lanes)


def launcher(scenario: Scenario, key, *, dtype=jnp.float32, interpret=False, tile=None):
    """``launch(start_block, n_blocks) -> int32[n_blocks, n_counters]`` (a device array,
    dispatched asynchronously), with the scenario's inputs prepared once; ``launch.lanes``
    is the engine's lane count (for :func:`split_counters`)."""
    plan = kp.make_plan(scenario)
    tile = default_tile(interpret) if tile is None else int(tile)
    dt = jnp.dtype(dtype)
    inputs = kernel_inputs(plan, scenario, dt)
    k0, k1 = (int(w) for w in rng.key_words(key))

    def launch(start_block: int, n_blocks: int):
        run = kernel_call(plan, dt.name, int(n_blocks), tile, bool(interpret))
        words = np.asarray([k0, k1, int(start_block), 0], np.uint32)
        return run(words, *inputs)

    launch.lanes = plan.lanes
    return launch


def split_counters(vec: np.ndarray, lanes: int) -> dict[str, np.ndarray]:
    """{name: counts} from counter vectors [..., n_counters] (scalars for length-1 counters)."""
    out, i = {}, 0
    for name, n in counter_layout(lanes):
        out[name] = vec[..., i] if name in _SCALAR else vec[..., i : i + n]
        i += n
    return out
