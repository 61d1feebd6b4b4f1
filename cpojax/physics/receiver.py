"""Receiver: Ge photodiode + TIA noise, BER for NRZ and PAM4, required OMA, sensitivity."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import erfc, ndtri

from cpojax.physics.units import Q_E

__all__ = [
    "avg_to_oma_ratio",
    "ber_nrz",
    "ber_pam4",
    "dark_current_a",
    "eye_factor",
    "noise_variance_a2",
    "q_for_ber",
    "required_oma_mw",
]


def eye_factor(modulation: str) -> float:
    """Ratio R·OMA_outer / (σ·Q) at the decision threshold: 2 for NRZ, 6 for PAM4.

    NRZ: Q = R·OMA/(2σ). PAM4 (equal eyes): Q_eye = R·OMA_outer/(6σ) because each of
    the three eyes is one third of the outer swing (docs/model.md#ber).
    """
    if modulation == "nrz":
        return 2.0
    if modulation == "pam4":
        return 6.0
    raise ValueError(f"modulation must be 'nrz' or 'pam4', got {modulation!r}")


def ber_nrz(*, q):
    """NRZ bit error ratio ½·erfc(Q/√2) for Gaussian noise (Agrawal, Fiber-Optic Comm. §4.5)."""
    return 0.5 * erfc(q / jnp.sqrt(2.0))


def ber_pam4(*, q_eye):
    """Gray-coded PAM4 BER ¾·Q_f(Q_eye) = (3/8)·erfc(Q_eye/√2); SNR = 5·Q_eye².

    Three eyes have 6 edges over 4 symbols, so the symbol error rate is (3/2)·Q_f(Q_eye);
    Gray coding makes each symbol error one bit of two (docs/model.md#ber).
    """
    return 0.375 * erfc(q_eye / jnp.sqrt(2.0))


def q_for_ber(*, ber, modulation: str):
    """Q (NRZ) or Q_eye (PAM4) needed for a BER: −Φ⁻¹(BER) or −Φ⁻¹(4·BER/3).

    At the KP4 threshold 2.4e-4: NRZ 3.49, PAM4 3.41.
    """
    if modulation == "nrz":
        return -ndtri(ber)
    if modulation == "pam4":
        return -ndtri(4.0 * ber / 3.0)
    raise ValueError(f"modulation must be 'nrz' or 'pam4', got {modulation!r}")


def dark_current_a(*, dark_ref_na, temp_c, doubling_k=10.0, tref_c=25.0):
    """Ge PD dark current I_d(T) = I_d0·2^((T − T_ref)/T_d) [A]; T_d ≈ 10 K [E]."""
    return dark_ref_na * 1e-9 * 2.0 ** ((temp_c - tref_c) / doubling_k)


def noise_variance_a2(*, tia_noise_a, avg_current_a, dark_current_a, bandwidth_hz, rin_db_hz):
    """Total receiver noise σ² = i_TIA² + 2q(I_avg + I_d)·B + RIN·I_avg²·B [A²].

    Thermal/TIA input noise (integrated, rms), shot noise and laser relative
    intensity noise (docs/model.md#noise; Agrawal, 3rd ed., §4.4). The same σ is used for
    every level (evaluated at the average photocurrent).
    """
    rin = 10.0 ** (rin_db_hz / 10.0)
    return (
        tia_noise_a * tia_noise_a
        + 2.0 * Q_E * (avg_current_a + dark_current_a) * bandwidth_hz
        + rin * avg_current_a * avg_current_a * bandwidth_hz
    )


def avg_to_oma_ratio(*, t_high, t_low, min_swing=1e-12):
    """k = P_avg / OMA = (T_high + T_low) / (2·(T_high − T_low)) = (ER + 1)/(2(ER − 1)).

    The swing T_high − T_low is floored at ``min_swing`` (a −120 dB modulation
    depth): a modulator that does not modulate (a lossless all-pass ring, T ≡ 1)
    gets a huge but finite ratio — its lane fails — instead of a division by zero.
    """
    return 0.5 * (t_high + t_low) / jnp.maximum(t_high - t_low, min_swing)


def required_oma_mw(
    *,
    q,
    eye_factor,
    responsivity_a_per_w,
    tia_noise_a,
    dark_current_a,
    bandwidth_hz,
    rin_db_hz,
    avg_to_oma,
):
    """OMA (outer) that reaches Q exactly, with signal-dependent shot and RIN noise [mW].

    With photocurrent swing y = R·OMA and I_avg = k·y (k = P_avg/OMA), the condition
    y = m·Q·σ(y) (m = eye factor) squares to
    y²·(1 − K·RIN·B·k²) − K·2qBk·y − K·(i_TIA² + 2qB·I_d) = 0, K = (mQ)²,
    whose positive root is taken (docs/model.md#required-oma). When
    1 − K·RIN·B·k² <= 0 the RIN floor makes the BER unreachable at any power; the
    leading coefficient is floored at 1e-6 so the required OMA becomes huge (the
    margin very negative) instead of NaN.
    """
    kk = (eye_factor * q) ** 2
    rin = 10.0 ** (rin_db_hz / 10.0)
    qa = jnp.maximum(1.0 - kk * rin * bandwidth_hz * avg_to_oma * avg_to_oma, 1e-6)
    qb = kk * 2.0 * Q_E * bandwidth_hz * avg_to_oma
    qc = kk * (tia_noise_a * tia_noise_a + 2.0 * Q_E * bandwidth_hz * dark_current_a)
    y = (qb + jnp.sqrt(qb * qb + 4.0 * qa * qc)) / (2.0 * qa)
    return y / responsivity_a_per_w * 1e3
