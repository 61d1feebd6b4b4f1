"""The lane model in NumPy: deviations → four limit states at the four operating corners.

Written from docs/model.md (laser, external laser source, fiber coupling, fiber array,
micro-ring modulator, PAM4 levels, ring response, thermal lock, self-heating, lock
margin, engine-level thermal crosstalk and temperature map, receiver, power, limit
states), every quantity evaluated at the four corners (T_E, T_L) ∈ {min, max}² in the
order (min, min), (min, max), (max, min), (max, max), plainly: one array per quantity,
[N, 4] where it depends on a temperature, [N, 1] otherwise.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
from scipy.special import ndtri

from cpojax.scenario import Scenario

C_M_PER_S = 299792458.0
Q_E = 1.602176634e-19
_FLOOR = 1e-12  # power / ratio floor before dB (−120 dB)
_MIN_POWER_MW = 1e-9  # laser below threshold
G_MAX = 1e30  # |g| clamp
#: Sampling instants of the pulse response, in symbol periods (docs/model.md#ring-small-signal-response).
CURSOR_GRID = np.r_[np.linspace(0.25, 1.0, 16), np.linspace(1.0, 2.0, 17)[1:]]


def _cast(obj, dt):
    """Scenario section → namespace of dt scalars (nested sections recursively)."""
    out = {}
    for f in dataclasses.fields(obj):
        x = getattr(obj, f.name)
        if dataclasses.is_dataclass(x):
            out[f.name] = _cast(x, dt)
        elif isinstance(x, bool | str):
            out[f.name] = x
        else:
            out[f.name] = dt.type(x)
    return SimpleNamespace(**out)


def db2lin(x):
    return 10.0 ** (x / 10.0)


def lin2db(x):
    return 10.0 * np.log10(np.maximum(x, _FLOOR))


# --------------------------------------------------------------------------- components
def coupler_db(c, lam, ox, oy, il, gap, tilt, tilt_y):
    """Loss of one fiber-to-chip coupler [dB]: Gaussian overlap (Joyce & DeLoach 1984) with
    offset, gap and tilt (x plane, and y plane when tilt_y is given), Fresnel, intrinsic."""
    lam_um = lam * 1e-3
    w1, w2 = 0.5 * c.chip_mfd_um, 0.5 * c.fiber_mfd_um
    w1s, w2s = w1 * w1, w2 * w2
    ssum = w1s + w2s
    g = lam_um * gap / (np.pi * c.n_medium)
    den = ssum * ssum + g * g
    k = np.pi * c.n_medium * tilt * w1 / lam_um
    expo = (
        (ox * ox + oy * oy) * ssum
        + k * k * (w2s * ssum + g * g)
        - 2.0 * np.pi * c.n_medium * tilt * ox * g * w1s / lam_um
    )
    if tilt_y is not None:
        ky = np.pi * c.n_medium * tilt_y * w1 / lam_um
        expo = (
            expo
            + ky * ky * (w2s * ssum + g * g)
            - 2.0 * np.pi * c.n_medium * tilt_y * oy * g * w1s / lam_um
        )
    eta = 4.0 * w1s * w2s / den * np.exp(-2.0 * expo / den)
    r1 = (c.n_fiber - c.n_medium) / (c.n_fiber + c.n_medium)
    r2 = (c.n_medium - c.n_chip) / (c.n_medium + c.n_chip)
    fres = (1.0 - r1 * r1) * (1.0 - r2 * r2)
    return -lin2db(eta * fres * db2lin(-np.maximum(c.intrinsic_loss_db + il, 0.0)))


def allpass(a, r, detuning_nm, fsr):
    """All-pass ring transmission at a detuning (Bogaerts 2012, eq. 4, sin² form)."""
    s2 = np.sin(0.5 * (2.0 * np.pi * detuning_nm / fsr)) ** 2
    far = 4.0 * a * r * s2
    return ((a - r) ** 2 + far) / ((1.0 - a * r) ** 2 + far)


def cmt_step(t, gamma, gamma_e, d, f_el):
    """Step response of the detuned ring behind a first-order driver (partial fractions)."""
    den = gamma * gamma + d * d
    t_re = 1.0 - 2.0 * gamma_e * gamma / den
    t_im = 2.0 * gamma_e * d / den
    q_re, q_im = -d / den, -gamma / den
    a_ = t_re * q_re + t_im * q_im
    b_ = d * (t_re * q_im - t_im * q_re)
    g_ = den / (a_ * gamma + b_)
    we = 2.0 * np.pi * f_el
    gm = gamma - we
    alpha1 = -g_ * (a_ * gm + b_) / (gm * gm + d * d)
    n_re, n_im = g_ * we * b_, g_ * we * a_ * d
    m_re, m_im = gamma * gm - d * d, -d * (gamma + gm)
    p_re, p_im = -2.0 * d * m_im, 2.0 * d * m_re
    pp = p_re * p_re + p_im * p_im
    r_re = (n_re * p_re + n_im * p_im) / pp
    r_im = (n_im * p_re - n_re * p_im) / pp
    return (
        1.0
        + alpha1 * np.exp(-we * t)
        + 2.0 * np.exp(-gamma * t) * (r_re * np.cos(d * t) - r_im * np.sin(d * t))
    )


def cmt_penalty_db(gamma, gamma_e, d, f_el, symbol_rate_gbd, dt):
    """−10·log10 of the main cursor: max of p(t) = y(t) − y(t − T_s) on the grid, ≤ 1."""
    c = CURSOR_GRID.astype(dt)[None, :]
    ts = 1.0 / symbol_rate_gbd
    later = c > 1.0
    args = (gamma[:, None], gamma_e[:, None], d[:, None], f_el)
    p = cmt_step(c * ts, *args) - np.where(
        later, cmt_step(np.where(later, c - 1.0, 0.0) * ts, *args), 0.0
    )
    return -10.0 * np.log10(np.clip(np.max(p, axis=-1), 1e-6, 1.0)) + 0.0


def lock_margin(s_min, s_max, fsr, range_nm, arc, hop):
    """Signed distance to the edges of the lockable set (docs/model.md#lock-margin)."""
    x = np.mod(s_min, fsr)
    w = range_nm - (s_max - s_min)
    wp = w - arc
    tri = np.maximum(np.minimum(x, wp - x), np.minimum(x - fsr, wp - x + fsr))
    return np.maximum(tri, (range_nm if hop else w) - fsr)


def nearer_red(s_min, s_max, fsr, range_nm, arc):
    x = np.mod(s_min, fsr)
    wp = range_nm - (s_max - s_min) - arc
    y = np.mod(x - 0.5 * wp + 0.5 * fsr, fsr) - 0.5 * fsr + 0.5 * wp
    return y > 0.5 * wp


def window_worst(s_min, s_max, fsr):
    k_min, k_max = np.floor(s_min / fsr), np.floor(s_max / fsr)
    return np.where(k_max > k_min, fsr, s_max - k_max * fsr)


# --------------------------------------------------------------------------- the lane
def front(sc: Scenario, dev: dict, dt, position=None) -> dict:
    """Optics, ring, receiver and thermal inputs of lanes with deviations {field: [N]}."""
    dt = np.dtype(dt)
    d, win, lim, sy = _cast(sc.design, dt), _cast(sc.window, dt), _cast(sc.limits, dt), sc.system
    v = SimpleNamespace(**{k: np.asarray(x, dt).reshape(-1, 1) for k, x in dev.items()})
    n = v.laser_power_db.shape[0]
    spec = sy.laser_mode == "spec"
    apc = spec or sy.els_power_control
    rigid, extra = sy.fiber_array == "rigid", sy.extra_spreads
    te = np.array(
        [
            win.engine_temp_min_c,
            win.engine_temp_min_c,
            win.engine_temp_max_c,
            win.engine_temp_max_c,
        ],
        dt,
    )[None, :]
    tl = np.array(
        [win.laser_temp_min_c, win.laser_temp_max_c, win.laser_temp_min_c, win.laser_temp_max_c], dt
    )[None, :]
    if sy.els_cooled:
        tl = np.full((1, 4), d.els.setpoint_c, dt)
    tref, lam, els, la = sy.tref_c, d.laser.wavelength_nm, d.els, d.laser

    def ith(t):
        return la.ith_ma * np.exp((t - tref) / la.t0_k)

    def slope(t):
        return la.slope_w_per_a * np.exp(-(t - tref) / la.t1_k)

    # laser: the worst compliant ELS (spec), a power-regulated one (APC), or fixed current
    if spec:
        p_laser = np.full(
            (n, 4), db2lin(els.power_class_dbm - els.power_tolerance_db - els.eol_guard_db), dt
        )
    elif apc:
        p_laser = np.maximum(
            db2lin(els.power_class_dbm + v.laser_power_db - els.eol_guard_db) + 0.0 * tl,
            _MIN_POWER_MW,
        )
    else:
        p_laser = np.maximum(
            slope(tl)
            * np.maximum(la.current_ma - ith(tl), 0.0)
            * db2lin(v.laser_power_db - els.eol_guard_db),
            _MIN_POWER_MW,
        )
    i_laser = ith(tl) + db2lin(els.power_class_dbm) / slope(tl) if apc else la.current_ma
    p_el_laser = i_laser * (la.v0_v + 1e-3 * i_laser * la.series_ohm)

    # couplers
    c = d.coupler

    def coupler(ox, oy, dil, dgap):
        if rigid:
            return coupler_db(
                c,
                lam,
                ox,
                oy,
                dil,
                np.maximum(c.gap_um + dgap, 0.0),
                np.deg2rad(c.tilt_deg) + 1e-3 * v.tilt_x_mrad,
                1e-3 * v.tilt_y_mrad,
            )
        return coupler_db(c, lam, ox, oy, dil, c.gap_um, np.deg2rad(c.tilt_deg), None)

    cin = coupler(v.offset_in_x_um, v.offset_in_y_um, v.coupler_in_db, v.gap_in_um)
    cout = coupler(v.offset_out_x_um, v.offset_out_y_um, v.coupler_out_db, v.gap_out_um)
    crx = coupler(v.offset_rx_x_um, v.offset_rx_y_um, v.coupler_rx_db, v.gap_rx_um)
    ch = d.channel
    els_db = np.maximum(ch.els_loss_db + v.els_loss_db, 0.0)
    nl = sy.lanes_per_laser
    split = dt.type(10.0 * np.log10(nl)) + ch.splitter_excess_db * dt.type(np.log2(nl))
    if extra:
        split = split + v.splitter_db
    ring_in = lin2db(p_laser) - els_db - cin - split - ch.tx_waveguide_db

    # micro-ring modulator
    rg = d.ring
    length = 2.0 * np.pi * rg.radius_um
    a = 10.0 ** (-np.maximum(rg.loss_db_per_cm + v.ring_loss_db_per_cm, 0.0) * length * 1e-4 / 20.0)
    r = np.sqrt(1.0 - np.minimum(rg.power_coupling * np.exp(v.ring_coupling_ln), 0.999))
    n_g = rg.group_index + v.ring_group_index if extra else rg.group_index
    fsr = lam * lam / (n_g * length * 1e3)
    ra = r * a
    fwhm = (1.0 - ra) * fsr / (np.pi * np.sqrt(ra))
    swing = 1e-3 * rg.mod_efficiency_pm_per_v * np.exp(v.mod_efficiency_ln) * rg.drive_vpp
    hw = 0.5 * fwhm
    s = 0.5 * swing / hw
    det = hw * np.sqrt(
        ((s * s - 1.0) + np.sqrt((1.0 - s * s) ** 2 + 3.0 * (1.0 + s * s) ** 2)) / 3.0
    )
    h = 0.5 * swing
    four = sy.pam4_levels == "four" and sy.modulation == "pam4"
    if four:
        t0, t1, t2, t3 = (
            allpass(a, r, det + k * h, fsr) for k in (-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0)
        )
        t_lo, t_hi = t0, t3
        t_mean = 0.25 * (t0 + t1 + t2 + t3)
        e_min = np.minimum(np.minimum(t1 - t0, t2 - t1), t3 - t2)
        compression = -lin2db(np.clip(3.0 * e_min / np.maximum(t3 - t0, 1e-12), 1e-6, 1.0))
    else:
        t_hi, t_lo = allpass(a, r, det + h, fsr), allpass(a, r, det - h, fsr)
        t_mean = 0.5 * (t_hi + t_lo)
        compression = 0.0
    if sy.ring_response == "cmt":
        gamma = np.pi * (C_M_PER_S * fwhm / (lam * lam))
        rho = (r - a) / (1.0 - r * a)
        gamma_e = 0.5 * gamma * (1.0 - rho)
        det_w = np.maximum(2.0 * np.pi * C_M_PER_S * det / (lam * lam), 1e-3 * gamma)
        bw_pen = cmt_penalty_db(
            gamma[:, 0], gamma_e[:, 0], det_w[:, 0], rg.electrical_bw_ghz, sy.symbol_rate_gbd, dt
        )[:, None]
    else:
        f_ring = C_M_PER_S / (lam * 1e-9) * 1e-12 * 1e3 / (lam / fwhm)
        f3db = 1.0 / np.sqrt(
            1.0 / (f_ring * f_ring) + 1.0 / (rg.electrical_bw_ghz * rg.electrical_bw_ghz)
        )
        bw_pen = -10.0 * np.log10(1.0 - np.exp(-2.0 * np.pi * f3db / sy.symbol_rate_gbd))
    oma_ring = ring_in + lin2db(np.maximum(t_hi - t_lo, 1e-12))
    er = lin2db(t_hi / np.maximum(t_lo, 1e-12))

    # channel and receiver
    oma_rx = oma_ring - cout - ch.plant_loss_db - crx - ch.rx_waveguide_db
    k_avg = (t_mean if four else 0.5 * (t_hi + t_lo)) / np.maximum(t_hi - t_lo, 1e-12)
    rx = d.receiver
    resp = rx.responsivity_a_per_w * np.exp(v.responsivity_ln)
    t_lane = te
    if sy.thermal_coupling:
        pos = np.zeros((n, 1), dt) if position is None else np.asarray(position, dt).reshape(-1, 1)
        span = win.engine_temp_max_c - win.engine_temp_min_c
        load = (te - win.engine_temp_min_c) / span if span > 0 else np.ones_like(te)
        t_lane = te + d.thermal.lane_gradient_c * pos * load
    idark = (
        rx.dark_na
        * np.exp(v.dark_current_ln)
        * 1e-9
        * 2.0 ** ((t_lane - tref) / rx.dark_doubling_k)
    )
    pam4 = sy.modulation == "pam4"
    q = -ndtri(4.0 * lim.ber_threshold / 3.0 if pam4 else lim.ber_threshold)
    kk = ((6.0 if pam4 else 2.0) * q) ** 2
    bw = rx.noise_bw_ghz * 1e9
    rin = 10.0 ** (la.rin_db_hz / 10.0)
    tia = rx.tia_noise_ua * 1e-6 * np.exp(v.tia_noise_ln)
    qa = np.maximum(1.0 - kk * rin * bw * k_avg * k_avg, 1e-6)
    qb = kk * 2.0 * Q_E * bw * k_avg
    qc = kk * (tia * tia + 2.0 * Q_E * bw * idark)
    sens = lin2db((qb + np.sqrt(qb * qb + 4.0 * qa * qc)) / (2.0 * qa) / resp * 1e3)
    tx_pen = np.maximum(rg.tx_penalty_db + v.tx_penalty_db, 0.0) if extra else rg.tx_penalty_db
    required = sens + rx.penalty_db + bw_pen + tx_pen + compression
    margin = oma_rx - required

    # thermal inputs: shifts as offsets from the laser's design line
    dl_dt = la.dlambda_dt_nm_per_k
    arc = ext_lo = ext_hi = None
    if spec:
        c0 = els.window_center_nm - lam
        if sy.els_cooled:
            dl_laser = np.broadcast_to(c0 - els.window_half_width_nm, tl.shape)
            arc = 2.0 * els.window_half_width_nm
        else:
            lo = c0 - els.window_half_width_nm - dl_dt * (win.laser_temp_min_c - tref)
            dl_laser = lo + dl_dt * (tl - tref)
            drift = dl_dt * (win.laser_temp_max_c - win.laser_temp_min_c)
            arc = np.maximum(2.0 * els.window_half_width_nm - drift, 0.0)
        ext_lo = ext_hi = els.aging_nm
    else:
        dl_laser = v.laser_wavelength_nm + dl_dt * (tl - tref)
        if extra:
            ext_lo = -np.minimum(v.laser_aging_nm[:, 0], 0.0)
            ext_hi = np.maximum(v.laser_aging_nm[:, 0], 0.0)
    dl_ring = -rg.bias_nm + v.ring_resonance_nm + rg.dlambda_dt_nm_per_k * (t_lane - tref)
    shift = dl_laser + det - dl_ring
    if sy.self_heating:
        sh = rg.self_heating_nm_per_mw * rg.absorbed_fraction * db2lin(ring_in) * (1.0 - t_mean)
        shift = shift - sh
        if spec:
            dw = sh * (db2lin(2.0 * els.power_tolerance_db + els.eol_guard_db) - 1.0)
            shift = shift - dw
            arc = arc + np.max(np.broadcast_to(dw, (n, 4)), axis=-1)
    p_max = rg.heater_max_mw * (np.exp(-v.heater_resistance_ln[:, 0]) if extra else 1.0)
    pw = d.power
    return dict(
        margin_min=np.min(np.broadcast_to(margin, (n, 4)), axis=-1),
        er_min=np.min(np.broadcast_to(er, (n, 4)), axis=-1) - lim.er_floor_db,
        shift=np.broadcast_to(shift, (n, 4)),
        arc=None if arc is None else np.broadcast_to(arc, (n,)),
        ext_lo=None if ext_lo is None else np.broadcast_to(ext_lo, (n,)),
        ext_hi=None if ext_hi is None else np.broadcast_to(ext_hi, (n,)),
        fsr=np.broadcast_to(fsr, (n, 1))[:, 0],
        eta=rg.heater_efficiency_nm_per_mw * np.exp(v.heater_efficiency_ln[:, 0]),
        p_max=np.broadcast_to(p_max, (n,)),
        share=np.broadcast_to(p_el_laser / la.supply_efficiency / nl, (n, 4)),
        fixed=pw.driver_mw + pw.tia_mw + pw.interface_pj_per_bit * sy.lane_rate_gbps,
        budget=lim.power_budget_pj_per_bit,
    )


def lock_order_shift(f: dict):
    """Shift each ring needs at its hitless lock order, s − k·FSR, k = ⌊(min s − ext)/FSR⌋."""
    s_lo = np.min(f["shift"], axis=-1)
    if f["ext_lo"] is not None:
        s_lo = s_lo - f["ext_lo"]
    return f["shift"] - (np.floor(s_lo / f["fsr"]) * f["fsr"])[:, None]


def back(f: dict, sc: Scenario, neighbour=None):
    """Thermal lock, heater and lane power: (g[N, 4], thermal failure nearer the red edge)."""
    hop = sc.limits.allow_order_hop
    s = f["shift"] if neighbour is None else f["shift"] - neighbour
    s_min, s_max = np.min(s, axis=-1), np.max(s, axis=-1)
    fsr, eta, p_max = f["fsr"], f["eta"], f["p_max"]
    legacy = f["arc"] is None and f["ext_lo"] is None
    if f["ext_lo"] is not None:
        s_min, s_max = s_min - f["ext_lo"], s_max + f["ext_hi"]
    arc = 0.0 * s_min if f["arc"] is None else f["arc"]
    range_nm = p_max * eta
    lock_mw = lock_margin(s_min, s_max, fsr, range_nm, arc, hop) / eta
    red = nearer_red(s_min, s_max, fsr, range_nm, arc)
    if hop:
        worst = window_worst(s_min, s_max if legacy else s_max + arc, fsr)
    elif legacy:
        worst = s_max - np.floor(s_min / fsr) * fsr
    else:
        worst = window_worst(s_min, s_min + arc, fsr) + (s_max - s_min)
    share_worst = np.max(f["share"], axis=-1)
    worst_mw = share_worst + np.minimum(worst / eta, p_max) + f["fixed"]
    rate = sc.system.lane_rate_gbps
    g = np.stack([f["margin_min"], lock_mw, f["er_min"], f["budget"] - worst_mw / rate], axis=-1)
    return np.clip(g, -G_MAX, G_MAX), red  # an overflow is a certain fail; NaN stays NaN


def lane_g(sc: Scenario, dev: dict, dt, *, with_red: bool = False):
    """Limit states g[N, 4] of single lanes (the centre of the ring row; with thermal
    coupling, neighbours identical to the lane: e = s_k·2(c₁ + c₂)/(1 + 2(c₁ + c₂)))."""
    shape = np.shape(next(iter(dev.values())))
    flat = {k: np.broadcast_to(np.asarray(x, dt), shape).reshape(-1) for k, x in dev.items()}
    f = front(sc, flat, dt)
    neigh = None
    if sc.system.thermal_coupling:
        th = _cast(sc.design.thermal, np.dtype(dt))
        k = 2.0 * (th.crosstalk_nn + th.crosstalk_nnn)
        neigh = lock_order_shift(f) * (k / (1.0 + k))
    g, red = back(f, sc, neigh)
    g = g.reshape(*shape, 4)
    return (g, red.reshape(shape)) if with_red else g


def engine_g(sc: Scenario, dev: dict, dt, *, with_red: bool = False):
    """Limit states g[B, L, 4] of engines with deviations {field: [B, L]}: with thermal
    coupling each lane at its place ξ_i in the row and (I + C)·q = s solved per engine."""
    sy = sc.system
    if not sy.thermal_coupling:
        return lane_g(sc, dev, dt, with_red=with_red)
    lanes = sy.lanes_per_engine
    b = np.shape(next(iter(dev.values())))[0]
    flat = {k: np.asarray(x, dt).reshape(-1) for k, x in dev.items()}
    xi = np.tile((np.arange(lanes) - 0.5 * (lanes - 1)) / max(lanes - 1, 1), b)
    f = front(sc, flat, dt, position=xi)
    s_k = lock_order_shift(f).reshape(b, lanes, 4)
    th = _cast(sc.design.thermal, np.dtype(dt))
    dist = np.abs(np.arange(lanes)[:, None] - np.arange(lanes)[None, :])
    m = (np.eye(lanes) + th.crosstalk_nn * (dist == 1) + th.crosstalk_nnn * (dist == 2)).astype(dt)
    q = np.einsum("ij,bjk->bik", np.linalg.inv(m), s_k)
    g, red = back(f, sc, (s_k - q).reshape(-1, 4))
    g = g.reshape(b, lanes, 4)
    return (g, red.reshape(b, lanes)) if with_red else g
