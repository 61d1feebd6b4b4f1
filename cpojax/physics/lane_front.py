"""Stage 1 of the lane budget: laser, couplers, ring modulator, receiver, thermal inputs.

See :mod:`cpojax.physics.link` (the lane and its limit states) and docs/model.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cpojax.physics import coupling, laser, receiver, ring, thermal
from cpojax.physics.lane_types import (
    MIN_POWER_MW,
    MIN_SWING,
    Deviations,
    Front,
    corner_temperatures,
    float_dtype,
)
from cpojax.physics.units import db_to_lin, lin_to_db, mw_to_dbm

__all__ = ["coupler_losses_db", "lane_front"]


def lane_front(
    *,
    design,
    dev: Deviations | None = None,
    system,
    window,
    limits,
    dtype=None,
    lane_position=0.0,
) -> Front:
    """Stage 1 of the lane budget: optics, ring, receiver and the thermal inputs.

    Args:
      design, dev, system, window, limits, dtype: as :func:`lane_budget`.
      lane_position: ξ ∈ [−½, ½] of the lane in the ring row (on-die temperature map,
        :func:`cpojax.physics.thermal.lane_temperature_offset_c`), broadcastable to the
        deviations' shape; 0 = the engine's centre.
    """
    dev = Deviations() if dev is None else dev
    dtype = dtype or float_dtype(design, dev)
    cast = lambda t: jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), t)  # noqa: E731
    d, v, win, lim = cast(design), cast(dev), cast(window), cast(limits)
    sy = system
    spec = sy.laser_mode == "spec"
    apc = spec or sy.els_power_control
    rigid = sy.fiber_array == "rigid"
    extra = sy.extra_spreads
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree_util.tree_leaves(v)))
    # Lane quantities get a trailing corner axis of size 1; corners an axis of size 4.
    v = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape)[..., None], v)
    te, tl = corner_temperatures(win, shape)
    if sy.els_cooled:
        tl = jnp.broadcast_to(d.els.setpoint_c, tl.shape)
    tref = system.tref_c
    lam = d.laser.wavelength_nm
    els = d.els

    # --- laser (ELS), its share per lane ------------------------------------
    # A laser below threshold emits (almost) nothing: floored at MIN_POWER_MW so its
    # lanes fail with a finite margin instead of −inf dBm.
    lk = dict(
        ith_ref_ma=d.laser.ith_ma,
        slope_ref_w_per_a=d.laser.slope_w_per_a,
        t0_k=d.laser.t0_k,
        t1_k=d.laser.t1_k,
        tref_c=tref,
    )
    if spec:
        # The worst compliant laser: class minimum, end of life (docs: external laser source).
        p_laser = jnp.broadcast_to(
            db_to_lin(db=els.power_class_dbm - els.power_tolerance_db - els.eol_guard_db),
            jnp.broadcast_shapes((*shape, 1), tl.shape),
        )
    elif apc:
        p_laser = jnp.maximum(
            db_to_lin(db=els.power_class_dbm + v.laser_power_db - els.eol_guard_db)
            + jnp.zeros_like(tl),
            MIN_POWER_MW,
        )
    else:
        p_laser = jnp.maximum(
            laser.optical_power_mw(current_ma=d.laser.current_ma, temp_c=tl, **lk)
            * db_to_lin(db=v.laser_power_db - els.eol_guard_db),
            MIN_POWER_MW,
        )
    if apc:
        # Electrical power of a power-regulated laser at its setpoint (typical unit).
        i_apc = laser.current_for_power_ma(
            power_mw=db_to_lin(db=els.power_class_dbm), temp_c=tl, **lk
        )
        p_el_laser = laser.electrical_power_mw(
            current_ma=i_apc, v0_v=d.laser.v0_v, series_ohm=d.laser.series_ohm
        )
        wpe = laser.wall_plug_efficiency(
            optical_mw=db_to_lin(db=els.power_class_dbm), electrical_mw=p_el_laser
        )
    else:
        p_el_laser = laser.electrical_power_mw(
            current_ma=d.laser.current_ma, v0_v=d.laser.v0_v, series_ohm=d.laser.series_ohm
        )
        wpe = laser.wall_plug_efficiency(optical_mw=p_laser, electrical_mw=p_el_laser)
    # --- couplers ------------------------------------------------------------
    cin_db, cout_db, crx_db = coupler_losses_db(
        coupler=d.coupler, dev=v, wavelength_nm=lam, rigid=rigid
    )

    ch = d.channel
    els_db = jnp.maximum(ch.els_loss_db + v.els_loss_db, 0.0)
    split_db = laser.splitter_loss_db(
        n_ways=system.lanes_per_laser, excess_db_per_stage=ch.splitter_excess_db
    )
    if extra:
        split_db = split_db + v.splitter_db  # port imbalance
    ring_in_dbm = mw_to_dbm(power_mw=p_laser) - els_db - cin_db - split_db - ch.tx_waveguide_db

    # --- micro-ring modulator -------------------------------------------------
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
    q_l = ring.loaded_q(wavelength_nm=lam, fwhm_nm=fwhm)
    swing_nm = 1e-3 * rg.mod_efficiency_pm_per_v * jnp.exp(v.mod_efficiency_ln) * rg.drive_vpp
    det = ring.oma_detuning_nm(fwhm_nm=fwhm, shift_nm=swing_nm)
    four = sy.pam4_levels == "four" and sy.modulation == "pam4"
    if four:
        t_lo, t_1, t_2, t_hi = ring.pam4_levels(
            a=a, r=r, fsr_nm=fsr, detuning_nm=det, shift_nm=swing_nm
        )
        t_mean = 0.25 * (t_lo + t_1 + t_2 + t_hi)
        level_ratio = ring.level_mismatch_ratio(t0=t_lo, t1=t_1, t2=t_2, t3=t_hi)
        compression_db = -lin_to_db(lin=level_ratio)
    else:
        t_hi, t_lo = ring.modulation_levels(
            a=a, r=r, fsr_nm=fsr, detuning_nm=det, shift_nm=swing_nm
        )
        t_mean = 0.5 * (t_hi + t_lo)
        level_ratio, compression_db = jnp.ones_like(t_hi), jnp.zeros_like(t_hi)
    if sy.ring_response == "cmt":
        gamma, gamma_e = ring.cmt_rates(a=a, r=r, fwhm_nm=fwhm, wavelength_nm=lam)
        det_w = 2.0 * jnp.pi * 299792458.0 * det / (lam * lam)
        det_w = jnp.maximum(det_w, 1e-3 * gamma)
        ck = dict(
            gamma=gamma,
            gamma_e=gamma_e,
            detuning_rad_ns=det_w,
            electrical_bw_ghz=rg.electrical_bw_ghz,
        )
        bw_pen = ring.cmt_bandwidth_penalty_db(symbol_rate_gbd=system.symbol_rate_gbd, **ck)
        f3db = ring.cmt_bandwidth_ghz(**ck)
    else:
        f_ring = ring.photon_lifetime_bandwidth_ghz(wavelength_nm=lam, loaded_q=q_l)
        f3db = 1.0 / jnp.sqrt(
            1.0 / (f_ring * f_ring) + 1.0 / (rg.electrical_bw_ghz * rg.electrical_bw_ghz)
        )
        bw_pen = ring.bandwidth_penalty_db(
            bandwidth_ghz=f3db, symbol_rate_gbd=system.symbol_rate_gbd
        )
    # A ring that does not modulate (lossless all-pass: T ≡ 1, or a swing below
    # −120 dB) and an ideal null (T_low = 0) are floored so that such lanes fail (or
    # pass) with finite limit states instead of ±inf.
    oma_ring_dbm = ring_in_dbm + lin_to_db(lin=jnp.maximum(t_hi - t_lo, MIN_SWING))
    ring_il_db = -lin_to_db(lin=t_mean)
    er_db = lin_to_db(lin=t_hi / jnp.maximum(t_lo, MIN_SWING))

    # --- channel and receiver -------------------------------------------------
    oma_out_dbm = oma_ring_dbm - cout_db
    oma_rx_dbm = oma_out_dbm - ch.plant_loss_db - crx_db - ch.rx_waveguide_db
    if four:
        k_avg = t_mean / jnp.maximum(t_hi - t_lo, MIN_SWING)
    else:
        k_avg = receiver.avg_to_oma_ratio(t_high=t_hi, t_low=t_lo)
    avg_rx_dbm = oma_rx_dbm + lin_to_db(lin=k_avg)
    rx = d.receiver
    resp = rx.responsivity_a_per_w * jnp.exp(v.responsivity_ln)
    t_lane = te
    if sy.thermal_coupling:
        t_lane = te + thermal.lane_temperature_offset_c(
            position=jnp.broadcast_to(jnp.asarray(lane_position, dtype), shape)[..., None],
            gradient_c=d.thermal.lane_gradient_c,
            temp_c=te,
            temp_min_c=win.engine_temp_min_c,
            temp_max_c=win.engine_temp_max_c,
        )
    idark = receiver.dark_current_a(
        dark_ref_na=rx.dark_na * jnp.exp(v.dark_current_ln),
        temp_c=t_lane,
        doubling_k=rx.dark_doubling_k,
        tref_c=tref,
    )
    q = receiver.q_for_ber(ber=lim.ber_threshold, modulation=system.modulation)
    sens_mw = receiver.required_oma_mw(
        q=q,
        eye_factor=receiver.eye_factor(system.modulation),
        responsivity_a_per_w=resp,
        tia_noise_a=rx.tia_noise_ua * 1e-6 * jnp.exp(v.tia_noise_ln),
        dark_current_a=idark,
        bandwidth_hz=rx.noise_bw_ghz * 1e9,
        rin_db_hz=d.laser.rin_db_hz,
        avg_to_oma=k_avg,
    )
    sens_dbm = mw_to_dbm(power_mw=sens_mw)
    tx_pen = jnp.maximum(rg.tx_penalty_db + v.tx_penalty_db, 0.0) if extra else rg.tx_penalty_db
    # Summed in this order so the former model's arithmetic (sens + penalty + bandwidth)
    # is unchanged when the new terms are zero.
    required_dbm = sens_dbm + rx.penalty_db + bw_pen + tx_pen
    tdecq_db = bw_pen + tx_pen
    if four:
        required_dbm = required_dbm + compression_db
        tdecq_db = tdecq_db + compression_db
    margin_db = oma_rx_dbm - required_dbm

    # --- thermal inputs ---------------------------------------------------------
    eta_h = rg.heater_efficiency_nm_per_mw * jnp.exp(v.heater_efficiency_ln)
    # Wavelengths as offsets from the laser's design line: absolute values (~1311 nm)
    # would leave float32 only ~1e-4 nm of resolution in their difference.
    arc = ext_lo = ext_hi = None
    dl_dt = d.laser.dlambda_dt_nm_per_k
    if spec:
        # The bluest compliant laser: its whole drift (uncooled: over the laser window)
        # stays inside the spec window; the others sit on an arc of width W above it.
        c0 = els.window_center_nm - lam
        if sy.els_cooled:
            lo = c0 - els.window_half_width_nm
            dl_laser = jnp.broadcast_to(lo, tl.shape)
            arc = 2.0 * els.window_half_width_nm
        else:
            lo = c0 - els.window_half_width_nm - dl_dt * (win.laser_temp_min_c - tref)
            dl_laser = laser.wavelength_nm(
                wavelength_ref_nm=lo, temp_c=tl, dlambda_dt_nm_per_k=dl_dt, tref_c=tref
            )
            drift = dl_dt * (win.laser_temp_max_c - win.laser_temp_min_c)
            arc = jnp.maximum(2.0 * els.window_half_width_nm - drift, 0.0)
        ext_lo = ext_hi = els.aging_nm
    else:
        dl_laser = laser.wavelength_nm(
            wavelength_ref_nm=v.laser_wavelength_nm,
            temp_c=tl,
            dlambda_dt_nm_per_k=dl_dt,
            tref_c=tref,
        )
        if extra:  # lifetime drift of this laser: the lock tracks BOL and EOL
            ext_lo = -jnp.minimum(v.laser_aging_nm[..., 0], 0.0)
            ext_hi = jnp.maximum(v.laser_aging_nm[..., 0], 0.0)
    dl_ring = ring.resonance_nm(
        design_nm=-rg.bias_nm,
        fab_shift_nm=v.ring_resonance_nm,
        temp_c=t_lane,
        dlambda_dt_nm_per_k=rg.dlambda_dt_nm_per_k,
        tref_c=tref,
    )
    s_unwrapped = dl_laser + det - dl_ring
    self_heat = jnp.zeros_like(s_unwrapped)
    if sy.self_heating:
        self_heat = ring.self_heating_shift_nm(
            ring_in_mw=db_to_lin(db=ring_in_dbm),
            mean_transmission=t_mean,
            absorbed_fraction=rg.absorbed_fraction,
            nm_per_mw=rg.self_heating_nm_per_mw,
        )
        s_unwrapped = s_unwrapped - self_heat
        if spec:
            # Brighter compliant lasers self-heat more: their lock sits up to dW bluer.
            ratio = db_to_lin(db=2.0 * els.power_tolerance_db + els.eol_guard_db) - 1.0
            dw = self_heat * ratio
            s_unwrapped = s_unwrapped - dw
            arc = arc + jnp.max(dw, axis=-1)
    fsr0 = fsr[..., 0] if jnp.ndim(fsr) else fsr
    eta0 = eta_h[..., 0] if jnp.ndim(eta_h) else eta_h
    p_max = rg.heater_max_mw
    if extra:  # P_max = V²/R with the driver's voltage headroom fixed
        p_max = rg.heater_max_mw * jnp.exp(-v.heater_resistance_ln[..., 0])

    # --- electrical power ------------------------------------------------------
    pw = d.power
    laser_share_mw = p_el_laser / d.laser.supply_efficiency / system.lanes_per_laser
    fixed_mw = pw.driver_mw + pw.tia_mw + pw.interface_pj_per_bit * system.lane_rate_gbps

    full = lambda x: jnp.broadcast_to(x, (*shape, 4))  # noqa: E731
    lane = lambda x: jnp.broadcast_to(x, (*shape, 1))[..., 0]  # noqa: E731
    budget = dict(
        engine_temp_c=full(te),
        laser_temp_c=full(tl),
        laser_power_dbm=full(mw_to_dbm(power_mw=p_laser)),
        laser_wpe=full(wpe),
        els_loss_db=full(els_db),
        coupler_in_db=full(cin_db),
        splitter_db=full(jnp.asarray(split_db, dtype)),
        tx_waveguide_db=full(ch.tx_waveguide_db),
        ring_in_dbm=full(ring_in_dbm),
        ring_il_db=full(ring_il_db),
        oma_ring_dbm=full(oma_ring_dbm),
        coupler_out_db=full(cout_db),
        oma_out_dbm=full(oma_out_dbm),
        plant_loss_db=full(ch.plant_loss_db),
        coupler_rx_db=full(crx_db),
        rx_waveguide_db=full(ch.rx_waveguide_db),
        oma_rx_dbm=full(oma_rx_dbm),
        avg_rx_dbm=full(avg_rx_dbm),
        sensitivity_dbm=full(sens_dbm),
        bandwidth_penalty_db=full(bw_pen),
        impl_penalty_db=full(rx.penalty_db),
        required_oma_dbm=full(required_dbm),
        margin_db=full(margin_db),
        er_db=full(er_db),
        fsr_nm=lane(fsr),
        fwhm_nm=lane(fwhm),
        loaded_q=lane(q_l),
        ring_bw_ghz=lane(f3db),
        lock_detuning_nm=lane(det),
        lane_temp_c=full(t_lane),
        tx_penalty_db=full(tdecq_db),
        compression_db=full(compression_db),
        level_ratio=full(level_ratio),
        oma_minus_tdecq_dbm=full(oma_out_dbm - tdecq_db),
        self_heating_nm=full(self_heat),
        margin_min_db=jnp.min(margin_db, axis=-1),
        er_min_db=jnp.min(er_db, axis=-1) - lim.er_floor_db,
    )
    return Front(
        budget=budget,
        shift_nm=full(s_unwrapped),
        arc_nm=None if arc is None else jnp.broadcast_to(arc, shape),
        ext_lo_nm=None if ext_lo is None else jnp.broadcast_to(ext_lo, shape),
        ext_hi_nm=None if ext_hi is None else jnp.broadcast_to(ext_hi, shape),
        fsr_nm=jnp.broadcast_to(fsr0, shape),
        eta_nm_per_mw=jnp.broadcast_to(eta0, shape),
        heater_max_mw=p_max,
        laser_share_mw=laser_share_mw,
        fixed_mw=fixed_mw,
    )


def coupler_losses_db(*, coupler, dev: Deviations, wavelength_nm, rigid: bool):
    """Loss [dB] of the laser-in, TX-out and RX edge couplers of lanes with deviations `dev`:
    −10·log10 of :func:`cpojax.physics.coupling.coupler_efficiency` at each fiber's
    offsets, intrinsic-loss deviation and (rigid array) gap change and tilts.

    Returns:
      (laser-in, TX-out, RX) losses in dB.
    """
    c, v = coupler, dev

    def coupler_db(ox, oy, dil, dgap):
        kw = {}
        gap, tilt = c.gap_um, jnp.deg2rad(c.tilt_deg)
        if rigid:
            gap = jnp.maximum(c.gap_um + dgap, 0.0)
            tilt = tilt + 1e-3 * v.tilt_x_mrad
            kw["tilt_y_rad"] = 1e-3 * v.tilt_y_mrad
        eta = coupling.coupler_efficiency(
            chip_mfd_um=c.chip_mfd_um,
            fiber_mfd_um=c.fiber_mfd_um,
            offset_x_um=ox,
            offset_y_um=oy,
            gap_um=gap,
            tilt_rad=tilt,
            wavelength_nm=wavelength_nm,
            n_medium=c.n_medium,
            n_fiber=c.n_fiber,
            n_chip=c.n_chip,
            intrinsic_loss_db=jnp.maximum(c.intrinsic_loss_db + dil, 0.0),
            **kw,
        )
        return -lin_to_db(lin=eta)

    return (
        coupler_db(v.offset_in_x_um, v.offset_in_y_um, v.coupler_in_db, v.gap_in_um),
        coupler_db(v.offset_out_x_um, v.offset_out_y_um, v.coupler_out_db, v.gap_out_um),
        coupler_db(v.offset_rx_x_um, v.offset_rx_y_um, v.coupler_rx_db, v.gap_rx_um),
    )
