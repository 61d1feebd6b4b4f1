"""Process variation in NumPy: standard normals u → per-lane deviations (docs/model.md#hierarchy).

dev = σ_w·T(u_w) + σ_d·T(u_d) + σ_l·T(u_l) per Deviations field, u_w and u_d shared by
an engine's lanes, u_l per lane (per laser for the laser's fields), T the identity or the
inverse-CDF map onto N(0, 1) truncated at ±k; correlations by a Cholesky factor on each
level's normals before T; the rigid fiber array adds Δy = θ_r·x_n, Δz = −θ_y·x_n at each
fiber's slot. The column layout of u is the model's (``cpojax.variation.layout``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from cpojax import variation
from cpojax.physics import fiber_array
from cpojax.scenario import Scenario

DEV_FIELDS = (
    "laser_power_db laser_wavelength_nm els_loss_db offset_in_x_um offset_in_y_um "
    "offset_out_x_um offset_out_y_um offset_rx_x_um offset_rx_y_um coupler_in_db "
    "coupler_out_db coupler_rx_db ring_resonance_nm ring_coupling_ln ring_loss_db_per_cm "
    "mod_efficiency_ln heater_efficiency_ln responsivity_ln dark_current_ln tia_noise_ln "
    "array_roll_mrad tilt_x_mrad tilt_y_mrad gap_in_um gap_out_um gap_rx_um splitter_db "
    "ring_group_index heater_resistance_ln laser_aging_nm tx_penalty_db"
).split()


def _sigma(scenario: Scenario, name: str, dt):
    sp = getattr(scenario.spread, name)
    return dt.type(sp.wafer), dt.type(sp.die), dt.type(sp.lane), float(sp.truncate_sigma)


def _truncate(x, k: float, dt):
    """Φ⁻¹(Φ(−k) + Φ(x)·(1 − 2Φ(−k))): N(0, 1) onto N(0, 1) truncated at ±k (k = 0: none)."""
    if k <= 0:
        return x
    lo = 0.5 * math.erfc(k / math.sqrt(2.0))
    return ndtri(dt.type(lo) + ndtr(x) * dt.type(1.0 - 2.0 * lo)).astype(dt)


def _correlate(cols: dict, entries, dt):
    """Mix the named columns {name: array} by the Cholesky factor of their correlations."""
    if not entries:
        return cols
    names = list(cols)  # the factor spans every single-component column of the level
    m = np.eye(len(names))
    idx = {n: i for i, n in enumerate(names)}
    for a, b, rho in entries:
        m[idx[a], idx[b]] = m[idx[b], idx[a]] = rho
    chol = np.linalg.cholesky(m).astype(dt)
    stack = np.stack([cols[n] for n in names], axis=-1)
    mixed = stack @ chol.T
    return {n: mixed[..., i] for i, n in enumerate(names)}


def _level_normals(scenario: Scenario, u, lanes: int, lanes_per_laser: int):
    """Per level, {(variable, group or field): normals}; lane/laser ones as [..., lanes]."""
    lay = variation.layout(scenario)
    s, p, q = lay.n_shared, len(lay.lane), len(lay.laser)
    lasers = lanes // lanes_per_laser
    w = {key: u[..., i] for i, key in enumerate(lay.shared)}
    d = {key: u[..., s + i] for i, key in enumerate(lay.shared)}
    lane_block = u[..., 2 * s : 2 * s + lanes * p].reshape(*u.shape[:-1], lanes, p)
    laser_block = u[..., 2 * s + lanes * p : 2 * s + lanes * p + lasers * q].reshape(
        *u.shape[:-1], lasers, q
    )
    own = {key: lane_block[..., i] for i, key in enumerate(lay.lane)}
    las = {key: laser_block[..., i] for i, key in enumerate(lay.laser)}
    return lay, w, d, own, las


def _single(keys) -> list:
    n_fields = {v.name: len(v.fields) for v in variation.VARIABLES}
    return [k for k in keys if n_fields[k[0]] == 1]


def _correlated(scenario: Scenario, lay, w, d, own, las, dt):
    corr = scenario.correlation
    for level, vals in (("wafer", w), ("die", d)):
        entries = getattr(corr, level)
        if entries:
            keys = _single(lay.shared)
            mixed = _correlate({k[0]: vals[k] for k in keys}, entries, dt)
            vals.update({k: mixed[k[0]] for k in keys})
    if corr.lane:
        for vals, keys in ((own, _single(lay.lane)), (las, _single(lay.laser))):
            names = {k[0] for k in keys}
            entries = [e for e in corr.lane if e[0] in names and e[1] in names]
            if entries:
                mixed = _correlate({k[0]: vals[k] for k in keys}, entries, dt)
                vals.update({k: mixed[k[0]] for k in keys})
    return w, d, own, las


def _fields(scenario: Scenario, u, lanes: int, lanes_per_laser: int, *, standardize: bool):
    dt = u.dtype
    lay, w, d, own, las = _level_normals(scenario, u, lanes, lanes_per_laser)
    w, d, own, las = _correlated(scenario, lay, w, d, own, las, dt)
    laser_of_lane = np.arange(lanes) // lanes_per_laser
    out = {}
    for var in variation.VARIABLES:
        if var.name not in lay.variables:
            continue
        sw, sd, sl, k = _sigma(scenario, var.name, dt)
        for field, group in zip(var.fields, var.groups, strict=True):
            uw, ud = w[(var.name, group)], d[(var.name, group)]
            if var.is_laser(field):
                ul = las[(var.name, field)][..., laser_of_lane]
            else:
                ul = own[(var.name, field)]
            if standardize:
                tot = np.sqrt(sw * sw + sd * sd + sl * sl)
                z = (sw * uw + sd * ud)[..., None] + sl * ul
                out[field] = z / tot if tot > 0 else np.zeros_like(z)
            else:
                tw, td, tl = _truncate(uw, k, dt), _truncate(ud, k, dt), _truncate(ul, k, dt)
                out[field] = (sw * tw + sd * td)[..., None] + sl * tl
    return lay, out


def _rigid(scenario: Scenario, lay, dev: dict, lanes: int, lanes_per_laser: int, dt):
    if lay.fiber_map is None:
        return dev
    pitch = dt.type(scenario.design.fiber_array.pitch_um)
    arms = fiber_array.slot_offsets(lanes, lanes_per_laser, lay.fiber_map)
    roll, yaw = dev["array_roll_mrad"], dev["tilt_x_mrad"]
    for (oy, gap), arm in zip(
        (
            ("offset_out_y_um", "gap_out_um"),
            ("offset_rx_y_um", "gap_rx_um"),
            ("offset_in_y_um", "gap_in_um"),
        ),
        arms,
        strict=True,
    ):
        x = arm.astype(dt) * pitch
        dev[oy] = dev[oy] + dt.type(1e-3) * roll * x
        dev[gap] = dev[gap] + dt.type(-1e-3) * yaw * x
    return dev


def _complete(dev: dict, shape, dt) -> dict:
    return {f: dev[f] if f in dev else np.zeros(shape, dt) for f in DEV_FIELDS}


def engine_deviations(scenario: Scenario, u) -> dict:
    """{field: [..., lanes]} deviations of engines with normals u[..., engine_dim]."""
    sy = scenario.system
    lay, dev = _fields(scenario, u, sy.lanes_per_engine, sy.lanes_per_laser, standardize=False)
    dev = _rigid(scenario, lay, dev, sy.lanes_per_engine, sy.lanes_per_laser, u.dtype)
    return _complete(dev, (*u.shape[:-1], sy.lanes_per_engine), u.dtype)


def lane_deviations(scenario: Scenario, u) -> dict:
    """{field: [...]} deviations of single lanes with normals u[..., lane_dim]."""
    _, dev = _fields(scenario, u, 1, 1, standardize=False)
    return _complete({f: x[..., 0] for f, x in dev.items()}, u.shape[:-1], u.dtype)


def standardized(scenario: Scenario, u) -> dict:
    """{variable: [..., lanes, n_fields]} standardized deviations before truncation."""
    sy = scenario.system
    lay, z = _fields(scenario, u, sy.lanes_per_engine, sy.lanes_per_laser, standardize=True)
    return {
        v.name: np.stack([z[f] for f in v.fields], axis=-1)
        for v in variation.VARIABLES
        if v.name in lay.variables
    }
