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

from cpojax.physics import coupling, laser, receiver, ring
from cpojax.physics.units import db_to_lin, lin_to_db, mw_to_dbm

__all__ = ["LIMIT_STATES", "Budget", "Deviations", "lane_budget", "limit_states"]

LIMIT_STATES = ("optical", "thermal", "modulator", "power")
#: Smallest ring swing and ring null transmission, linear (−120 dB): floors that keep
#: the limit states finite for a ring that does not modulate or an ideal null.
_MIN_SWING = 1e-12
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


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Budget:
    """Link budget of a batch of lanes. Per-corner fields have a trailing corner axis.

    Corner order: (T_E,min, T_L,min), (T_E,min, T_L,max), (T_E,max, T_L,min),
    (T_E,max, T_L,max).
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


def _float_dtype(*trees):
    """float64 if any array leaf is float64, else float32 (weak Python floats don't vote)."""
    for leaf in jax.tree_util.tree_leaves(trees):
        if hasattr(leaf, "dtype") and leaf.dtype == jnp.float64:
            return jnp.float64
    return jnp.float32


def lane_budget(
    *, design, dev: Deviations | None = None, system, window, limits, dtype=None
) -> Budget:
    """Evaluate the lane budget and the four limit states (see module docstring).

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
    dev = Deviations() if dev is None else dev
    dtype = dtype or _float_dtype(design, dev)
    cast = lambda t: jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), t)  # noqa: E731
    d, v, win, lim = cast(design), cast(dev), cast(window), cast(limits)
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree_util.tree_leaves(v)))
    # Lane quantities get a trailing corner axis of size 1; corners an axis of size 4.
    v = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape)[..., None], v)
    te = jnp.stack(
        [win.engine_temp_min_c, win.engine_temp_min_c, win.engine_temp_max_c, win.engine_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    tl = jnp.stack(
        [win.laser_temp_min_c, win.laser_temp_max_c, win.laser_temp_min_c, win.laser_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    tref = system.tref_c
    lam = d.laser.wavelength_nm

    # --- laser (ELS), its share per lane ------------------------------------
    # A laser below threshold emits (almost) nothing: floored at _MIN_POWER_MW so its
    # lanes fail with a finite margin instead of −inf dBm.
    p_laser = jnp.maximum(
        laser.optical_power_mw(
            current_ma=d.laser.current_ma,
            temp_c=tl,
            ith_ref_ma=d.laser.ith_ma,
            slope_ref_w_per_a=d.laser.slope_w_per_a,
            t0_k=d.laser.t0_k,
            t1_k=d.laser.t1_k,
            tref_c=tref,
        )
        * db_to_lin(db=v.laser_power_db),
        _MIN_POWER_MW,
    )
    p_el_laser = laser.electrical_power_mw(
        current_ma=d.laser.current_ma, v0_v=d.laser.v0_v, series_ohm=d.laser.series_ohm
    )
    wpe = laser.wall_plug_efficiency(optical_mw=p_laser, electrical_mw=p_el_laser)
    # --- couplers ------------------------------------------------------------
    c = d.coupler

    def coupler_db(ox, oy, dil):
        eta = coupling.coupler_efficiency(
            chip_mfd_um=c.chip_mfd_um,
            fiber_mfd_um=c.fiber_mfd_um,
            offset_x_um=ox,
            offset_y_um=oy,
            gap_um=c.gap_um,
            tilt_rad=jnp.deg2rad(c.tilt_deg),
            wavelength_nm=lam,
            n_medium=c.n_medium,
            n_fiber=c.n_fiber,
            n_chip=c.n_chip,
            intrinsic_loss_db=jnp.maximum(c.intrinsic_loss_db + dil, 0.0),
        )
        return -lin_to_db(lin=eta)

    cin_db = coupler_db(v.offset_in_x_um, v.offset_in_y_um, v.coupler_in_db)
    cout_db = coupler_db(v.offset_out_x_um, v.offset_out_y_um, v.coupler_out_db)
    crx_db = coupler_db(v.offset_rx_x_um, v.offset_rx_y_um, v.coupler_rx_db)

    ch = d.channel
    els_db = jnp.maximum(ch.els_loss_db + v.els_loss_db, 0.0)
    split_db = laser.splitter_loss_db(
        n_ways=system.lanes_per_laser, excess_db_per_stage=ch.splitter_excess_db
    )
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
    fsr = ring.fsr_nm(wavelength_nm=lam, group_index=rg.group_index, length_um=length_um)
    fwhm = ring.fwhm_nm(a=a, r=r, fsr_nm=fsr)
    q_l = ring.loaded_q(wavelength_nm=lam, fwhm_nm=fwhm)
    swing_nm = 1e-3 * rg.mod_efficiency_pm_per_v * jnp.exp(v.mod_efficiency_ln) * rg.drive_vpp
    det = ring.oma_detuning_nm(fwhm_nm=fwhm, shift_nm=swing_nm)
    t_hi, t_lo = ring.modulation_levels(a=a, r=r, fsr_nm=fsr, detuning_nm=det, shift_nm=swing_nm)
    f_ring = ring.photon_lifetime_bandwidth_ghz(wavelength_nm=lam, loaded_q=q_l)
    f3db = 1.0 / jnp.sqrt(
        1.0 / (f_ring * f_ring) + 1.0 / (rg.electrical_bw_ghz * rg.electrical_bw_ghz)
    )
    bw_pen = ring.bandwidth_penalty_db(bandwidth_ghz=f3db, symbol_rate_gbd=system.symbol_rate_gbd)
    # A ring that does not modulate (lossless all-pass: T ≡ 1, or a swing below
    # −120 dB) and an ideal null (T_low = 0) are floored so that such lanes fail (or
    # pass) with finite limit states instead of ±inf.
    oma_ring_dbm = ring_in_dbm + lin_to_db(lin=jnp.maximum(t_hi - t_lo, _MIN_SWING))
    ring_il_db = -lin_to_db(lin=0.5 * (t_hi + t_lo))
    er_db = lin_to_db(lin=t_hi / jnp.maximum(t_lo, _MIN_SWING))

    # --- channel and receiver -------------------------------------------------
    oma_out_dbm = oma_ring_dbm - cout_db
    oma_rx_dbm = oma_out_dbm - ch.plant_loss_db - crx_db - ch.rx_waveguide_db
    k_avg = receiver.avg_to_oma_ratio(t_high=t_hi, t_low=t_lo)
    avg_rx_dbm = oma_rx_dbm + lin_to_db(lin=k_avg)
    rx = d.receiver
    resp = rx.responsivity_a_per_w * jnp.exp(v.responsivity_ln)
    idark = receiver.dark_current_a(
        dark_ref_na=rx.dark_na * jnp.exp(v.dark_current_ln),
        temp_c=te,
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
    required_dbm = sens_dbm + rx.penalty_db + bw_pen
    margin_db = oma_rx_dbm - required_dbm

    # --- thermal lock ---------------------------------------------------------
    eta_h = rg.heater_efficiency_nm_per_mw * jnp.exp(v.heater_efficiency_ln)
    # Wavelengths as offsets from the laser's design line: absolute values (~1311 nm)
    # would leave float32 only ~1e-4 nm of resolution in their difference.
    dl_laser = laser.wavelength_nm(
        wavelength_ref_nm=v.laser_wavelength_nm,
        temp_c=tl,
        dlambda_dt_nm_per_k=d.laser.dlambda_dt_nm_per_k,
        tref_c=tref,
    )
    dl_ring = ring.resonance_nm(
        design_nm=-rg.bias_nm,
        fab_shift_nm=v.ring_resonance_nm,
        temp_c=te,
        dlambda_dt_nm_per_k=rg.dlambda_dt_nm_per_k,
        tref_c=tref,
    )
    s_unwrapped = dl_laser + det - dl_ring
    s_min, s_max = jnp.min(s_unwrapped, axis=-1), jnp.max(s_unwrapped, axis=-1)
    fsr0 = fsr[..., 0] if jnp.ndim(fsr) else fsr
    eta0 = eta_h[..., 0] if jnp.ndim(eta_h) else eta_h
    if limits.allow_order_hop:
        # The lock may re-acquire another order inside the window: each corner uses
        # its own order, and some temperature inside a window that crosses an order
        # boundary needs a full FSR.
        shift = jnp.mod(s_unwrapped, fsr)
        worst_shift = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr0)
    else:
        # Hitless: the one order the lock margin accepts, at every corner.
        order = ring.chosen_order(s_min_nm=s_min, fsr_nm=fsr0)
        shift = s_unwrapped - order[..., None] * fsr
        worst_shift = s_max - order * fsr0
    heater_mw = ring.heater_power_mw(shift_nm=shift, efficiency_nm_per_mw=eta_h)
    heater_worst = ring.heater_power_mw(shift_nm=worst_shift, efficiency_nm_per_mw=eta0)
    lock_mw = (
        ring.lock_margin_nm(
            s_min_nm=s_min,
            s_max_nm=s_max,
            fsr_nm=fsr0,
            range_nm=rg.heater_max_mw * eta0,
            allow_order_hop=limits.allow_order_hop,
        )
        / eta0
    )

    # --- electrical power -----------------------------------------------------
    pw = d.power
    laser_share_mw = p_el_laser / d.laser.supply_efficiency / system.lanes_per_laser
    fixed_mw = pw.driver_mw + pw.tia_mw + pw.interface_pj_per_bit * system.lane_rate_gbps
    lane_mw = laser_share_mw + jnp.minimum(heater_mw, rg.heater_max_mw) + fixed_mw
    worst_lane_mw = laser_share_mw + jnp.minimum(heater_worst, rg.heater_max_mw) + fixed_mw
    pj = lane_mw / system.lane_rate_gbps

    g = jnp.stack(
        [
            jnp.min(margin_db, axis=-1),
            lock_mw,
            jnp.min(er_db, axis=-1) - lim.er_floor_db,
            lim.power_budget_pj_per_bit - worst_lane_mw / system.lane_rate_gbps,
        ],
        axis=-1,
    )

    full = lambda x: jnp.broadcast_to(x, (*shape, 4))  # noqa: E731
    lane = lambda x: jnp.broadcast_to(x, (*shape, 1))[..., 0]  # noqa: E731
    return Budget(
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
        heater_shift_nm=full(shift),
        heater_mw=full(heater_mw),
        lane_power_mw=full(lane_mw),
        pj_per_bit=full(pj),
        fsr_nm=lane(fsr),
        fwhm_nm=lane(fwhm),
        loaded_q=lane(q_l),
        ring_bw_ghz=lane(f3db),
        lock_detuning_nm=lane(det),
        heater_worst_mw=jnp.broadcast_to(heater_worst, shape),
        g=g,
    )


def limit_states(*, design, dev: Deviations | None = None, system, window, limits, dtype=None):
    """Only the limit states g[..., 4] (see :func:`lane_budget`); XLA prunes the rest."""
    return lane_budget(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    ).g
