"""The four limit states of a lane, evaluated for speed: corner structure, elementwise, g only.

The same model as :func:`cpojax.physics.link.lane_budget` (the reference, which reports
every stage of the budget at every corner), through the same component functions of
:mod:`cpojax.physics` (docs/model.md#performance-formulation), arranged for throughput:

* **Corner structure.** The four corners are the product of two engine temperatures T_E
  and two laser temperatures T_L. Each quantity is computed at the temperatures it depends
  on and no more: the receiver (dark current, sensitivity, required OMA) and the ring's
  resonance at the 2 engine temperatures, the laser (power, current, wavelength, its
  electrical share) at the 2 laser temperatures, everything else (couplers, ring,
  modulator, ring response) once per lane; only the sums that mix both (margin, required
  shift) are formed at the 4 corners. Each corner value is the reference's own
  expression, so the values agree with :func:`~cpojax.physics.link.lane_budget` to
  rounding (the tests ask float64 ≤ 1e-12 relative).
* **Elementwise.** Corners are Python tuples of arrays, minima and maxima over corners
  are ``jnp.minimum``/``jnp.maximum`` of those arrays: no trailing corner axis, no reduce,
  no reshape or gather, so XLA fuses the whole lane into one loop and the same code runs
  inside a Pallas kernel on tiles (:mod:`cpojax.kernels`). Any array shape S works; every
  deviation field is broadcast to S.
* **g only.** Nothing a report needs but the limit states do not is computed.

Two stages, like :mod:`~cpojax.physics.link`: :func:`limit_front` (optics, ring,
receiver, thermal inputs), then :func:`limit_back` (lock, heater, power, g), with the
engine-level crosstalk acting on the shifts in between (:func:`lock_shift`;
:mod:`cpojax.model`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cpojax.physics import laser, receiver, ring, thermal
from cpojax.physics.lane_front import coupler_losses_db
from cpojax.physics.lane_types import G_MAX, MIN_POWER_MW, MIN_SWING, Deviations
from cpojax.physics.units import db_to_lin, lin_to_db, mw_to_dbm

__all__ = [
    "LimitFront",
    "corner_max",
    "corner_min",
    "lane_limits",
    "limit_back",
    "limit_front",
    "lock_shift",
]


class LimitFront(NamedTuple):
    """What :func:`limit_back` needs of a lane (arrays of the lane shape S or scalars).

    ``shift`` is the unwrapped shift the ring needs at each corner (a 4-tuple in the
    corner order of :class:`~cpojax.physics.link.Budget`); ``arc``, ``ext_lo``, ``ext_hi``
    are None where the model has no such term (as in :class:`~cpojax.physics.link.Front`).
    """

    margin_min: jax.Array
    er_min: jax.Array
    shift: tuple
    arc: jax.Array | None
    ext_lo: jax.Array | None
    ext_hi: jax.Array | None
    fsr: jax.Array
    eta: jax.Array
    p_max: jax.Array
    share_worst: jax.Array
    fixed: jax.Array


def corner_min(xs):
    """Elementwise minimum of a sequence of arrays (a balanced tree of ``jnp.minimum``)."""
    xs = list(xs)
    while len(xs) > 1:
        xs = [jnp.minimum(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)] + xs[len(xs) & ~1 :]
    return xs[0]


def corner_max(xs):
    """Elementwise maximum of a sequence of arrays (a balanced tree of ``jnp.maximum``)."""
    xs = list(xs)
    while len(xs) > 1:
        xs = [jnp.maximum(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)] + xs[len(xs) & ~1 :]
    return xs[0]


def _cast(tree, dtype):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), tree)


def limit_front(
    *, design, dev: Deviations, system, window, limits, dtype, lane_position=0.0
) -> LimitFront:
    """Stage 1: optics, ring, receiver and the thermal inputs of lanes (see module doc).

    Args:
      design, dev, system, window, limits: as :func:`cpojax.physics.link.lane_budget`
        (scalar design leaves; deviation fields of one broadcastable shape S).
      dtype: float dtype of the computation.
      lane_position: ξ of the lane in the ring row (on-die temperature map), broadcastable
        to S; 0 = the engine's centre.
    """
    d, v, win, lim = (
        _cast(design, dtype),
        _cast(dev, dtype),
        _cast(window, dtype),
        _cast(limits, dtype),
    )
    sy = system
    spec = sy.laser_mode == "spec"
    apc = spec or sy.els_power_control
    rigid = sy.fiber_array == "rigid"
    extra = sy.extra_spreads
    tref = sy.tref_c
    lam = d.laser.wavelength_nm
    els = d.els
    te = (win.engine_temp_min_c, win.engine_temp_max_c)
    tl = (win.laser_temp_min_c, win.laser_temp_max_c)
    if sy.els_cooled:
        tl = (d.els.setpoint_c, d.els.setpoint_c)

    # --- laser (ELS) at the two laser temperatures ------------------------------
    lk = dict(
        ith_ref_ma=d.laser.ith_ma,
        slope_ref_w_per_a=d.laser.slope_w_per_a,
        t0_k=d.laser.t0_k,
        t1_k=d.laser.t1_k,
        tref_c=tref,
    )
    if spec:
        p = db_to_lin(db=els.power_class_dbm - els.power_tolerance_db - els.eol_guard_db)
        p_laser = (p, p)
    elif apc:
        p = jnp.maximum(
            db_to_lin(db=els.power_class_dbm + v.laser_power_db - els.eol_guard_db), MIN_POWER_MW
        )
        p_laser = (p, p)
    else:
        rel = db_to_lin(db=v.laser_power_db - els.eol_guard_db)
        p_laser = tuple(
            jnp.maximum(
                laser.optical_power_mw(current_ma=d.laser.current_ma, temp_c=t, **lk) * rel,
                MIN_POWER_MW,
            )
            for t in tl
        )
    if apc:
        p_el = tuple(
            laser.electrical_power_mw(
                current_ma=laser.current_for_power_ma(
                    power_mw=db_to_lin(db=els.power_class_dbm), temp_c=t, **lk
                ),
                v0_v=d.laser.v0_v,
                series_ohm=d.laser.series_ohm,
            )
            for t in tl
        )
    else:
        p = laser.electrical_power_mw(
            current_ma=d.laser.current_ma, v0_v=d.laser.v0_v, series_ohm=d.laser.series_ohm
        )
        p_el = (p, p)

    # --- couplers (once per lane) -------------------------------------------------
    cin_db, cout_db, crx_db = coupler_losses_db(
        coupler=d.coupler, dev=v, wavelength_nm=lam, rigid=rigid
    )
    ch = d.channel
    els_db = jnp.maximum(ch.els_loss_db + v.els_loss_db, 0.0)
    split_db = laser.splitter_loss_db(
        n_ways=sy.lanes_per_laser, excess_db_per_stage=ch.splitter_excess_db
    )
    if extra:
        split_db = split_db + v.splitter_db
    ring_in_dbm = tuple(
        mw_to_dbm(power_mw=p) - els_db - cin_db - split_db - ch.tx_waveguide_db for p in p_laser
    )

    # --- micro-ring modulator (once per lane) --------------------------------------
    rg = d.ring
    length_um = 2.0 * jnp.pi * rg.radius_um
    a = ring.round_trip_amplitude(
        loss_db_per_cm=jnp.maximum(rg.loss_db_per_cm + v.ring_loss_db_per_cm, 0.0),
        length_um=length_um,
    )
    r = ring.self_coupling(
        power_coupling=jnp.minimum(rg.power_coupling * jnp.exp(v.ring_coupling_ln), 0.999)
    )
    n_g = rg.group_index + v.ring_group_index if extra else rg.group_index
    fsr = ring.fsr_nm(wavelength_nm=lam, group_index=n_g, length_um=length_um)
    fwhm = ring.fwhm_nm(a=a, r=r, fsr_nm=fsr)
    swing_nm = 1e-3 * rg.mod_efficiency_pm_per_v * jnp.exp(v.mod_efficiency_ln) * rg.drive_vpp
    det = ring.oma_detuning_nm(fwhm_nm=fwhm, shift_nm=swing_nm)
    four = sy.pam4_levels == "four" and sy.modulation == "pam4"
    if four:
        t_lo, t_1, t_2, t_hi = ring.pam4_levels(
            a=a, r=r, fsr_nm=fsr, detuning_nm=det, shift_nm=swing_nm
        )
        t_mean = 0.25 * (t_lo + t_1 + t_2 + t_hi)
        compression_db = -lin_to_db(lin=ring.level_mismatch_ratio(t0=t_lo, t1=t_1, t2=t_2, t3=t_hi))
    else:
        t_hi, t_lo = ring.modulation_levels(
            a=a, r=r, fsr_nm=fsr, detuning_nm=det, shift_nm=swing_nm
        )
        t_mean = 0.5 * (t_hi + t_lo)
    if sy.ring_response == "cmt":
        gamma, gamma_e = ring.cmt_rates(a=a, r=r, fwhm_nm=fwhm, wavelength_nm=lam)
        det_w = 2.0 * jnp.pi * 299792458.0 * det / (lam * lam)
        det_w = jnp.maximum(det_w, 1e-3 * gamma)
        bw_pen = ring.cmt_bandwidth_penalty_db(
            gamma=gamma,
            gamma_e=gamma_e,
            detuning_rad_ns=det_w,
            electrical_bw_ghz=rg.electrical_bw_ghz,
            symbol_rate_gbd=sy.symbol_rate_gbd,
        )
    else:
        q_l = ring.loaded_q(wavelength_nm=lam, fwhm_nm=fwhm)
        f_ring = ring.photon_lifetime_bandwidth_ghz(wavelength_nm=lam, loaded_q=q_l)
        f3db = 1.0 / jnp.sqrt(
            1.0 / (f_ring * f_ring) + 1.0 / (rg.electrical_bw_ghz * rg.electrical_bw_ghz)
        )
        bw_pen = ring.bandwidth_penalty_db(bandwidth_ghz=f3db, symbol_rate_gbd=sy.symbol_rate_gbd)
    swing_db = lin_to_db(lin=jnp.maximum(t_hi - t_lo, MIN_SWING))
    er_db = lin_to_db(lin=t_hi / jnp.maximum(t_lo, MIN_SWING))

    # --- channel (per laser temperature) and receiver (per engine temperature) ------
    oma_rx_dbm = tuple(
        r_in + swing_db - cout_db - ch.plant_loss_db - crx_db - ch.rx_waveguide_db
        for r_in in ring_in_dbm
    )
    if four:
        k_avg = t_mean / jnp.maximum(t_hi - t_lo, MIN_SWING)
    else:
        k_avg = receiver.avg_to_oma_ratio(t_high=t_hi, t_low=t_lo)
    rx = d.receiver
    resp = rx.responsivity_a_per_w * jnp.exp(v.responsivity_ln)
    t_lane = te
    if sy.thermal_coupling:
        pos = jnp.asarray(lane_position, dtype)
        t_lane = tuple(
            t
            + thermal.lane_temperature_offset_c(
                position=pos,
                gradient_c=d.thermal.lane_gradient_c,
                temp_c=t,
                temp_min_c=win.engine_temp_min_c,
                temp_max_c=win.engine_temp_max_c,
            )
            for t in te
        )
    q = receiver.q_for_ber(ber=lim.ber_threshold, modulation=sy.modulation)
    dark_ref_na = rx.dark_na * jnp.exp(v.dark_current_ln)
    tia_noise_a = rx.tia_noise_ua * 1e-6 * jnp.exp(v.tia_noise_ln)
    tx_pen = jnp.maximum(rg.tx_penalty_db + v.tx_penalty_db, 0.0) if extra else rg.tx_penalty_db
    required_dbm = []
    for t in t_lane:
        sens_mw = receiver.required_oma_mw(
            q=q,
            eye_factor=receiver.eye_factor(sy.modulation),
            responsivity_a_per_w=resp,
            tia_noise_a=tia_noise_a,
            dark_current_a=receiver.dark_current_a(
                dark_ref_na=dark_ref_na, temp_c=t, doubling_k=rx.dark_doubling_k, tref_c=tref
            ),
            bandwidth_hz=rx.noise_bw_ghz * 1e9,
            rin_db_hz=d.laser.rin_db_hz,
            avg_to_oma=k_avg,
        )
        req = mw_to_dbm(power_mw=sens_mw) + rx.penalty_db + bw_pen + tx_pen
        required_dbm.append(req + compression_db if four else req)
    margin_min = corner_min(oma - req for req in required_dbm for oma in oma_rx_dbm)

    # --- thermal inputs: shift per corner (T_E index i, T_L index j) ----------------
    eta_h = rg.heater_efficiency_nm_per_mw * jnp.exp(v.heater_efficiency_ln)
    arc = ext_lo = ext_hi = None
    dl_dt = d.laser.dlambda_dt_nm_per_k
    if spec:
        c0 = els.window_center_nm - lam
        if sy.els_cooled:
            lo = c0 - els.window_half_width_nm
            dl_laser = (lo, lo)
            arc = 2.0 * els.window_half_width_nm
        else:
            lo = c0 - els.window_half_width_nm - dl_dt * (win.laser_temp_min_c - tref)
            dl_laser = tuple(
                laser.wavelength_nm(
                    wavelength_ref_nm=lo, temp_c=t, dlambda_dt_nm_per_k=dl_dt, tref_c=tref
                )
                for t in tl
            )
            drift = dl_dt * (win.laser_temp_max_c - win.laser_temp_min_c)
            arc = jnp.maximum(2.0 * els.window_half_width_nm - drift, 0.0)
        ext_lo = ext_hi = els.aging_nm
    else:
        dl_laser = tuple(
            laser.wavelength_nm(
                wavelength_ref_nm=v.laser_wavelength_nm,
                temp_c=t,
                dlambda_dt_nm_per_k=dl_dt,
                tref_c=tref,
            )
            for t in tl
        )
        if extra:
            ext_lo = -jnp.minimum(v.laser_aging_nm, 0.0)
            ext_hi = jnp.maximum(v.laser_aging_nm, 0.0)
    dl_ring = tuple(
        ring.resonance_nm(
            design_nm=-rg.bias_nm,
            fab_shift_nm=v.ring_resonance_nm,
            temp_c=t,
            dlambda_dt_nm_per_k=rg.dlambda_dt_nm_per_k,
            tref_c=tref,
        )
        for t in t_lane
    )
    heat = None
    if sy.self_heating:
        heat = tuple(
            ring.self_heating_shift_nm(
                ring_in_mw=db_to_lin(db=r_in),
                mean_transmission=t_mean,
                absorbed_fraction=rg.absorbed_fraction,
                nm_per_mw=rg.self_heating_nm_per_mw,
            )
            for r_in in ring_in_dbm
        )
        if spec:
            ratio = db_to_lin(db=2.0 * els.power_tolerance_db + els.eol_guard_db) - 1.0
            dw = tuple(h * ratio for h in heat)
            arc = arc + corner_max(dw)
    shift = []
    for i in range(2):
        for j in range(2):
            s = dl_laser[j] + det - dl_ring[i]
            if heat is not None:
                s = s - heat[j]
                if spec:
                    s = s - dw[j]
            shift.append(s)
    p_max = rg.heater_max_mw
    if extra:  # P_max = V²/R with the driver's voltage headroom fixed
        p_max = rg.heater_max_mw * jnp.exp(-v.heater_resistance_ln)

    # --- electrical power -----------------------------------------------------------
    pw = d.power
    share = tuple(p / d.laser.supply_efficiency / sy.lanes_per_laser for p in p_el)
    return LimitFront(
        margin_min=margin_min,
        er_min=er_db - lim.er_floor_db,
        shift=tuple(shift),
        arc=arc,
        ext_lo=ext_lo,
        ext_hi=ext_hi,
        fsr=fsr,
        eta=eta_h,
        p_max=p_max,
        share_worst=corner_max(share),
        fixed=pw.driver_mw + pw.tia_mw + pw.interface_pj_per_bit * sy.lane_rate_gbps,
    )


def lock_shift(front: LimitFront) -> tuple:
    """Shift s − k·FSR each ring needs at every corner, at the order k of its hitless lock
    (:func:`cpojax.physics.link.lock_order`)."""
    s_lo = corner_min(front.shift)
    if front.ext_lo is not None:
        s_lo = s_lo - front.ext_lo
    k_fsr = ring.chosen_order(s_min_nm=s_lo, fsr_nm=front.fsr) * front.fsr
    return tuple(s - k_fsr for s in front.shift)


def limit_back(front: LimitFront, *, system, limits, neighbour_shift_nm=None):
    """Stage 2: lock margin, heater and lane power → (g, red).

    Args:
      front: :func:`limit_front`'s output.
      system, limits: the scenario's sections (``limits`` cast to the front's dtype).
      neighbour_shift_nm: 4-tuple of the shift the neighbours' heaters supply per corner
        (thermal crosstalk), or None.

    Returns:
      (g, red): g a 4-tuple (optical, thermal, modulator, power; each clamped to ±G_MAX),
      red 1.0 where the lock is nearer its red edge (:func:`ring.lock_nearer_red_edge`).
    """
    s = front.shift
    if neighbour_shift_nm is not None:
        s = tuple(x - e for x, e in zip(s, neighbour_shift_nm, strict=True))
    s_min, s_max = corner_min(s), corner_max(s)
    fsr, eta, p_max = front.fsr, front.eta, front.p_max
    legacy = front.arc is None and front.ext_lo is None
    hop = limits.allow_order_hop
    s_min, s_max, arc, lock_nm, red = ring.window_lock(
        s_min_nm=s_min,
        s_max_nm=s_max,
        fsr_nm=fsr,
        range_nm=p_max * eta,
        arc_nm=front.arc,
        ext_lo_nm=front.ext_lo,
        ext_hi_nm=front.ext_hi,
        allow_order_hop=hop,
    )
    if hop:
        hi = s_max if legacy else s_max + arc
        worst_shift = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=hi, fsr_nm=fsr)
    elif legacy:
        worst_shift = s_max - ring.chosen_order(s_min_nm=s_min, fsr_nm=fsr) * fsr
    else:
        x_worst = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=s_min + arc, fsr_nm=fsr)
        worst_shift = x_worst + (s_max - s_min)
    heater_worst = ring.heater_power_mw(shift_nm=worst_shift, efficiency_nm_per_mw=eta)
    worst_lane_mw = front.share_worst + jnp.minimum(heater_worst, p_max) + front.fixed
    g = (
        front.margin_min,
        lock_nm / eta,
        front.er_min,
        limits.power_budget_pj_per_bit - worst_lane_mw / system.lane_rate_gbps,
    )
    # The reference clamps too: an overflow is a certain fail (or pass); NaN stays NaN.
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in (*g, red)))
    g = tuple(jnp.broadcast_to(jnp.clip(x, -G_MAX, G_MAX), shape) for x in g)
    return g, jnp.broadcast_to(red, shape)


def lane_limits(*, design, dev: Deviations, system, window, limits, dtype):
    """(g, red) of lanes on their own (:func:`cpojax.physics.link.lane_budget`'s lane: the
    centre of the ring row; with ``system.thermal_coupling`` neighbours identical to it)."""
    front = limit_front(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    )
    neigh = None
    if system.thermal_coupling:
        c1 = jnp.asarray(design.thermal.crosstalk_nn, dtype)
        c2 = jnp.asarray(design.thermal.crosstalk_nnn, dtype)
        neigh = tuple(
            thermal.uniform_neighbour_shift_nm(shift_nm=s, c1=c1, c2=c2) for s in lock_shift(front)
        )
    return limit_back(front, system=system, limits=_cast(limits, dtype), neighbour_shift_nm=neigh)
