"""The seam: a Scenario becomes limit-state functions ``g(u)`` of standard normals.

Every analysis — crude Monte Carlo yield, rare-event yield, sensitivities, the
process optimizer, sweeps and the fused kernels — sees the photonics only through
the functions of this module; the estimators on the other side know nothing of
photonics (``g(u: f[n, dim]) -> f[n, k]``, failure where any column is < 0).

Data flow for one engine (docs/model.md#process-variation, #limit-states)::

    u: f[engine_dim] ──variation.engine_deviations──► Deviations [lanes]
        ──(engine-level effects)──► physics.link.lane_budget per lane and corner
        ──► g: f[lanes, K]   (K = N_LIMIT limit states, LIMIT_STATES order)

Levels:

* ``"lane"``: u ∈ R^{lane_dim} (the lane's wafer, die, own and laser normals) →
  g ∈ R^K;
* ``"engine"``: u ∈ R^{engine_dim} → g ∈ R^{lanes·K}, column ``lane·K + k``; an
  engine fails when any lane fails (spare lanes are counted by the Monte Carlo
  engine, not by this union);
* ``"switch"``: u ∈ R^{engines_per_switch·engine_dim} → the union over the
  switch's engines, each an independent draw from the population (the same
  assumption as :func:`cpojax.levels.switch_from_engine`).

Engine-level physics (effects that couple the lanes of one engine, such as
heater-to-heater thermal crosstalk or an on-die temperature map) acts in
:func:`engine_g`, between the per-lane deviations and the per-lane link budget,
where all lanes of an engine are in one array.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from cpojax import variation
from cpojax.physics import limits as fast
from cpojax.physics import link, thermal
from cpojax.physics.link import Budget, Deviations, lane_budget
from cpojax.scenario import Scenario, with_values

__all__ = [
    "LEGACY",
    "LEVELS",
    "LIMIT_NAMES",
    "LIMIT_STATES",
    "N_LIMIT",
    "LimitState",
    "dim",
    "engine_budget",
    "engine_g",
    "engine_limits",
    "lane_budget_of",
    "lane_g",
    "lane_limits",
    "legacy_scenario",
    "limit_of_column",
    "limit_state",
    "parametric_limit_state",
]

LEVELS = ("lane", "engine", "switch")

#: Dotted keys that switch every Physics-II effect (issue 9) off and restore the former
#: default values: ``legacy_scenario()`` is the model before issue 9, and its seeded yield
#: counters are bit-identical to that model's (the heater-order fix of item 1 changes only
#: the power histogram of thermally failing lanes). Apply it on top of any older scenario
#: file to reproduce that scenario's former numbers.
LEGACY: Mapping[str, Any] = MappingProxyType(
    {
        "system.laser_mode": "paired",
        "system.els_power_control": False,
        "system.els_cooled": False,
        "system.self_heating": False,
        "system.fiber_array": "translation",
        "system.thermal_coupling": False,
        "system.ring_response": "first_order",
        "system.pam4_levels": "outer",
        "system.extra_spreads": False,
        "system.functional_yield": False,
        "system.symbol_rate_gbd": 106.25,
        "limits.ber_threshold": 2.4e-4,
        "design.receiver.tia_noise_ua": 3.5,
        "design.receiver.noise_bw_ghz": 53.0,
        "design.ring.tx_penalty_db": 0.0,
        "design.ring.heater_max_mw": 46.0,
        "design.channel.plant_loss_db": 2.0,
        "design.laser.supply_efficiency": 0.5,
        "design.els.eol_guard_db": 0.0,
    }
)


def legacy_scenario(base: Scenario | None = None) -> Scenario:
    """`base` (default: the default scenario) with :data:`LEGACY` applied."""
    return (Scenario.default() if base is None else base).replace(dict(LEGACY))


class LimitState(NamedTuple):
    """One limit state: g >= 0 passes.

    Attributes:
      name: short name (a key of failure-mode tables and JSON).
      unit: unit of g.
      text: what g measures, one line.
      hist: (lo, hi, bins) of the histogram of g kept by the Monte Carlo engine.
    """

    name: str
    unit: str
    text: str
    hist: tuple[float, float, int]


#: The limit states in the column order of ``physics.link`` (docs/model.md#limit-states).
LIMIT_STATES: tuple[LimitState, ...] = (
    LimitState("optical", "dB", "OMA at receiver − required OMA, worst corner", (-10.0, 15.0, 200)),
    LimitState(
        "thermal",
        "mW",
        "heater power to the nearest lock edge over the window "
        "(red: heater runs out; blue: ring crosses the laser)",
        (-40.0, 60.0, 200),
    ),
    LimitState("modulator", "dB", "dynamic ER − ER floor, worst corner", (-5.0, 10.0, 150)),
    LimitState("power", "pJ/bit", "power budget − lane power, worst corner", (-2.0, 3.0, 100)),
)
LIMIT_NAMES: tuple[str, ...] = tuple(ls.name for ls in LIMIT_STATES)
N_LIMIT: int = len(LIMIT_STATES)
assert LIMIT_NAMES == link.LIMIT_STATES, "model.LIMIT_STATES must follow physics.link's order"


def limit_of_column(column: int) -> str:
    """Name of the limit state of an engine-level column ``lane·N_LIMIT + k``."""
    return LIMIT_NAMES[int(column) % N_LIMIT]


def _flat(dev: Deviations):
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree_util.tree_leaves(dev)))
    return shape, jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).reshape(-1), dev)


def lane_budget_of(scenario: Scenario, dev: Deviations, dtype) -> Budget:
    """:func:`~cpojax.physics.link.lane_budget` of single lanes (fields of one shape S),
    evaluated flattened: XLA compiles a 1-D elementwise graph noticeably faster than the
    same graph on [B, L] arrays. Returns the Budget of the flattened lanes."""
    _, flat = _flat(dev)
    return lane_budget(
        design=scenario.design,
        dev=flat,
        system=scenario.system,
        window=scenario.window,
        limits=scenario.limits,
        dtype=dtype,
    )


def lane_limits(scenario: Scenario, dev: Deviations, dtype) -> tuple[jax.Array, jax.Array]:
    """(g[..., K], red[...]) of lanes with deviations `dev` (fields of one shape S), by the
    fast formulation (:mod:`cpojax.physics.limits`), evaluated flattened."""
    shape, flat = _flat(dev)
    g, red = fast.lane_limits(
        design=scenario.design,
        dev=flat,
        system=scenario.system,
        window=scenario.window,
        limits=scenario.limits,
        dtype=dtype,
    )
    return jnp.stack(g, axis=-1).reshape(*shape, len(g)), red.reshape(shape)


def lane_g(scenario: Scenario, dev: Deviations, dtype) -> jax.Array:
    """Limit states g[..., K] of lanes with deviations `dev` (fields of one shape S).

    A lane without its engine: the centre of the ring row, neighbours identical to it
    (:func:`~cpojax.physics.link.lane_budget`, here by the fast formulation of
    :mod:`cpojax.physics.limits`); :func:`engine_g` is the full model.
    """
    return lane_limits(scenario, dev, dtype)[0]


def engine_limits(scenario: Scenario, dev: Deviations, dtype) -> tuple[jax.Array, jax.Array]:
    """(g[..., lanes, K], red[..., lanes]) of whole engines (deviations [..., lanes]) by the
    fast formulation (:mod:`cpojax.physics.limits`): the same model as
    :func:`engine_budget`, limit states only. With ``system.thermal_coupling`` each lane
    sits at its place in the ring row and (I + C)·q = s is solved per engine and corner."""
    sy = scenario.system
    if not sy.thermal_coupling:
        return lane_limits(scenario, dev, dtype)
    lanes = sy.lanes_per_engine
    shape, flat = _flat(dev)
    if shape[-1] != lanes:
        raise ValueError(f"engine deviations need a last axis of {lanes} lanes, got {shape}")
    pos = jnp.broadcast_to(jnp.asarray(thermal.lane_positions(lanes), dtype), shape).reshape(-1)
    kw = dict(system=sy, window=scenario.window, limits=scenario.limits)
    front = fast.limit_front(design=scenario.design, dev=flat, dtype=dtype, lane_position=pos, **kw)
    th = scenario.design.thermal
    c1, c2 = jnp.asarray(th.crosstalk_nn, dtype), jnp.asarray(th.crosstalk_nnn, dtype)
    neigh = []
    for s_k in fast.lock_shift(front):
        s_k = s_k.reshape(-1, lanes, 1)
        q = thermal.coupled_shifts_nm(shift_nm=s_k, c1=c1, c2=c2)
        neigh.append((s_k - q).reshape(-1))
    lim = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), scenario.limits)
    g, red = fast.limit_back(front, system=sy, limits=lim, neighbour_shift_nm=tuple(neigh))
    return jnp.stack(g, axis=-1).reshape(*shape, len(g)), red.reshape(shape)


def engine_budget(scenario: Scenario, dev: Deviations, dtype) -> Budget:
    """Budget of whole engines: deviations with fields [..., lanes] → Budget [..., lanes, ·].

    Engine-level physics (docs/model.md#engine-level-physics) acts here, between the
    per-lane front stage and the per-lane thermal stage: each lane's position in the ring
    row sets its on-die temperature, and the heater-to-heater crosstalk is solved per
    engine and corner, (I + C)·q = s (:func:`cpojax.physics.thermal.coupled_shifts_nm`),
    so each ring's own heater supplies q and its neighbours s − q. Without
    ``system.thermal_coupling`` this is :func:`lane_budget` of every lane.
    """
    sy = scenario.system
    lanes = sy.lanes_per_engine
    shape, flat = _flat(dev)
    if not sy.thermal_coupling:
        b = lane_budget(
            design=scenario.design,
            dev=flat,
            system=sy,
            window=scenario.window,
            limits=scenario.limits,
            dtype=dtype,
        )
        return jax.tree_util.tree_map(lambda x: x.reshape(*shape, *x.shape[1:]), b)
    if shape[-1] != lanes:
        raise ValueError(f"engine deviations need a last axis of {lanes} lanes, got {shape}")
    pos = jnp.broadcast_to(jnp.asarray(thermal.lane_positions(lanes), dtype), shape).reshape(-1)
    front = link.lane_front(
        design=scenario.design,
        dev=flat,
        system=sy,
        window=scenario.window,
        limits=scenario.limits,
        dtype=dtype,
        lane_position=pos,
    )
    _, s_k = link.lock_order(front)  # [B·L, 4]
    s_k = s_k.reshape(-1, lanes, s_k.shape[-1])
    th = scenario.design.thermal
    q = thermal.coupled_shifts_nm(
        shift_nm=s_k,
        c1=jnp.asarray(th.crosstalk_nn, dtype),
        c2=jnp.asarray(th.crosstalk_nnn, dtype),
    )
    neigh = (s_k - q).reshape(-1, s_k.shape[-1])
    lim = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), scenario.limits)
    b = link.lane_back(front, system=sy, limits=lim, neighbour_shift_nm=neigh)
    return jax.tree_util.tree_map(lambda x: x.reshape(*shape, *x.shape[1:]), b)


def engine_g(scenario: Scenario, u, dtype) -> jax.Array:
    """Limit states g[..., lanes, K] of engines with normals u[..., engine_dim].

    Engine-level effects that couple lanes (thermal crosstalk, the on-die temperature
    map, the fiber array's rigid-body motion) act between the deviations and the lane
    model, where every lane of an engine is in one array (:func:`engine_limits`, the
    fast formulation of :func:`engine_budget`).
    """
    dev = variation.engine_deviations(scenario, u.astype(dtype))
    return engine_limits(scenario, dev, dtype)[0]


def dim(scenario: Scenario, level: str) -> int:
    """Number of standard normals of one sample at `level`."""
    lay = variation.layout(scenario)
    if level == "lane":
        return lay.lane_dim
    if level == "engine":
        return lay.engine_dim
    if level == "switch":
        return scenario.system.engines_per_switch * lay.engine_dim
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _g_at(scenario: Scenario, level: str, u, dtype) -> jax.Array:
    """g(u) -> f[n, columns] at `level` for u: f[n, dim(level)]."""
    if level == "lane":
        return lane_g(scenario, variation.lane_deviations(scenario, u.astype(dtype)), dtype)
    if level == "engine":
        gg = engine_g(scenario, u, dtype)
        return gg.reshape(gg.shape[0], -1)
    n, e = u.shape[0], scenario.system.engines_per_switch
    gg = engine_g(scenario, u.reshape(n * e, -1), dtype)
    return gg.reshape(n, -1)


@functools.lru_cache(maxsize=64)
def limit_state(scenario: Scenario, level: str = "engine", dtype_name: str = "float32"):
    """``g(u: f[n, dim]) -> f[n, columns]`` at `level` (see the module docstring).

    Cached per (scenario, level, dtype): estimators jit on the function object, so
    returning the same object avoids recompiling.
    """
    dim(scenario, level)  # validates level
    dtype = jnp.dtype(dtype_name)

    def g(u):
        return _g_at(scenario, level, u, dtype)

    return g


def parametric_limit_state(
    scenario: Scenario, level: str = "engine"
) -> tuple[Callable[[Any, Mapping[str, Any]], jax.Array], int]:
    """``(g(u, values) -> f[n, columns], dim)`` with scenario values as arguments.

    ``values`` maps dotted scenario keys (``design.ring.bias_nm``,
    ``spread.fiber_offset_um.die``) to (traced) scalars that replace the
    scenario's values, so gradients, sweeps and the optimizer differentiate or vmap
    through them. The physics runs in u's dtype.
    """
    d = dim(scenario, level)

    def g(u, values):
        sc = with_values(scenario, values)
        return _g_at(sc, level, u, u.dtype)

    return g, d
