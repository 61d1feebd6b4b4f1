"""Data types of the lane model: the deviations of a lane, its budget and the front stage.

:class:`Deviations` (process deviations of one lane, the variation's output),
:class:`Budget` (every stage of the link budget at every corner, for reports) and
:class:`Front` (what :func:`cpojax.physics.link.lane_front` hands to ``lane_back``).
Re-exported by :mod:`cpojax.physics.link`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

__all__ = ["G_MAX", "LIMIT_STATES", "Budget", "Deviations", "Front"]

LIMIT_STATES = ("optical", "thermal", "modulator", "power")
#: Smallest ring swing and ring null transmission, linear (−120 dB): floors that keep
#: the limit states finite for a ring that does not modulate or an ideal null.
MIN_SWING = 1e-12
#: Largest |g| reported; larger values (overflows to ±inf included) are clamped to it.
G_MAX = 1e30
#: Optical power of a laser below threshold, mW (−90 dBm).
MIN_POWER_MW = 1e-9


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


def float_dtype(*trees):
    """float64 if any array leaf is float64, else float32 (weak Python floats don't vote)."""
    for leaf in jax.tree_util.tree_leaves(trees):
        if hasattr(leaf, "dtype") and leaf.dtype == jnp.float64:
            return jnp.float64
    return jnp.float32


def corner_temperatures(win, shape):
    """Engine and laser temperatures (T_E, T_L) of the four corners, each shaped
    ``(1,) * len(shape) + (4,)``: corners (min, min), (min, max), (max, min), (max, max)."""
    te = jnp.stack(
        [win.engine_temp_min_c, win.engine_temp_min_c, win.engine_temp_max_c, win.engine_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    tl = jnp.stack(
        [win.laser_temp_min_c, win.laser_temp_max_c, win.laser_temp_min_c, win.laser_temp_max_c]
    ).reshape((1,) * len(shape) + (4,))
    return te, tl
