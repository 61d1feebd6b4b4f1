"""cpojax.physics.ring: all-pass line, FSR/FWHM, lock point, heater and lock margin.

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

from cpojax.physics import ring

F64 = jnp.float64


def f64(x):
    return jnp.asarray(x, F64)


def central_fd(fun, x, h):
    """Central finite difference of a scalar function at a Python float x."""
    return (float(fun(f64(x + h))) - float(fun(f64(x - h)))) / (2.0 * h)


def bisect(fun, lo, hi, iters=200):
    """Root of a continuous scalar function with a sign change on [lo, hi]."""
    flo = fun(lo)
    assert flo * fun(hi) < 0.0, "no sign change in bracket"
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fm = fun(mid)
        if (fm < 0.0) == (flo < 0.0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _grad_vs_fd(fun, kwargs, name, rtol=1e-6, atol=1e-10, rel_step=1e-5):
    x0 = float(kwargs[name])
    rest = {k: f64(v) for k, v in kwargs.items() if k != name}
    g = jax.grad(lambda x: fun(**rest, **{name: x}))(f64(x0))
    assert jnp.isfinite(g), f"non-finite gradient wrt {name}"
    h = rel_step * max(abs(x0), 1.0)
    fd = central_fd(lambda x: fun(**rest, **{name: x}), x0, h)
    np.testing.assert_allclose(float(g), fd, rtol=rtol, atol=atol, err_msg=name)
    return float(g)


RING_AR = [(0.97855, 0.95917), (0.99, 0.97), (0.995, 0.99), (0.97, 0.98), (0.96, 0.95)]


@pytest.mark.parametrize(("a", "r"), RING_AR)
def test_allpass_on_resonance_and_antiresonance(a, r):
    t0 = float(ring.allpass_transmission(a=f64(a), r=f64(r), phase_rad=f64(0.0)))
    tmin = float(ring.min_transmission(a=f64(a), r=f64(r)))
    assert t0 == pytest.approx((r - a) ** 2 / (1.0 - r * a) ** 2, rel=1e-10)
    assert tmin == pytest.approx(t0, rel=1e-10)
    tpi = float(ring.allpass_transmission(a=f64(a), r=f64(r), phase_rad=f64(math.pi)))
    assert tpi == pytest.approx((a + r) ** 2 / (1.0 + a * r) ** 2, rel=1e-12)
    # periodic in 2π
    t2pi = float(ring.allpass_transmission(a=f64(a), r=f64(r), phase_rad=f64(2.0 * math.pi)))
    assert t2pi == pytest.approx(t0, rel=1e-8)


def test_allpass_lossless_ring_is_all_pass():
    phases = f64(np.linspace(-3.0, 3.0, 61))
    t = ring.allpass_transmission(a=f64(1.0), r=f64(0.95), phase_rad=phases)
    np.testing.assert_allclose(np.asarray(t), 1.0, rtol=0, atol=1e-12)


def test_critical_coupling_extinguishes():
    for a in (0.9, 0.97855, 0.999):
        assert float(ring.min_transmission(a=f64(a), r=f64(a))) == 0.0
        assert float(ring.allpass_transmission(a=f64(a), r=f64(a), phase_rad=f64(0.0))) == (
            pytest.approx(0.0, abs=1e-14)
        )


def test_fsr_r5um():
    """R = 5 µm, n_g = 4.3, 1311 nm → FSR = 12.72 nm (physics.md §5)."""
    length = 2.0 * math.pi * 5.0
    fsr = float(ring.fsr_nm(wavelength_nm=f64(1311.0), group_index=f64(4.3), length_um=f64(length)))
    assert fsr == pytest.approx(1311.0**2 / (4.3 * length * 1e3), rel=1e-14)
    assert fsr == pytest.approx(12.72, abs=0.005)
    # R = 10 µm → ≈ 8.5 nm... physics.md: 5–10 µm ↔ 12.7–6.4 nm; check the 1/L scaling
    fsr10 = float(
        ring.fsr_nm(wavelength_nm=f64(1311.0), group_index=f64(4.3), length_um=f64(2 * length))
    )
    assert fsr10 == pytest.approx(0.5 * fsr, rel=1e-14)


@pytest.mark.parametrize(("a", "r"), RING_AR)
def test_fwhm_matches_measured_half_depth_width(a, r):
    """Closed-form FWHM vs the full width at half depth of the exact all-pass line (1 %)."""
    fsr = 12.7229
    t = lambda p: float(ring.allpass_transmission(a=f64(a), r=f64(r), phase_rad=f64(p)))  # noqa: E731
    half = 0.5 * (t(0.0) + t(math.pi))
    phi = bisect(lambda p: t(p) - half, 0.0, math.pi)
    measured = 2.0 * phi * fsr / (2.0 * math.pi)
    got = float(ring.fwhm_nm(a=f64(a), r=f64(r), fsr_nm=f64(fsr)))
    assert got == pytest.approx(measured, rel=0.01)
    q = float(ring.loaded_q(wavelength_nm=f64(1311.0), fwhm_nm=f64(got)))
    assert q == pytest.approx(1311.0 / got, rel=1e-14)


def test_round_trip_amplitude_and_self_coupling():
    length = 2.0 * math.pi * 5.0
    a = float(ring.round_trip_amplitude(loss_db_per_cm=f64(60.0), length_um=f64(length)))
    assert a == pytest.approx(10.0 ** (-60.0 * length * 1e-4 / 20.0), rel=1e-14)
    assert a == pytest.approx(0.97853, abs=1e-5)
    r = float(ring.self_coupling(power_coupling=f64(0.08)))
    assert r == pytest.approx(math.sqrt(0.92), rel=1e-14)


def test_photon_lifetime_bandwidth():
    nu_thz = 299_792_458.0 / 1311e-9 * 1e-12
    f = float(ring.photon_lifetime_bandwidth_ghz(wavelength_nm=f64(1311.0), loaded_q=f64(5000.0)))
    assert f == pytest.approx(nu_thz * 1e3 / 5000.0, rel=1e-12)
    assert f == pytest.approx(45.73, abs=0.01)


def test_oma_detuning_small_swing_is_max_slope_point():
    """s → 0: the lock point is the Lorentzian's steepest point x = 1/√3."""
    fwhm = 0.25
    det = float(ring.oma_detuning_nm(fwhm_nm=f64(fwhm), shift_nm=f64(1e-6)))
    assert det == pytest.approx(0.5 * fwhm / math.sqrt(3.0), rel=1e-8)


@pytest.mark.parametrize(
    ("a", "r", "swing_over_fwhm"),
    [
        (0.97855, 0.95917, 0.39),  # default design: 100 pm swing, 257 pm FWHM
        (0.97855, 0.95917, 0.1),
        (0.99, 0.97, 1.0),
        (0.995, 0.99, 2.0),
        (0.97, 0.98, 0.5),
        (0.96, 0.95, 0.25),
    ],
)
def test_oma_detuning_near_bruteforce_maximum_on_exact_line(a, r, swing_over_fwhm):
    fsr = 12.7229
    fwhm = float(ring.fwhm_nm(a=f64(a), r=f64(r), fsr_nm=f64(fsr)))
    swing = swing_over_fwhm * fwhm
    h = 0.5 * swing

    def oma(det):
        det = f64(det)

        def t(d):
            return ring.transmission_at_detuning(a=f64(a), r=f64(r), detuning_nm=d, fsr_nm=f64(fsr))

        return np.abs(np.asarray(t(det + h) - t(det - h)))

    grid = np.linspace(0.0, 0.5 * fsr, 200001)
    best = oma(grid).max()
    det_star = float(ring.oma_detuning_nm(fwhm_nm=f64(fwhm), shift_nm=f64(swing)))
    assert float(oma(det_star)) >= 0.995 * best
    # the levels helper agrees with the direct evaluation, T_high on the blue side is higher
    t_hi, t_lo = ring.modulation_levels(
        a=f64(a), r=f64(r), fsr_nm=f64(fsr), detuning_nm=f64(det_star), shift_nm=f64(swing)
    )
    assert float(t_hi) > float(t_lo)
    assert float(t_hi - t_lo) == pytest.approx(float(oma(det_star)), rel=1e-12)


def test_resonance_thermal_drift_arithmetic():
    """60 pm/K × 45 K = 2.7 nm on top of design and fabrication offsets."""
    got = float(
        ring.resonance_nm(
            design_nm=f64(1305.0),
            fab_shift_nm=f64(0.5),
            temp_c=f64(70.0),
            dlambda_dt_nm_per_k=f64(0.06),
            tref_c=25.0,
        )
    )
    assert got == pytest.approx(1305.0 + 0.5 + 2.7, abs=1e-9)
    fab = float(ring.fab_shift_nm(width_error_nm=f64(5.0), thickness_error_nm=f64(-2.0)))
    assert fab == pytest.approx(5.0 * 1.0 - 2.0 * 2.0, abs=1e-12)


def test_heater_power_arithmetic():
    got = float(ring.heater_power_mw(shift_nm=f64(5.0), efficiency_nm_per_mw=f64(0.25)))
    assert got == pytest.approx(20.0, rel=1e-14)


def test_required_shift_plain_and_wrap():
    fsr = 12.7229
    kw = dict(laser_nm=f64(1311.0), lock_detuning_nm=f64(0.1), fsr_nm=f64(fsr))
    # resonance 6 nm blue of the laser: heater pulls it red by 6.1 nm
    s = float(ring.required_shift_nm(resonance_nm=f64(1305.0), **kw))
    assert s == pytest.approx(6.1, abs=1e-9)
    # resonance 0.9 nm red of the lock point: next-bluer order, s + FSR
    s = float(ring.required_shift_nm(resonance_nm=f64(1312.0), **kw))
    assert s == pytest.approx(-0.9 + fsr, abs=1e-9)
    # more than one FSR blue: one order is skipped
    s = float(ring.required_shift_nm(resonance_nm=f64(1311.1 - fsr - 2.0), **kw))
    assert s == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize(
    ("smin", "smax", "want"),
    [
        (1.0, 5.0, 5.0),  # inside one order: s_max
        (-1.0, 5.0, 12.0),  # crosses 0: a full FSR
        (13.0, 17.0, 5.0),  # inside the next order: s_max mod FSR
        (11.0, 14.0, 12.0),  # crosses FSR
        (-5.0, -1.0, 11.0),  # entirely red: s_max + FSR
    ],
)
def test_window_worst_shift(smin, smax, want):
    got = float(
        ring.window_worst_shift_nm(s_min_nm=f64(smin), s_max_nm=f64(smax), fsr_nm=f64(12.0))
    )
    assert got == pytest.approx(want, abs=1e-12)


def test_bandwidth_penalty_closed_form():
    rs = 106.25
    # exp(−2π f/Rs) = 1/2 → 3.0103 dB
    f = rs * math.log(2.0) / (2.0 * math.pi)
    got = float(ring.bandwidth_penalty_db(bandwidth_ghz=f64(f), symbol_rate_gbd=f64(rs)))
    assert got == pytest.approx(10.0 * math.log10(2.0), rel=1e-12)
    for f in (20.0, 45.0, 70.0):
        want = -10.0 * math.log10(1.0 - math.exp(-2.0 * math.pi * f / rs))
        got = float(ring.bandwidth_penalty_db(bandwidth_ghz=f64(f), symbol_rate_gbd=f64(rs)))
        assert got == pytest.approx(want, rel=1e-12)
    # monotone: wider bandwidth, smaller penalty
    assert float(ring.bandwidth_penalty_db(bandwidth_ghz=f64(70.0), symbol_rate_gbd=f64(rs))) < (
        float(ring.bandwidth_penalty_db(bandwidth_ghz=f64(45.0), symbol_rate_gbd=f64(rs)))
    )


def test_allpass_float32_near_resonance_matches_float64():
    """float32 evaluation of T(φ) near resonance is accurate to ~float32 resolution."""
    a, r = 0.97855, 0.95917
    phases = np.linspace(0.0, 0.1, 41)
    t64 = np.asarray(ring.allpass_transmission(a=f64(a), r=f64(r), phase_rad=f64(phases)))
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    t32 = ring.allpass_transmission(a=f32(a), r=f32(r), phase_rad=f32(phases))
    assert t32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(t32, np.float64), t64, rtol=1e-5)


@pytest.mark.parametrize("name", ["a", "r", "phase_rad"])
@pytest.mark.parametrize("phase", [0.0, 0.03, 1.0])
def test_grad_allpass(name, phase):
    _grad_vs_fd(
        ring.allpass_transmission, dict(a=0.97855, r=0.95917, phase_rad=phase), name, atol=1e-9
    )


@pytest.mark.parametrize("name", ["fwhm_nm", "shift_nm"])
def test_grad_oma_detuning(name):
    _grad_vs_fd(ring.oma_detuning_nm, dict(fwhm_nm=0.2568, shift_nm=0.1), name)


@pytest.mark.parametrize("name", ["a", "r"])
def test_grad_fwhm(name):
    _grad_vs_fd(ring.fwhm_nm, dict(a=0.97855, r=0.95917, fsr_nm=12.7229), name)


def test_lock_margin_continuous_and_signed():
    """lock_margin_nm: >= 0 exactly on the lockable set, continuous across the order wrap."""
    fsr, span, rng_nm = 12.0, 6.0, 10.0  # pass set in x = s_min mod FSR is [0, 4]
    s_min = np.linspace(-30.0, 30.0, 60001)
    g = np.asarray(
        ring.lock_margin_nm(
            s_min_nm=f64(s_min), s_max_nm=f64(s_min + span), fsr_nm=fsr, range_nm=rng_nm
        )
    )
    x = np.mod(s_min, fsr)
    np.testing.assert_array_equal(g >= 0, x <= rng_nm - span)
    assert np.max(np.abs(np.diff(g))) <= 1.001 * (s_min[1] - s_min[0])  # 1-Lipschitz: no jump
    # distance to the nearest edge: x = 1 → 1; x = 11 → −1 (blue edge, wrapped); x = 6 → −2
    for xv, want in ((1.0, 1.0), (11.0, -1.0), (6.0, -2.0), (3.0, 1.0)):
        got = float(
            ring.lock_margin_nm(
                s_min_nm=f64(xv), s_max_nm=f64(xv + span), fsr_nm=fsr, range_nm=rng_nm
            )
        )
        assert got == pytest.approx(want, abs=1e-12)
    # order hop allowed: a heater covering more than an FSR always locks
    g_hop = np.asarray(
        ring.lock_margin_nm(
            s_min_nm=f64(s_min),
            s_max_nm=f64(s_min + span),
            fsr_nm=fsr,
            range_nm=13.0,
            allow_order_hop=True,
        )
    )
    assert np.all(g_hop > 0)
    # hitless (default): the same heater must also cover the window span within one order,
    # so it still fails part of the period ...
    g_hitless = np.asarray(
        ring.lock_margin_nm(
            s_min_nm=f64(s_min), s_max_nm=f64(s_min + span), fsr_nm=fsr, range_nm=13.0
        )
    )
    np.testing.assert_array_equal(g_hitless >= 0, x <= 13.0 - span)
    # ... and always locks only once R − Δ >= FSR
    g_big = np.asarray(
        ring.lock_margin_nm(
            s_min_nm=f64(s_min), s_max_nm=f64(s_min + span), fsr_nm=fsr, range_nm=18.5
        )
    )
    assert np.all(g_big > 0)
