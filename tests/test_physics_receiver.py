"""cpojax.physics.receiver: BER ↔ Q, noise and required OMA.

Pinned to closed forms and published figures (physics.md): every test compares a
model with an independent closed form, a published number or a brute-force evaluation,
with an explicit tolerance. float64 is used where a tolerance is tighter than float32
resolution; inputs are passed as explicit float64 arrays (the suite runs with strict
dtype promotion).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.physics import receiver
from cpojax.physics.units import Q_E

F64 = jnp.float64


def f64(x):
    return jnp.asarray(x, F64)


def central_fd(fun, x, h):
    """Central finite difference of a scalar function at a Python float x."""
    return (float(fun(f64(x + h))) - float(fun(f64(x - h)))) / (2.0 * h)


def test_q_for_ber_at_kp4_threshold():
    q4 = float(receiver.q_for_ber(ber=f64(2.4e-4), modulation="pam4"))
    q2 = float(receiver.q_for_ber(ber=f64(2.4e-4), modulation="nrz"))
    assert q4 == pytest.approx(3.41, abs=0.01)
    assert q2 == pytest.approx(3.49, abs=0.01)
    # SNR = 5 Q_eye² ≈ 17.7 dB (physics.md §9)
    assert 10.0 * math.log10(5.0 * q4 * q4) == pytest.approx(17.7, abs=0.1)


@pytest.mark.parametrize("ber", [1e-12, 1e-6, 2.4e-4, 1e-2])
def test_ber_round_trip(ber):
    q4 = receiver.q_for_ber(ber=f64(ber), modulation="pam4")
    assert float(receiver.ber_pam4(q_eye=q4)) == pytest.approx(ber, rel=1e-9)
    q2 = receiver.q_for_ber(ber=f64(ber), modulation="nrz")
    assert float(receiver.ber_nrz(q=q2)) == pytest.approx(ber, rel=1e-9)


@pytest.mark.parametrize("q", [2.0, 3.41, 5.0])
def test_pam4_ber_snr_relation(q):
    snr = 5.0 * q * q
    want = 0.375 * math.erfc(math.sqrt(snr / 10.0))
    assert float(receiver.ber_pam4(q_eye=f64(q))) == pytest.approx(want, rel=1e-12)
    assert float(receiver.ber_nrz(q=f64(q))) == pytest.approx(
        0.5 * math.erfc(q / math.sqrt(2.0)), rel=1e-12
    )


def test_eye_factor_and_bad_modulation():
    assert receiver.eye_factor("nrz") == 2.0
    assert receiver.eye_factor("pam4") == 6.0
    with pytest.raises(ValueError, match="modulation"):
        receiver.eye_factor("qam16")
    with pytest.raises(ValueError, match="modulation"):
        receiver.q_for_ber(ber=f64(1e-3), modulation="pam8")


def test_avg_to_oma_ratio():
    # ER = 4 → (ER + 1)/(2(ER − 1)) = 5/6
    k = float(receiver.avg_to_oma_ratio(t_high=f64(0.8), t_low=f64(0.2)))
    assert k == pytest.approx(5.0 / 6.0, rel=1e-14)


def _req_oma(**kw):
    args = dict(
        q=3.41,
        eye_factor=6.0,
        responsivity_a_per_w=0.85,
        tia_noise_a=3.5e-6,
        dark_current_a=0.0,
        bandwidth_hz=0.0,
        rin_db_hz=-400.0,
        avg_to_oma=1.0,
    )
    args.update(kw)
    return float(receiver.required_oma_mw(**{k: f64(v) for k, v in args.items()}))


@pytest.mark.parametrize(("i_tia", "want_dbm"), [(2.7e-6, -11.8), (3.5e-6, -10.7)])
def test_required_oma_thermal_noise_only(i_tia, want_dbm):
    """No shot/RIN/dark: OMA = 6·Q·i_TIA/R; R = 0.85, 2.7–3.5 µA → −11.8…−10.7 dBm."""
    q = float(receiver.q_for_ber(ber=f64(2.4e-4), modulation="pam4"))
    oma = _req_oma(q=q, tia_noise_a=i_tia)
    assert oma == pytest.approx(6.0 * q * i_tia / 0.85 * 1e3, rel=1e-12)
    assert 10.0 * math.log10(oma) == pytest.approx(want_dbm, abs=0.1)


@pytest.mark.parametrize(
    ("rin", "k", "dark", "m"),
    [(-145.0, 1.0, 50e-9, 6.0), (-136.0, 0.8, 1e-6, 6.0), (-130.0, 2.0, 0.0, 2.0)],
)
def test_required_oma_satisfies_q_condition_with_shot_and_rin(rin, k, dark, m):
    """y = m·Q·σ(y) with I_avg = k·y, σ² from noise_variance_a2 (plug the root back in)."""
    q, resp, tia, bw = 3.41, 0.85, 3.5e-6, 53e9
    oma_mw = _req_oma(
        q=q,
        eye_factor=m,
        responsivity_a_per_w=resp,
        tia_noise_a=tia,
        dark_current_a=dark,
        bandwidth_hz=bw,
        rin_db_hz=rin,
        avg_to_oma=k,
    )
    y = resp * oma_mw * 1e-3
    var = float(
        receiver.noise_variance_a2(
            tia_noise_a=f64(tia),
            avg_current_a=f64(k * y),
            dark_current_a=f64(dark),
            bandwidth_hz=f64(bw),
            rin_db_hz=f64(rin),
        )
    )
    assert y == pytest.approx(m * q * math.sqrt(var), rel=1e-9)
    # shot and RIN cost something: above the thermal-only value
    assert oma_mw > _req_oma(q=q, eye_factor=m, tia_noise_a=tia) * (1.0 + 1e-4)


def test_noise_variance_terms():
    var = float(
        receiver.noise_variance_a2(
            tia_noise_a=f64(3e-6),
            avg_current_a=f64(1e-4),
            dark_current_a=f64(1e-7),
            bandwidth_hz=f64(50e9),
            rin_db_hz=f64(-140.0),
        )
    )
    want = 9e-12 + 2 * Q_E * (1e-4 + 1e-7) * 50e9 + 1e-14 * 1e-8 * 50e9
    assert var == pytest.approx(want, rel=1e-12)


def test_required_oma_rin_floor_is_huge_not_nan():
    base = _req_oma(bandwidth_hz=53e9, rin_db_hz=-145.0)
    floor = _req_oma(bandwidth_hz=53e9, rin_db_hz=-110.0)  # K·RIN·B·k² > 1
    assert math.isfinite(floor)
    assert floor > 100.0 * base


def test_dark_current_doubles_per_doubling_temperature():
    d25 = float(receiver.dark_current_a(dark_ref_na=f64(50.0), temp_c=f64(25.0)))
    d35 = float(receiver.dark_current_a(dark_ref_na=f64(50.0), temp_c=f64(35.0)))
    d45 = float(receiver.dark_current_a(dark_ref_na=f64(50.0), temp_c=f64(45.0), doubling_k=20.0))
    assert d25 == pytest.approx(50e-9, rel=1e-14)
    assert d35 == pytest.approx(100e-9, rel=1e-14)
    assert d45 == pytest.approx(100e-9, rel=1e-14)


REQ = dict(
    q=3.41,
    eye_factor=6.0,
    responsivity_a_per_w=0.85,
    tia_noise_a=3.5e-6,
    dark_current_a=5e-8,
    bandwidth_hz=53e9,
    rin_db_hz=-140.0,
    avg_to_oma=1.2,
)


@pytest.mark.parametrize("name", ["responsivity_a_per_w", "tia_noise_a", "avg_to_oma", "q"])
def test_grad_required_oma(name):
    # tia_noise_a is ~1e-6: use a step relative to its own size
    x0 = REQ[name]
    rest = {k: f64(v) for k, v in REQ.items() if k != name}
    fun = lambda x: receiver.required_oma_mw(**rest, **{name: x})  # noqa: E731
    g = float(jax.grad(fun)(f64(x0)))
    h = 1e-5 * abs(x0)
    np.testing.assert_allclose(g, central_fd(fun, x0, h), rtol=1e-6)
