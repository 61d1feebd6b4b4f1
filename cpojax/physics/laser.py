"""Laser source (DFB in the external laser source): L–I curve, wavelength, power."""

from __future__ import annotations

import math

import jax.numpy as jnp

__all__ = [
    "current_for_power_ma",
    "electrical_power_mw",
    "optical_power_mw",
    "slope_efficiency_w_per_a",
    "splitter_loss_db",
    "threshold_current_ma",
    "wall_plug_efficiency",
    "wavelength_nm",
]


def threshold_current_ma(*, ith_ref_ma, temp_c, t0_k, tref_c=25.0):
    """Threshold current I_th(T) = I_th0·exp((T − T_ref)/T0).

    Characteristic temperature T0 ≈ 60 K for 1.3-µm InGaAsP (Coldren, Corzine &
    Mashanovitch, Diode Lasers and Photonic Integrated Circuits, 2nd ed., §2.8).
    """
    return ith_ref_ma * jnp.exp((temp_c - tref_c) / t0_k)


def slope_efficiency_w_per_a(*, slope_ref_w_per_a, temp_c, t1_k, tref_c=25.0):
    """Differential slope efficiency η_d(T) = η_d0·exp(−(T − T_ref)/T1)."""
    return slope_ref_w_per_a * jnp.exp(-(temp_c - tref_c) / t1_k)


def optical_power_mw(*, current_ma, temp_c, ith_ref_ma, slope_ref_w_per_a, t0_k, t1_k, tref_c=25.0):
    """CW output power at fixed drive current: P = η_d(T)·(I − I_th(T)), 0 below threshold.

    W/A × mA = mW. Above threshold the function is smooth; the kink at threshold is
    the physical one (no light below it).

    Args:
      current_ma: drive current [mA]; temp_c: laser temperature [°C];
      ith_ref_ma: threshold at T_ref [mA]; slope_ref_w_per_a: η_d at T_ref [W/A];
      t0_k, t1_k: characteristic temperatures of I_th and η_d [K].
    """
    ith = threshold_current_ma(ith_ref_ma=ith_ref_ma, temp_c=temp_c, t0_k=t0_k, tref_c=tref_c)
    eta = slope_efficiency_w_per_a(
        slope_ref_w_per_a=slope_ref_w_per_a, temp_c=temp_c, t1_k=t1_k, tref_c=tref_c
    )
    return eta * jnp.maximum(current_ma - ith, 0.0)


def electrical_power_mw(*, current_ma, v0_v, series_ohm):
    """Electrical input P_el = I·V(I), V(I) = V0 + I·R_s (diode turn-on + series resistance).

    mA × V = mW; I·R_s uses I in A.
    """
    return current_ma * (v0_v + 1e-3 * current_ma * series_ohm)


def wall_plug_efficiency(*, optical_mw, electrical_mw):
    """Wall-plug efficiency P_opt / P_el (≈20–30 % chip level for DFBs; docs/model.md#laser)."""
    return optical_mw / electrical_mw


def wavelength_nm(*, wavelength_ref_nm, temp_c, dlambda_dt_nm_per_k=0.1, tref_c=25.0):
    """DFB emission wavelength λ_L(T) = λ_L0 + dλ/dT·(T − T_ref), dλ/dT ≈ 0.1 nm/K.

    The grating's index tracks temperature (≈0.08–0.1 nm/K for InP DFBs; docs/model.md#laser).
    λ_L0 includes the laser's own fabrication offset δλ_L.
    """
    return wavelength_ref_nm + dlambda_dt_nm_per_k * (temp_c - tref_c)


def splitter_loss_db(*, n_ways, excess_db_per_stage):
    """Loss of a 1:N power splitter tree: 10·log10(N) + excess·log2(N) [dB].

    1:4 → 6.02 dB + 2 stages × (0.1–0.3 dB) excess (docs/model.md#laser).
    """
    n = int(n_ways)  # a count, static: lanes per laser
    return 10.0 * math.log10(n) + excess_db_per_stage * math.log2(n)


def current_for_power_ma(
    *, power_mw, temp_c, ith_ref_ma, slope_ref_w_per_a, t0_k, t1_k, tref_c=25.0
):
    """Drive current of a power-controlled (APC) laser: I = I_th(T) + P/η_d(T) [mA].

    The inverse of :func:`optical_power_mw` above threshold (Coldren et al. 2012, §2.8): an
    ELS that regulates its output power draws more current as it heats (I_th rises with T0,
    η_d falls with T1).
    """
    ith = threshold_current_ma(ith_ref_ma=ith_ref_ma, temp_c=temp_c, t0_k=t0_k, tref_c=tref_c)
    eta = slope_efficiency_w_per_a(
        slope_ref_w_per_a=slope_ref_w_per_a, temp_c=temp_c, t1_k=t1_k, tref_c=tref_c
    )
    return ith + power_mw / eta
