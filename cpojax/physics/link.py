"""One CPO lane, TX engine → fiber plant → RX engine, at every operating corner.

The lane is judged as engines are screened at final test: its own transmit path
(laser share → laser-in coupler → splitter → micro-ring modulator → signal-out
coupler), a worst-case-allocated fiber plant, and its own receive path
(signal-in coupler → Ge PD + TIA), i.e. a loopback through the channel
allocation. Both ends therefore carry this engine's variation; in a deployed
link the far end is another engine drawn from the same population.

Four limit states, each continuous with g >= 0 meaning pass
(docs/model.md#limit-states):

=========  ============================================================  ======
name       g                                                             unit
=========  ============================================================  ======
optical    min over corners of OMA_rx − OMA_required                     dB
thermal    distance, in heater power, to the nearest edge of the lockable   mW
           range over the whole window (:func:`ring.lock_margin_nm`):
           heater runs out (red edge) or resonance crosses the lock point
           with the next order out of reach (blue edge); continuous
modulator  min over corners of dynamic ER − ER floor                     dB
power      budget − lane electrical power with the worst heater power    pJ/bit
           over the whole window, for the resonance order the lock uses
           (hitless: :func:`ring.chosen_order`; order hop:
           :func:`ring.window_worst_shift_nm`)
=========  ============================================================  ======
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from cpojax.physics import coupling, laser, receiver, ring, thermal
from cpojax.physics.units import db_to_lin, lin_to_db, mw_to_dbm

__all__ = [
    "LIMIT_STATES",
    "Budget",
    "Deviations",
    "Front",
    "lane_back",
    "lane_budget",
    "lane_front",
    "limit_states",
    "lock_order",
]

LIMIT_STATES = ("optical", "thermal", "modulator", "power")
#: Smallest ring swing and ring null transmission, linear (−120 dB): floors that keep
#: the limit states finite for a ring that does not modulate or an ideal null.
_MIN_SWING = 1e-12
#: Largest |g| reported; larger values (overflows to ±inf included) are clamped to it.
G_MAX = 1e30
#: Optical power of a laser below threshold, mW (−90 dBm).
_MIN_POWER_MW = 1e-9


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Deviations:
    """Process deviations of one lane from the design (zero = nominal).

    Additive in the variable's unit; fields ending in ``_ln`` are natural-log
    multipliers (value × exp(dev)). Offsets are per axis and per coupler:
    ``in`` = laser-in, ``out`` = signal-out (TX), ``rx`` = signal-in (RX).
    Any field may be a scalar or an array; all are broadcast together. Losses
    (coupler intrinsic, ELS, ring propagation) are floored at 0 after adding a
    deviation: a normal tail must not turn a passive loss into gain.
    """

    laser_power_db: jax.Array | float = 0.0
    laser_wavelength_nm: jax.Array | float = 0.0
    els_loss_db: jax.Array | float = 0.0
    offset_in_x_um: jax.Array | float = 0.0
    offset_in_y_um: jax.Array | float = 0.0
    offset_out_x_um: jax.Array | float = 0.0
    offset_out_y_um: jax.Array | float = 0.0
    offset_rx_x_um: jax.Array | float = 0.0
    offset_rx_y_um: jax.Array | float = 0.0
    coupler_in_db: jax.Array | float = 0.0
    coupler_out_db: jax.Array | float = 0.0
    coupler_rx_db: jax.Array | float = 0.0
    ring_resonance_nm: jax.Array | float = 0.0
    ring_coupling_ln: jax.Array | float = 0.0
    ring_loss_db_per_cm: jax.Array | float = 0.0
    mod_efficiency_ln: jax.Array | float = 0.0
    heater_efficiency_ln: jax.Array | float = 0.0
    responsivity_ln: jax.Array | float = 0.0
    dark_current_ln: jax.Array | float = 0.0
    tia_noise_ln: jax.Array | float = 0.0
    # issue 9 (drawn only when their model switches are on; zero = the former model)
    array_roll_mrad: jax.Array | float = 0.0
    tilt_x_mrad: jax.Array | float = 0.0
    tilt_y_mrad: jax.Array | float = 0.0
    gap_in_um: jax.Array | float = 0.0
    gap_out_um: jax.Array | float = 0.0
    gap_rx_um: jax.Array | float = 0.0
    splitter_db: jax.Array | float = 0.0
    ring_group_index: jax.Array | float = 0.0
    heater_resistance_ln: jax.Array | float = 0.0
    laser_aging_nm: jax.Array | float = 0.0
    tx_penalty_db: jax.Array | float = 0.0


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Budget:
    """Link budget of a batch of lanes. Per-corner fields have a trailing corner axis.

    Corner order: (T_E,min, T_L,min), (T_E,min, T_L,max), (T_E,max, T_L,min),
    (T_E,max, T_L,max). TX-side figures (OMA into the fiber, ER, the TDECQ-like penalty)
    and RX-side figures (OMA at the PD, sensitivity, RX penalty, required OMA) are kept
    apart (docs/model.md#receiver).
    """

    engine_temp_c: jax.Array
    laser_temp_c: jax.Array
    laser_power_dbm: jax.Array
    laser_wpe: jax.Array
    els_loss_db: jax.Array
    coupler_in_db: jax.Array
    splitter_db: jax.Array
    tx_waveguide_db: jax.Array
    ring_in_dbm: jax.Array
    ring_il_db: jax.Array
    oma_ring_dbm: jax.Array
    coupler_out_db: jax.Array
    oma_out_dbm: jax.Array
    plant_loss_db: jax.Array
    coupler_rx_db: jax.Array
    rx_waveguide_db: jax.Array
    oma_rx_dbm: jax.Array
    avg_rx_dbm: jax.Array
    sensitivity_dbm: jax.Array
    bandwidth_penalty_db: jax.Array
    impl_penalty_db: jax.Array
    required_oma_dbm: jax.Array
    margin_db: jax.Array
    er_db: jax.Array
    heater_shift_nm: jax.Array
    heater_mw: jax.Array
    lane_power_mw: jax.Array
    pj_per_bit: jax.Array
    # lane-level (no corner axis)
    fsr_nm: jax.Array
    fwhm_nm: jax.Array
    loaded_q: jax.Array
    ring_bw_ghz: jax.Array
    lock_detuning_nm: jax.Array
    heater_worst_mw: jax.Array
    g: jax.Array  # [..., 4] limit states in LIMIT_STATES order
    # issue 9 (per corner unless noted)
    lane_temp_c: jax.Array = None  # ring and PD temperature (on-die map)
    tx_penalty_db: jax.Array = None  # TDECQ-like: TX penalty + bandwidth + compression
    compression_db: jax.Array = None  # PAM4 level compression penalty
    level_ratio: jax.Array = None  # 3·min(eye)/OMA of the four levels
    oma_minus_tdecq_dbm: jax.Array = None  # TX: OMA into the fiber − TDECQ-like
    self_heating_nm: jax.Array = None  # resonance red shift by absorbed light
    neighbour_shift_nm: jax.Array = None  # shift supplied by the neighbours' heaters
    heater_max_mw: jax.Array = None  # lane: the heater's maximum (resistance spread)
    thermal_red: jax.Array = None  # lane: 1 = nearer the red edge of the lock


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Front:
    """Per-lane intermediates of :func:`lane_front` that :func:`lane_back` finishes.

    ``budget`` holds every optical/receiver stage; the thermal inputs are the unwrapped
    shift each ring needs per corner (``shift_nm``, after self-heating and the lane's
    temperature), the static arc of compliant laser positions (``arc_nm``; 0 for the
    paired laser), the lifetime-drift extensions of the window (``ext_lo_nm``,
    ``ext_hi_nm``), and FSR, heater efficiency and heater maximum. Engine-level effects
    (crosstalk) act on ``shift_nm`` between the two stages (:mod:`cpojax.model`).
    """

    budget: dict
    shift_nm: jax.Array  # [..., 4]
    arc_nm: jax.Array | None  # [...] or None (paired laser)
    ext_lo_nm: jax.Array | None
    ext_hi_nm: jax.Array | None
    fsr_nm: jax.Array  # [...]
    eta_nm_per_mw: jax.Array  # [...]
    heater_max_mw: jax.Array  # [...] or scalar
    laser_share_mw: jax.Array  # [..., 4] or scalar
    fixed_mw: jax.Array  # scalar


def _float_dtype(*trees):
    """float64 if any array leaf is float64, else float32 (weak Python floats don't vote)."""
    for leaf in jax.tree_util.tree_leaves(trees):
        if hasattr(leaf, "dtype") and leaf.dtype == jnp.float64:
            return jnp.float64
    return jnp.float32


def _corners(win, shape):
    te = jnp.stack(
        [win.engine_temp_min_c, win.engine_temp_min_c, win.engine_temp_max_c, win.engine_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    tl = jnp.stack(
        [win.laser_temp_min_c, win.laser_temp_max_c, win.laser_temp_min_c, win.laser_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    return te, tl


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
    dtype = dtype or _float_dtype(design, dev)
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
    te, tl = _corners(win, shape)
    if sy.els_cooled:
        tl = jnp.broadcast_to(d.els.setpoint_c, tl.shape)
    tref = system.tref_c
    lam = d.laser.wavelength_nm
    els = d.els

    # --- laser (ELS), its share per lane ------------------------------------
    # A laser below threshold emits (almost) nothing: floored at _MIN_POWER_MW so its
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
            _MIN_POWER_MW,
        )
    else:
        p_laser = jnp.maximum(
            laser.optical_power_mw(current_ma=d.laser.current_ma, temp_c=tl, **lk)
            * db_to_lin(db=v.laser_power_db - els.eol_guard_db),
            _MIN_POWER_MW,
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
    c = d.coupler

    def coupler_db(ox, oy, dil, dgap=None):
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
            wavelength_nm=lam,
            n_medium=c.n_medium,
            n_fiber=c.n_fiber,
            n_chip=c.n_chip,
            intrinsic_loss_db=jnp.maximum(c.intrinsic_loss_db + dil, 0.0),
            **kw,
        )
        return -lin_to_db(lin=eta)

    cin_db = coupler_db(v.offset_in_x_um, v.offset_in_y_um, v.coupler_in_db, v.gap_in_um)
    cout_db = coupler_db(v.offset_out_x_um, v.offset_out_y_um, v.coupler_out_db, v.gap_out_um)
    crx_db = coupler_db(v.offset_rx_x_um, v.offset_rx_y_um, v.coupler_rx_db, v.gap_rx_um)

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
    oma_ring_dbm = ring_in_dbm + lin_to_db(lin=jnp.maximum(t_hi - t_lo, _MIN_SWING))
    ring_il_db = -lin_to_db(lin=t_mean)
    er_db = lin_to_db(lin=t_hi / jnp.maximum(t_lo, _MIN_SWING))

    # --- channel and receiver -------------------------------------------------
    oma_out_dbm = oma_ring_dbm - cout_db
    oma_rx_dbm = oma_out_dbm - ch.plant_loss_db - crx_db - ch.rx_waveguide_db
    if four:
        k_avg = t_mean / jnp.maximum(t_hi - t_lo, _MIN_SWING)
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


def lock_order(front: Front):
    """Resonance order k of the hitless lock of each lane (:func:`ring.chosen_order`) and the
    shift s − k·FSR each ring needs at every corner: (k[...], s_k[..., 4])."""
    s = front.shift_nm
    s_lo = jnp.min(s, axis=-1)
    if front.ext_lo_nm is not None:
        s_lo = s_lo - front.ext_lo_nm
    k = ring.chosen_order(s_min_nm=s_lo, fsr_nm=front.fsr_nm)
    return k, s - (k * front.fsr_nm)[..., None]


def lane_back(front: Front, *, system, limits, neighbour_shift_nm=None, dtype=None) -> Budget:
    """Stage 2 of the lane budget: thermal lock, heater and lane power, limit states.

    Args:
      front: :func:`lane_front`'s output.
      system, limits: the scenario's sections.
      neighbour_shift_nm: e[..., 4], the ring shift the neighbours' heaters supply
        (thermal crosstalk; None: none). The lane's own heater supplies s − e.
    """
    b = dict(front.budget)
    s_unwrapped = front.shift_nm
    neigh = jnp.zeros_like(s_unwrapped)
    if neighbour_shift_nm is not None:
        neigh = jnp.broadcast_to(neighbour_shift_nm, s_unwrapped.shape)
        s_unwrapped = s_unwrapped - neigh
    s_min, s_max = jnp.min(s_unwrapped, axis=-1), jnp.max(s_unwrapped, axis=-1)
    fsr = front.fsr_nm
    eta = front.eta_nm_per_mw
    p_max = front.heater_max_mw
    legacy = front.arc_nm is None and front.ext_lo_nm is None
    if not legacy:
        if front.ext_lo_nm is not None:
            s_min = s_min - front.ext_lo_nm
            s_max = s_max + front.ext_hi_nm
        arc = jnp.zeros_like(s_min) if front.arc_nm is None else front.arc_nm
    range_nm = p_max * eta
    hop = limits.allow_order_hop
    if legacy:
        lock_nm = ring.lock_margin_nm(
            s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr, range_nm=range_nm, allow_order_hop=hop
        )
        red = ring.lock_nearer_red_edge(
            s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr, range_nm=range_nm
        )
    else:
        lock_nm = ring.lock_margin_spec_nm(
            s_min_nm=s_min,
            s_max_nm=s_max,
            fsr_nm=fsr,
            range_nm=range_nm,
            arc_nm=arc,
            allow_order_hop=hop,
        )
        red = ring.lock_nearer_red_edge(
            s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr, range_nm=range_nm, arc_nm=arc
        )
    lock_mw = lock_nm / eta
    fsr_c, eta_c = fsr[..., None], eta[..., None]
    if hop:
        # The lock may re-acquire another order inside the window: each corner uses
        # its own order, and some temperature inside a window that crosses an order
        # boundary needs a full FSR.
        shift = jnp.mod(s_unwrapped, fsr_c)
        hi = s_max if legacy else s_max + arc
        worst_shift = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=hi, fsr_nm=fsr)
    else:
        # Hitless: the one order the lock margin accepts, at every corner (spec laser: the
        # bluest compliant laser; the worst compliant laser for the worst case).
        order = ring.chosen_order(s_min_nm=s_min, fsr_nm=fsr)
        shift = s_unwrapped - order[..., None] * fsr_c
        if legacy:
            worst_shift = s_max - order * fsr
        else:
            x_worst = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=s_min + arc, fsr_nm=fsr)
            worst_shift = x_worst + (s_max - s_min)
    heater_mw = ring.heater_power_mw(shift_nm=shift, efficiency_nm_per_mw=eta_c)
    heater_worst = ring.heater_power_mw(shift_nm=worst_shift, efficiency_nm_per_mw=eta)

    # --- electrical power -----------------------------------------------------
    share, fixed_mw = front.laser_share_mw, front.fixed_mw
    p_max_c = p_max[..., None] if jnp.ndim(p_max) else p_max
    lane_mw = share + jnp.minimum(heater_mw, p_max_c) + fixed_mw
    share_worst = jnp.max(share, axis=-1) if jnp.ndim(share) else share
    worst_lane_mw = share_worst + jnp.minimum(heater_worst, p_max) + fixed_mw
    pj = lane_mw / system.lane_rate_gbps

    g = jnp.stack(
        [
            b.pop("margin_min_db"),
            lock_mw,
            b.pop("er_min_db"),
            limits.power_budget_pj_per_bit - worst_lane_mw / system.lane_rate_gbps,
        ],
        axis=-1,
    )
    # An overflow (±inf) at an extreme but valid input is a certain fail (or pass):
    # clamped to ±G_MAX so it is counted as such; NaN (a hole in the model) stays NaN.
    g = jnp.clip(g, -G_MAX, G_MAX)
    shape = s_unwrapped.shape[:-1]
    return Budget(
        **b,
        heater_shift_nm=shift,
        heater_mw=heater_mw,
        lane_power_mw=lane_mw,
        pj_per_bit=pj,
        heater_worst_mw=jnp.broadcast_to(heater_worst, shape),
        g=g,
        neighbour_shift_nm=neigh,
        heater_max_mw=jnp.broadcast_to(p_max, shape),
        thermal_red=red,
    )


def lane_budget(
    *, design, dev: Deviations | None = None, system, window, limits, dtype=None
) -> Budget:
    """Evaluate the lane budget and the four limit states (see module docstring).

    A lane on its own (no engine around it): the centre of the ring row (ξ = 0 of the
    on-die temperature map) and, with ``system.thermal_coupling``, neighbours identical
    to it (:func:`cpojax.physics.thermal.uniform_neighbour_shift_nm`). The engine model
    (:func:`cpojax.model.engine_g`) solves the crosstalk of the real neighbours.

    Args:
      design: :class:`cpojax.scenario.Design` (scalar leaves; vmap for grids).
      dev: :class:`Deviations` (scalars or arrays of one broadcastable shape S);
        None = nominal lane.
      system, window, limits: the scenario's sections.
      dtype: float dtype of the computation; default float32 unless an input
        array is float64.

    Returns:
      :class:`Budget` with per-corner fields of shape S + (4,), lane fields of
      shape S and ``g`` of shape S + (4,) (the four limit states).
    """
    front = lane_front(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    )
    neigh = None
    if system.thermal_coupling:
        _, s_k = lock_order(front)
        dt = front.shift_nm.dtype
        neigh = thermal.uniform_neighbour_shift_nm(
            shift_nm=s_k,
            c1=jnp.asarray(design.thermal.crosstalk_nn, dt),
            c2=jnp.asarray(design.thermal.crosstalk_nnn, dt),
        )
    lim = jax.tree_util.tree_map(lambda x: jnp.asarray(x, front.shift_nm.dtype), limits)
    return lane_back(front, system=system, limits=lim, neighbour_shift_nm=neigh)


def limit_states(*, design, dev: Deviations | None = None, system, window, limits, dtype=None):
    """Only the limit states g[..., 4] (see :func:`lane_budget`); XLA prunes the rest."""
    return lane_budget(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    ).g
