"""Process variation: standard normals u → physical deviations of every lane of an engine.

Hierarchy (docs/model.md#hierarchy): each spread variable has a
wafer-level, a die-level and a lane-level component,
``dev = σ_wafer·T(u_w) + σ_die·T(u_d) + σ_lane·T(u_l)``, where the wafer and die
components are shared by every lane of one engine and the lane component is drawn
per lane (per *laser* for laser quantities, shared by the lanes it feeds).
``T`` is the identity, or the inverse-CDF map onto a normal truncated at ±k σ
(``Spread.truncate_sigma``; used for fiber placement, whose mechanical stops bound
the error). Relative variables (``*_ln``) are log-normal: the link applies
``exp(dev)``. Correlations (``Scenario.correlation``) act on the normals of each
level through a Cholesky factor before ``T``.

Engines are i.i.d. draws from the engine population: each engine draws its own
wafer component (engines of a switch come from many wafers). The wafer and die
components therefore both act engine-wide; they are kept apart so that their
contributions can be reported and tightened separately.

Every map is a deterministic transformation of u, so the estimators (crude MC,
FORM, importance sampling, subset simulation, likelihood-ratio gradients) work in
u-space and see the physics only through ``g(u)``.

Layout of one engine's u (``Layout``): ``[wafer (S) | die (S) | lanes (L × P) |
lasers (N_L × Q)]`` with S shared columns per level, P lane columns per lane and
Q laser columns per laser. A single lane uses ``[wafer | die | lane (P) | laser (Q)]``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from cpojax import rng
from cpojax.estimators.stats import norm_cdf
from cpojax.physics import fiber_array
from cpojax.physics.link import Deviations
from cpojax.scenario import PER_LASER_SPREADS, Scenario

__all__ = [
    "EXTRA_SPREADS",
    "RIGID_ARRAY_SPREADS",
    "VARIABLES",
    "Layout",
    "Variable",
    "active_variables",
    "cholesky",
    "column_plan",
    "engine_deviations",
    "lane_deviations",
    "layout",
    "sample",
    "single_columns",
    "standardized",
]


@dataclasses.dataclass(frozen=True)
class Variable:
    """One spread variable and the Deviations fields it drives.

    Attributes:
      name: the spread's name in ``Scenario.spread``.
      fields: Deviations fields it sets (one per component).
      groups: for each field, the index of the shared (wafer/die) normal it uses;
        e.g. the six fiber offsets share two die-level normals (array shift x, y).
      per_laser: lane-level component drawn per laser, not per lane: True for all
        fields, or the tuple of fields that sit before the laser's 1:N splitter
        (the laser-in coupler feeds every lane of its laser).
    """

    name: str
    fields: tuple[str, ...]
    groups: tuple[int, ...]
    per_laser: bool | tuple[str, ...] = False

    @property
    def n_groups(self) -> int:
        return max(self.groups) + 1

    def is_laser(self, field: str) -> bool:
        """Whether `field`'s lane-level component is drawn per laser."""
        return self.per_laser is True or (
            isinstance(self.per_laser, tuple) and field in self.per_laser
        )


def _one(name: str, *, per_laser: bool = False) -> Variable:
    return Variable(name, (name,), (0,), per_laser)


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "fiber_offset_um",
        (
            "offset_in_x_um",
            "offset_in_y_um",
            "offset_out_x_um",
            "offset_out_y_um",
            "offset_rx_x_um",
            "offset_rx_y_um",
        ),
        (0, 1, 0, 1, 0, 1),
        per_laser=("offset_in_x_um", "offset_in_y_um"),
    ),
    Variable(
        "coupler_loss_db",
        ("coupler_in_db", "coupler_out_db", "coupler_rx_db"),
        (0, 0, 0),
        per_laser=("coupler_in_db",),
    ),
    _one("laser_power_db", per_laser=True),
    _one("laser_wavelength_nm", per_laser=True),
    _one("els_loss_db", per_laser=True),
    _one("ring_resonance_nm"),
    _one("ring_coupling_ln"),
    _one("ring_loss_db_per_cm"),
    _one("mod_efficiency_ln"),
    _one("heater_efficiency_ln"),
    _one("responsivity_ln"),
    _one("dark_current_ln"),
    _one("tia_noise_ln"),
    # issue 9: fiber-array rigid body (system.fiber_array = "rigid")
    Variable("fiber_array_roll_mrad", ("array_roll_mrad",), (0,)),
    Variable("fiber_array_yaw_mrad", ("tilt_x_mrad",), (0,)),
    Variable("fiber_array_pitch_mrad", ("tilt_y_mrad",), (0,)),
    Variable(
        "fiber_gap_um",
        ("gap_in_um", "gap_out_um", "gap_rx_um"),
        (0, 0, 0),
        per_laser=("gap_in_um",),
    ),
    # issue 9: further process spreads (system.extra_spreads)
    Variable("splitter_imbalance_db", ("splitter_db",), (0,)),
    _one("ring_group_index"),
    _one("heater_resistance_ln"),
    _one("laser_aging_nm", per_laser=True),
    _one("tx_penalty_db"),
)

#: Spreads drawn only when a model switch of the scenario is on (issue 9): the u-space
#: layout leaves them out otherwise, so a scenario with every switch off draws exactly
#: the normals of the former model.
RIGID_ARRAY_SPREADS = (
    "fiber_array_roll_mrad",
    "fiber_array_yaw_mrad",
    "fiber_array_pitch_mrad",
    "fiber_gap_um",
)
EXTRA_SPREADS = (
    "splitter_imbalance_db",
    "ring_group_index",
    "heater_resistance_ln",
    "laser_aging_nm",
    "tx_penalty_db",
)

assert {v.name for v in VARIABLES if v.per_laser is True} == set(PER_LASER_SPREADS)
assert sorted(v.name for v in VARIABLES) == sorted(
    f.name for f in dataclasses.fields(Scenario().spread)
), "every spread must have a Variable"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Static column layout of u for one engine (see the module docstring).

    ``variables`` are the spread variables drawn (every variable of :data:`VARIABLES`
    except the issue-9 spreads whose model switch is off); ``fiber_map`` is the array
    slot map of the rigid fiber array, or None for the translation-only array.
    """

    lanes: int
    lanes_per_laser: int
    shared: tuple[tuple[str, int], ...]  # (variable, group) per shared column
    lane: tuple[tuple[str, str], ...]  # (variable, field) per lane column
    laser: tuple[tuple[str, str], ...]  # (variable, field) per laser column
    variables: tuple[str, ...] = ()
    fiber_map: str | None = None

    @property
    def n_shared(self) -> int:
        return len(self.shared)

    @property
    def n_lasers(self) -> int:
        return self.lanes // self.lanes_per_laser

    @property
    def engine_dim(self) -> int:
        """Normals per engine."""
        return 2 * self.n_shared + self.lanes * len(self.lane) + self.n_lasers * len(self.laser)

    @property
    def lane_dim(self) -> int:
        """Normals of one lane (its engine's shared ones, its own and its laser's)."""
        return 2 * self.n_shared + len(self.lane) + len(self.laser)

    def column_names(self, *, engine: bool = True) -> list[str]:
        """Human-readable name of every column of u."""
        names = [f"wafer:{v}[{g}]" for v, g in self.shared] + [
            f"die:{v}[{g}]" for v, g in self.shared
        ]
        lanes = range(self.lanes) if engine else [0]
        lasers = range(self.n_lasers) if engine else [0]
        names += [f"lane{i}:{f}" for i in lanes for _, f in self.lane]
        names += [f"laser{i}:{f}" for i in lasers for _, f in self.laser]
        return names


@functools.lru_cache(maxsize=64)
def _layout(
    lanes: int, lanes_per_laser: int, active: tuple[str, ...] | None = None, fiber_map=None
) -> Layout:
    vs = [v for v in VARIABLES if active is None or v.name in active]
    shared = tuple((v.name, g) for v in vs for g in range(v.n_groups))
    lane = tuple((v.name, f) for v in vs for f in v.fields if not v.is_laser(f))
    laser = tuple((v.name, f) for v in vs for f in v.fields if v.is_laser(f))
    return Layout(lanes, lanes_per_laser, shared, lane, laser, tuple(v.name for v in vs), fiber_map)


def active_variables(scenario: Scenario) -> tuple[str, ...]:
    """Names of the spread variables this scenario draws (static: its model switches)."""
    sy = scenario.system
    off = set()
    if sy.fiber_array != "rigid":
        off.update(RIGID_ARRAY_SPREADS)
    if not sy.extra_spreads:
        off.update(EXTRA_SPREADS)
    return tuple(v.name for v in VARIABLES if v.name not in off)


def layout(scenario: Scenario) -> Layout:
    """The u-space layout for this scenario's engine architecture and model switches."""
    sy = scenario.system
    return _layout(
        sy.lanes_per_engine,
        sy.lanes_per_laser,
        active_variables(scenario),
        sy.fiber_map if sy.fiber_array == "rigid" else None,
    )


def _truncate_cols(u, ks: np.ndarray):
    """Inverse-CDF map of N(0,1) onto N(0,1) truncated to [−k, k], per column of u.

    T(u) = Φ⁻¹(Φ(−k) + Φ(u)·(1 − 2Φ(−k))); columns with k = 0 are left unchanged.
    Applied to all truncated columns in one vectorised call (small compiled graph).
    """
    cols = np.flatnonzero(ks > 0)
    if cols.size == 0:
        return u
    lo = np.asarray([norm_cdf(-float(k)) for k in ks[cols]])
    sub = u[..., cols]
    p = _row(jnp.asarray(lo, u.dtype), sub) + ndtr(sub) * _row(
        jnp.asarray(1.0 - 2.0 * lo, u.dtype), sub
    )
    return u.at[..., cols].set(ndtri(p).astype(u.dtype))


def _row(v, like):
    """Per-column vector v[c] reshaped to broadcast explicitly against like[..., c]
    (the test suite runs with rank promotion set to "raise")."""
    return v.reshape((1,) * (like.ndim - 1) + v.shape)


def cholesky(entries, columns: list[str]) -> np.ndarray | None:
    """Lower Cholesky factor of the correlation matrix over `columns` (variable names)."""
    if not entries:
        return None
    idx = {n: i for i, n in enumerate(columns)}
    m = np.eye(len(columns))
    for a, b, rho in entries:
        if a not in idx or b not in idx:
            raise ValueError(
                f"correlation between {a!r} and {b!r} is not allowed at this level "
                "(at lane level both must be per-lane, or both per-laser, variables)"
            )
        m[idx[a], idx[b]] = m[idx[b], idx[a]] = rho
    return np.linalg.cholesky(m)


def _correlate(u, chol: np.ndarray | None, cols: list[int]):
    """Apply a Cholesky factor to the columns `cols` of u (last axis)."""
    if chol is None:
        return u
    sub = u[..., cols]
    mixed = jnp.einsum("ij,...j->...i", jnp.asarray(chol, u.dtype), sub)
    return u.at[..., cols].set(mixed)


_N_FIELDS = {v.name: len(v.fields) for v in VARIABLES}


def single_columns(pairs) -> tuple[list[str], list[int]]:
    """Columns of single-component variables (the only ones that may be correlated)."""
    names = [v for v, _ in pairs if _N_FIELDS.get(v, 2) == 1]
    cols = [i for i, (v, _) in enumerate(pairs) if _N_FIELDS.get(v, 2) == 1]
    return names, cols


def _correlate_all(scenario: Scenario, lay: Layout, w, d, lane_u, laser_u):
    corr = scenario.correlation
    names, cols = single_columns(lay.shared)
    w = _correlate(w, cholesky(corr.wafer, names), cols)
    d = _correlate(d, cholesky(corr.die, names), cols)
    if corr.lane:
        lane_names, lane_cols = single_columns(lay.lane)
        laser_names, laser_cols = single_columns(lay.laser)
        lane_e = [e for e in corr.lane if e[0] in lane_names and e[1] in lane_names]
        laser_e = [e for e in corr.lane if e[0] in laser_names and e[1] in laser_names]
        if len(lane_e) + len(laser_e) != len(corr.lane):
            bad = next(e for e in corr.lane if e not in lane_e and e not in laser_e)
            raise ValueError(
                f"correlation.lane pair ({bad[0]}, {bad[1]}) mixes a per-lane and a per-laser "
                "variable; allowed only within one of the two groups"
            )
        lane_u = _correlate(lane_u, cholesky(lane_e, lane_names), lane_cols)
        laser_u = _correlate(laser_u, cholesky(laser_e, laser_names), laser_cols)
    return w, d, lane_u, laser_u


def _split(lay: Layout, u, lanes: int, lasers: int):
    s = lay.n_shared
    p, q = len(lay.lane), len(lay.laser)
    w = u[..., :s]
    d = u[..., s : 2 * s]
    off = 2 * s
    lane_u = u[..., off : off + lanes * p].reshape(*u.shape[:-1], lanes, p)
    off += lanes * p
    laser_u = u[..., off : off + lasers * q].reshape(*u.shape[:-1], lasers, q)
    return w, d, lane_u, laser_u


@functools.lru_cache(maxsize=64)
def column_plan(lay: Layout):
    """Static index plan: for each Deviations field (in VARIABLES order), its variable,
    its shared column, and its column in the per-lane 'own' array [lane cols | laser cols]."""
    shared_idx = {key: i for i, key in enumerate(lay.shared)}
    own_idx = {f: i for i, (_, f) in enumerate(lay.lane)}
    own_idx.update({f: len(lay.lane) + i for i, (_, f) in enumerate(lay.laser)})
    fields, var_of_field, shared_col, own_col = [], [], [], []
    for vi, var in enumerate(VARIABLES):
        if var.name not in lay.variables:
            continue
        for f, g in zip(var.fields, var.groups, strict=True):
            fields.append(f)
            var_of_field.append(vi)
            shared_col.append(shared_idx[(var.name, g)])
            own_col.append(own_idx[f])
    var_of_shared = [next(i for i, v in enumerate(VARIABLES) if v.name == n) for n, _ in lay.shared]
    var_of_own = [var_of_field[fields.index(f)] for _, f in (*lay.lane, *lay.laser)]
    return (
        tuple(fields),
        np.asarray(var_of_field),
        np.asarray(shared_col),
        np.asarray(own_col),
        np.asarray(var_of_shared),
        np.asarray(var_of_own),
    )


def _sigmas(scenario: Scenario):
    """σ_wafer, σ_die, σ_lane and truncation k per variable (VARIABLES order)."""
    sps = [getattr(scenario.spread, v.name) for v in VARIABLES]
    sw = jnp.stack([jnp.asarray(sp.wafer) for sp in sps])
    sd = jnp.stack([jnp.asarray(sp.die) for sp in sps])
    sl = jnp.stack([jnp.asarray(sp.lane) for sp in sps])
    ks = np.asarray([float(sp.truncate_sigma) for sp in sps])
    return sw, sd, sl, ks


def _levels(
    scenario: Scenario, lay: Layout, w, d, lane_u, laser_u, *, lanes: int, lanes_per_laser: int
):
    """Correlated per-level normals, with the laser columns spread to their lanes.

    Returns (w [..., S], d [..., S], own [..., lanes, P + Q]) before truncation.
    """
    w, d, lane_u, laser_u = _correlate_all(scenario, lay, w, d, lane_u, laser_u)
    laser_of_lane = np.arange(lanes) // lanes_per_laser
    own = jnp.concatenate([lane_u, laser_u[..., laser_of_lane, :]], axis=-1)
    return w, d, own


def _build(
    scenario: Scenario, lay: Layout, w, d, lane_u, laser_u, *, lanes: int, lanes_per_laser: int
):
    """Deviations with fields of shape [..., lanes] from the per-level normals."""
    fields, var_f, shared_col, own_col, var_s, var_o = column_plan(lay)
    sw, sd, sl, ks = _sigmas(scenario)
    w, d, own = _levels(
        scenario, lay, w, d, lane_u, laser_u, lanes=lanes, lanes_per_laser=lanes_per_laser
    )
    w, d, own = (
        _truncate_cols(w, ks[var_s]),
        _truncate_cols(d, ks[var_s]),
        _truncate_cols(own, ks[var_o]),
    )
    dt = w.dtype
    shared = _row(sw[var_s].astype(dt), w) * w + _row(sd[var_s].astype(dt), d) * d  # [..., S]
    own_f = own[..., own_col]
    dev = shared[..., None, shared_col] + _row(sl[var_f].astype(dt), own_f) * own_f  # [..., L, F]
    out = {f: dev[..., i] for i, f in enumerate(fields)}
    zero = jnp.zeros(dev.shape[:-1], dt)  # fields of spreads not drawn (switch off)
    return Deviations(**{f.name: out.get(f.name, zero) for f in dataclasses.fields(Deviations)})


def engine_deviations(scenario: Scenario, u) -> Deviations:
    """Deviations of every lane of a batch of engines.

    Args:
      scenario: the scenario (spreads may be traced, e.g. for gradients).
      u: f[..., layout(scenario).engine_dim] standard normals.

    Returns:
      Deviations with fields of shape [..., lanes_per_engine].
    """
    lay = layout(scenario)
    if u.shape[-1] != lay.engine_dim:
        raise ValueError(f"u must have last axis engine_dim={lay.engine_dim}, got shape {u.shape}")
    parts = _split(lay, u, lay.lanes, lay.n_lasers)
    dev = _build(scenario, lay, *parts, lanes=lay.lanes, lanes_per_laser=lay.lanes_per_laser)
    return _rigid_array(scenario, lay, dev)


def _rigid_array(scenario: Scenario, lay: Layout, dev: Deviations) -> Deviations:
    """Add the lever-arm terms of the fiber array's roll and yaw to every fiber
    (:mod:`cpojax.physics.fiber_array`): Δy = roll·x_n, Δz = −yaw·x_n at slot distance x_n
    from the array centre (tx, rx and laser-in fibers at their own slots)."""
    if lay.fiber_map is None:
        return dev
    pitch = scenario.design.fiber_array.pitch_um
    arms = fiber_array.slot_offsets(lay.lanes, lay.lanes_per_laser, lay.fiber_map)
    upd = {}
    for (ox, gap), arm in zip(fiber_array.FIBER_FIELDS, arms, strict=True):
        x = jnp.asarray(arm, dev.array_roll_mrad.dtype) * jnp.asarray(
            pitch, dev.array_roll_mrad.dtype
        )
        dy, dz = fiber_array.rigid_body_shift_um(
            x_um=_row(x, dev.array_roll_mrad),
            roll_mrad=dev.array_roll_mrad,
            yaw_mrad=dev.tilt_x_mrad,
        )
        upd[ox] = getattr(dev, ox) + dy
        upd[gap] = getattr(dev, gap) + dz
    return dataclasses.replace(dev, **upd)


def lane_deviations(scenario: Scenario, u) -> Deviations:
    """Deviations of single lanes (each with its own engine and laser draw).

    Args:
      u: f[..., layout(scenario).lane_dim] standard normals.

    Returns:
      Deviations with fields of shape [...].
    """
    lay = layout(scenario)
    if u.shape[-1] != lay.lane_dim:
        raise ValueError(f"u must have last axis lane_dim={lay.lane_dim}, got shape {u.shape}")
    parts = _split(lay, u, 1, 1)
    dev = _build(scenario, lay, *parts, lanes=1, lanes_per_laser=1)
    return jax.tree_util.tree_map(lambda x: x[..., 0], dev)


def die_only(dev_u_engine, scenario: Scenario):
    """u of an engine with every lane-level and laser-level normal set to zero."""
    lay = layout(scenario)
    return dev_u_engine.at[..., 2 * lay.n_shared :].set(0.0)


def standardized(scenario: Scenario, u) -> dict[str, jax.Array]:
    """Standardized total deviation z of each variable component, per lane of each engine.

    z = (σ_w u_w + σ_d u_d + σ_l u_l) / sqrt(σ_w² + σ_d² + σ_l²) on the correlated
    normals before truncation (0 where the variable has no spread). Unconditionally
    z ~ N(0, 1), so among failing lanes E[z²] − 1 > 0 measures how much a variable
    is pushed out by the failure, and E[z] its direction.

    Returns:
      {variable name: f[..., lanes, n_fields]}.
    """
    lay = layout(scenario)
    _, var_f, shared_col, own_col, var_s, _ = column_plan(lay)
    sw, sd, sl, _ = _sigmas(scenario)
    w, d, own = _levels(
        scenario,
        lay,
        *_split(lay, u, lay.lanes, lay.n_lasers),
        lanes=lay.lanes,
        lanes_per_laser=lay.lanes_per_laser,
    )
    dt = u.dtype
    tot = jnp.sqrt(sw**2 + sd**2 + sl**2).astype(dt)
    safe = jnp.where(tot > 0, tot, 1.0)
    shared = _row(sw[var_s].astype(dt), w) * w + _row(sd[var_s].astype(dt), d) * d
    own_f = own[..., own_col]
    z = (shared[..., None, shared_col] + _row(sl[var_f].astype(dt), own_f) * own_f) / _row(
        safe[var_f], own_f
    )
    z = jnp.where(_row(tot[var_f], own_f) > 0, z, 0.0)
    out = {}
    for vi, var in enumerate(VARIABLES):
        if var.name in lay.variables:
            out[var.name] = z[..., np.flatnonzero(var_f == vi)]
    return out


def sample(
    key, scenario: Scenario, n_engines: int, *, dtype=jnp.float32, generator: str = "threefry"
) -> Deviations:
    """Deviations of `n_engines` engines, fields of shape [n_engines, lanes_per_engine].

    Engine i uses row i of the sample-indexed normals of :mod:`cpojax.rng`, so the
    first k engines are the same whatever n_engines is.
    """

    if not isinstance(n_engines, int) or n_engines < 1:
        raise ValueError(f"n_engines must be an int >= 1, got {n_engines!r}")
    lay = layout(scenario)
    n_blocks = -(-n_engines // rng.BLOCK)
    u = rng.normals(key, 0, n_blocks, lay.engine_dim, dtype, generator=generator)[:n_engines]
    return engine_deviations(scenario, u)
