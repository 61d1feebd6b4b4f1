"""Unit conversions and physical constants (CODATA 2018 exact values)."""

from __future__ import annotations

import jax.numpy as jnp

C_M_PER_S = 299_792_458.0  # speed of light, exact
Q_E = 1.602_176_634e-19  # elementary charge [C], exact
# Powers below this are treated as "no light" when converting to dB, so that a
# dead lane gives a large negative, finite margin instead of -inf / NaN.
_P_FLOOR_MW = 1e-12


def db_to_lin(*, db):
    """Power ratio from decibels: 10^(dB/10)."""
    return 10.0 ** (db / 10.0)


def lin_to_db(*, lin):
    """Decibels from a power ratio: 10·log10(x), floored at 1e-12 to stay finite."""
    return 10.0 * jnp.log10(jnp.maximum(lin, _P_FLOOR_MW))


def mw_to_dbm(*, power_mw):
    """dBm from mW: 10·log10(P / 1 mW), floored at 1e-12 mW (−120 dBm)."""
    return lin_to_db(lin=power_mw)


def dbm_to_mw(*, power_dbm):
    """mW from dBm."""
    return db_to_lin(db=power_dbm)


def optical_frequency_thz(*, wavelength_nm):
    """ν = c/λ in THz."""
    return C_M_PER_S / (wavelength_nm * 1e-9) * 1e-12
