"""Physics models pinned to closed forms and published figures (physics.md).

Every test compares a model with an independent closed form, a published number
or a brute-force evaluation, with an explicit tolerance. float64 is used where a
tolerance is tighter than float32 resolution; inputs are passed as explicit
float64 arrays (the suite runs with strict dtype promotion).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.physics import coupling, laser, link, receiver, ring
from cpojax.physics.units import Q_E
from cpojax.scenario import Scenario

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


# =========================================================================== coupling
OVERLAP_NOMINAL = dict(
    w1_um=3.0, w2_um=4.6, offset_um=0.0, gap_um=0.0, tilt_rad=0.0, wavelength_nm=1311.0
)


def overlap(**kw):
    args = {**OVERLAP_NOMINAL, **kw}
    return float(coupling.mode_overlap(**{k: f64(v) for k, v in args.items()}))


@pytest.mark.parametrize(("w1", "w2", "d"), [(3.0, 4.6, 0.0), (3.0, 4.6, 1.3), (1.5, 5.2, 2.0)])
def test_mode_overlap_offset_only_closed_form(w1, w2, d):
    s = w1 * w1 + w2 * w2
    want = (2.0 * w1 * w2 / s) ** 2 * math.exp(-2.0 * d * d / s)
    assert overlap(w1_um=w1, w2_um=w2, offset_um=d) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("d", [0.3, 1.0, 2.5])
def test_mode_overlap_equal_waists_offset(d):
    w = 4.6
    assert overlap(w1_um=w, w2_um=w, offset_um=d) == pytest.approx(
        math.exp(-d * d / (w * w)), rel=1e-12
    )


@pytest.mark.parametrize(("theta", "n"), [(0.01, 1.0), (0.02, 1.45), (0.05, 1.0)])
def test_mode_overlap_equal_waists_tilt(theta, n):
    w, lam_um = 4.6, 1.311
    want = math.exp(-((math.pi * n * w * theta / lam_um) ** 2))
    got = overlap(w1_um=w, w2_um=w, tilt_rad=theta, n_medium=n)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(("z", "n"), [(5.0, 1.0), (20.0, 1.45), (100.0, 1.0)])
def test_mode_overlap_equal_waists_gap(z, n):
    w, lam_um = 4.6, 1.311
    zz = lam_um * z / (2.0 * math.pi * n * w * w)
    got = overlap(w1_um=w, w2_um=w, gap_um=z, n_medium=n)
    assert got == pytest.approx(1.0 / (1.0 + zz * zz), rel=1e-12)


def test_mode_overlap_perfect_alignment_equal_waists_is_one():
    for w in (1.5, 3.0, 4.6, 5.2):
        assert overlap(w1_um=w, w2_um=w) == pytest.approx(1.0, abs=1e-14)


def test_mode_overlap_symmetric_in_waists_for_offset_only():
    for w1, w2, d in [(3.0, 4.6, 1.0), (1.0, 5.0, 0.4), (2.2, 2.9, 3.0)]:
        a = overlap(w1_um=w1, w2_um=w2, offset_um=d)
        b = overlap(w1_um=w2, w2_um=w1, offset_um=d)
        assert a == pytest.approx(b, rel=1e-13)


def test_mode_overlap_xy_offsets_combine_in_quadrature():
    for x, y in [(1.0, 0.0), (0.6, 0.8), (1.5, -2.0)]:
        r = math.hypot(x, y)
        got = overlap(offset_um=x, offset_y_um=y, gap_um=10.0)
        assert got == pytest.approx(overlap(offset_um=r, gap_um=10.0), rel=1e-12)
        # and the y offset alone is the same as the x offset alone (no tilt)
        assert overlap(offset_y_um=r) == pytest.approx(overlap(offset_um=r), rel=1e-12)


def test_mode_overlap_never_exceeds_one_on_random_grid():
    rng = np.random.default_rng(1234)
    n = 20000
    eta = coupling.mode_overlap(
        w1_um=f64(rng.uniform(0.5, 8.0, n)),
        w2_um=f64(rng.uniform(0.5, 8.0, n)),
        offset_um=f64(rng.uniform(-5.0, 5.0, n)),
        offset_y_um=f64(rng.uniform(-5.0, 5.0, n)),
        gap_um=f64(rng.uniform(0.0, 60.0, n)),
        tilt_rad=f64(rng.uniform(-0.15, 0.15, n)),
        wavelength_nm=f64(rng.uniform(1260.0, 1625.0, n)),
        n_medium=f64(rng.uniform(1.0, 1.6, n)),
    )
    eta = np.asarray(eta)
    assert np.all(np.isfinite(eta))
    assert eta.max() <= 1.0 + 1e-12
    assert eta.min() >= 0.0


@pytest.mark.parametrize(("mfd", "want"), [(9.2, 2.20), (3.0, 0.72)])
def test_one_db_lateral_tolerance(mfd, want):
    """physics.md §3: 1-dB lateral tolerance ≈ 2.2 µm (9.2 µm MFD), ≈ 0.72 µm (3 µm MFD)."""
    w = 0.5 * mfd
    d1 = bisect(lambda d: -10.0 * math.log10(overlap(w1_um=w, w2_um=w, offset_um=d)) - 1.0, 0, w)
    assert d1 == pytest.approx(want, abs=0.01)
    # closed form of the same: d = w·sqrt(0.1·ln 10)
    assert d1 == pytest.approx(w * math.sqrt(0.1 * math.log(10.0)), rel=1e-9)


def test_fresnel_fiber_air():
    n = 1.4677
    want = 1.0 - ((n - 1.0) / (n + 1.0)) ** 2
    assert float(coupling.fresnel_transmission(n1=f64(n), n2=f64(1.0))) == pytest.approx(
        want, rel=1e-14
    )
    assert float(coupling.fresnel_transmission(n1=f64(1.0), n2=f64(n))) == pytest.approx(
        want, rel=1e-14
    )
    assert want == pytest.approx(0.96408, abs=1e-5)
    assert float(coupling.fresnel_transmission(n1=f64(1.45), n2=f64(1.45))) == 1.0


def test_coupler_efficiency_is_overlap_times_fresnel_times_intrinsic():
    kw = dict(
        chip_mfd_um=6.0,
        fiber_mfd_um=9.2,
        offset_x_um=0.4,
        offset_y_um=-0.3,
        gap_um=3.0,
        tilt_rad=0.0,
        wavelength_nm=1311.0,
        n_medium=1.0,
        n_fiber=1.4677,
        n_chip=1.45,
        intrinsic_loss_db=1.2,
    )
    got = float(coupling.coupler_efficiency(**{k: f64(v) for k, v in kw.items()}))
    eta = overlap(w1_um=3.0, w2_um=4.6, offset_um=0.4, offset_y_um=-0.3, gap_um=3.0)
    fres = (1.0 - (0.4677 / 2.4677) ** 2) * (1.0 - (0.45 / 2.45) ** 2)
    assert got == pytest.approx(eta * fres * 10.0 ** (-0.12), rel=1e-12)


# =========================================================================== ring
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


# =========================================================================== laser
LASER = dict(ith_ref_ma=20.0, slope_ref_w_per_a=0.32, t0_k=60.0, t1_k=200.0, tref_c=25.0)


def test_threshold_and_slope_exponentials():
    ith = float(laser.threshold_current_ma(ith_ref_ma=f64(20.0), temp_c=f64(85.0), t0_k=f64(60.0)))
    assert ith == pytest.approx(20.0 * math.exp(1.0), rel=1e-14)
    eta = float(
        laser.slope_efficiency_w_per_a(slope_ref_w_per_a=f64(0.32), temp_c=f64(65.0), t1_k=200.0)
    )
    assert eta == pytest.approx(0.32 * math.exp(-0.2), rel=1e-14)


def test_optical_power_li_curve():
    for temp in (25.0, 55.0):
        ith = 20.0 * math.exp((temp - 25.0) / 60.0)
        eta = 0.32 * math.exp(-(temp - 25.0) / 200.0)
        p = float(laser.optical_power_mw(current_ma=f64(170.0), temp_c=f64(temp), **LASER))
        assert p == pytest.approx(eta * (170.0 - ith), rel=1e-13)
    assert float(laser.optical_power_mw(current_ma=f64(170.0), temp_c=f64(25.0), **LASER)) == (
        pytest.approx(48.0, rel=1e-13)
    )
    # below threshold: no light (threshold at 85 °C is 54.4 mA)
    assert float(laser.optical_power_mw(current_ma=f64(50.0), temp_c=f64(85.0), **LASER)) == 0.0
    assert float(laser.optical_power_mw(current_ma=f64(0.0), temp_c=f64(25.0), **LASER)) == 0.0


def test_electrical_power_and_wall_plug():
    p = float(laser.electrical_power_mw(current_ma=f64(170.0), v0_v=f64(0.9), series_ohm=f64(1.5)))
    assert p == pytest.approx(170.0 * (0.9 + 0.170 * 1.5), rel=1e-14)
    wpe = float(laser.wall_plug_efficiency(optical_mw=f64(48.0), electrical_mw=f64(p)))
    assert wpe == pytest.approx(48.0 / 196.35, rel=1e-12)


def test_laser_wavelength_drift():
    got = float(laser.wavelength_nm(wavelength_ref_nm=f64(1311.0), temp_c=f64(55.0)))
    assert got == pytest.approx(1311.0 + 0.1 * 30.0, abs=1e-10)


def test_splitter_loss():
    assert laser.splitter_loss_db(n_ways=4, excess_db_per_stage=0.2) == pytest.approx(
        10.0 * math.log10(4.0) + 2 * 0.2, rel=1e-14
    )
    assert laser.splitter_loss_db(n_ways=4, excess_db_per_stage=0.0) == pytest.approx(
        6.02, abs=0.005
    )
    assert laser.splitter_loss_db(n_ways=1, excess_db_per_stage=0.3) == 0.0
    assert laser.splitter_loss_db(n_ways=8, excess_db_per_stage=0.1) == pytest.approx(
        10.0 * math.log10(8.0) + 0.3, rel=1e-14
    )


# =========================================================================== receiver
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


# =========================================================================== gradients
def _grad_vs_fd(fun, kwargs, name, rtol=1e-6, atol=1e-10, rel_step=1e-5):
    x0 = float(kwargs[name])
    rest = {k: f64(v) for k, v in kwargs.items() if k != name}
    g = jax.grad(lambda x: fun(**rest, **{name: x}))(f64(x0))
    assert jnp.isfinite(g), f"non-finite gradient wrt {name}"
    h = rel_step * max(abs(x0), 1.0)
    fd = central_fd(lambda x: fun(**rest, **{name: x}), x0, h)
    np.testing.assert_allclose(float(g), fd, rtol=rtol, atol=atol, err_msg=name)
    return float(g)


OVERLAP_GENERIC = dict(
    w1_um=3.0,
    w2_um=4.6,
    offset_um=0.7,
    offset_y_um=-0.4,
    gap_um=8.0,
    tilt_rad=0.02,
    wavelength_nm=1311.0,
    n_medium=1.45,
)


@pytest.mark.parametrize("name", list(OVERLAP_GENERIC))
def test_grad_mode_overlap(name):
    _grad_vs_fd(coupling.mode_overlap, OVERLAP_GENERIC, name)


def test_grad_mode_overlap_at_zero_offset():
    kw = {**OVERLAP_GENERIC, "offset_um": 0.0, "offset_y_um": 0.0, "tilt_rad": 0.0}
    for name in kw:
        _grad_vs_fd(coupling.mode_overlap, kw, name)
    g = jax.grad(
        lambda x: coupling.mode_overlap(**{**{k: f64(v) for k, v in kw.items()}, "offset_um": x})
    )(f64(0.0))
    assert float(g) == 0.0  # the offset enters squared


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


@pytest.mark.parametrize("name", ["current_ma", "temp_c"])
def test_grad_optical_power(name):
    _grad_vs_fd(laser.optical_power_mw, dict(current_ma=170.0, temp_c=55.0, **LASER), name)


# =========================================================================== link
SC = Scenario.default()


def budget(sc=SC, dev=None, dtype=None):
    """lane_budget under jit (one compile is much cheaper than eager op-by-op dispatch).

    Everything is closed over, so Python floats stay weak-typed exactly as in an eager
    call and the dtype rules are those of lane_budget itself.
    """
    return jax.jit(
        lambda: link.lane_budget(
            design=sc.design,
            dev=dev,
            system=sc.system,
            window=sc.window,
            limits=sc.limits,
            dtype=dtype,
        )
    )()


def _g(sc=SC, dev=None):
    return np.asarray(budget(sc, dev).g, np.float64)


def test_default_passes_all_limit_states_with_few_db_margin():
    b = budget()
    g = np.asarray(b.g, np.float64)
    assert g.shape == (4,)
    assert np.all(g > 0.0), dict(zip(link.LIMIT_STATES, g, strict=True))
    margin = np.asarray(b.margin_db, np.float64)
    assert margin.shape == (4,)
    assert np.all((margin > 2.0) & (margin < 8.0)), margin
    assert g[0] == pytest.approx(margin.min(), abs=1e-6)
    # physics.md: tens of mW of heater per ring, roughly 5–7 pJ/bit... 4.5–7 here
    assert 10.0 < float(b.heater_worst_mw) < SC.design.ring.heater_max_mw
    pj = np.asarray(b.pj_per_bit)
    assert np.all((pj > 4.5) & (pj < 7.0)), pj
    # FSR / Q of the default ring (physics.md §5: R = 5 µm → 12.7 nm, Q_L 3k–8k)
    assert float(b.fsr_nm) == pytest.approx(12.72, abs=0.01)
    assert 3000.0 < float(b.loaded_q) < 8000.0
    assert float(b.loaded_q) == pytest.approx(1311.0 / float(b.fwhm_nm), rel=1e-5)


def test_default_budget_chain_is_consistent():
    """OMA_rx = OMA_ring − coupler_out − plant − coupler_rx − rx waveguide, margin = rx − req."""
    b = budget(dtype=F64)
    oma_rx = (
        b.oma_ring_dbm - b.coupler_out_db - b.plant_loss_db - b.coupler_rx_db - b.rx_waveguide_db
    )
    np.testing.assert_allclose(np.asarray(b.oma_rx_dbm), np.asarray(oma_rx), atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(b.margin_db), np.asarray(b.oma_rx_dbm - b.required_oma_dbm), atol=1e-12
    )
    req = b.sensitivity_dbm + b.impl_penalty_db + b.bandwidth_penalty_db
    np.testing.assert_allclose(np.asarray(b.required_oma_dbm), np.asarray(req), atol=1e-12)
    n_split, excess = SC.system.lanes_per_laser, SC.design.channel.splitter_excess_db
    np.testing.assert_allclose(
        np.asarray(b.splitter_db),
        10 * math.log10(n_split) + math.log2(n_split) * excess,
        atol=1e-12,
    )
    eta_h = SC.design.ring.heater_efficiency_nm_per_mw
    # heater power at each corner = (λ_L + δ − λ_R) mod FSR / η_h
    np.testing.assert_allclose(
        np.asarray(b.heater_mw), np.asarray(b.heater_shift_nm) / eta_h, rtol=1e-12
    )
    corners = np.asarray(SC.corners())  # (T_E, T_L), T_E-major
    np.testing.assert_array_equal(np.asarray(b.engine_temp_c), corners[:, 0])
    np.testing.assert_array_equal(np.asarray(b.laser_temp_c), corners[:, 1])
    # no wrap in the default window: the worst shift is the largest corner shift
    assert float(b.heater_worst_mw) == pytest.approx(
        float(np.max(np.asarray(b.heater_mw))), rel=1e-12
    )


def test_lateral_offset_fails_optical_only():
    g = _g(dev=link.Deviations(offset_out_x_um=10.0))
    assert g[0] < 0.0
    assert np.all(g[1:] > 0.0), g


def test_offset_y_on_rx_coupler_fails_optical_only():
    g = _g(dev=link.Deviations(offset_rx_y_um=-10.0))
    assert g[0] < 0.0
    assert np.all(g[1:] > 0.0), g


def test_small_heater_fails_thermal():
    sc = SC.replace({"design.ring.heater_max_mw": 20.0})
    g = _g(sc)
    assert g[1] < 0.0
    assert g[0] > 0.0 and g[2] > 0.0 and g[3] > 0.0, g


def test_wrap_inside_window_needs_full_fsr():
    """A resonance shift that puts an order boundary inside the window costs a full FSR."""
    nominal = budget(dtype=F64)
    shifts = np.asarray(nominal.heater_shift_nm)
    fsr = float(nominal.fsr_nm)
    eta_h = SC.design.ring.heater_efficiency_nm_per_mw
    assert shifts.max() - shifts.min() < fsr - 1.0  # the nominal window spans one order
    # red-shift the ring by 1 nm more than the smallest corner shift: the corner with the
    # smallest shift now needs s + FSR, and some temperature inside the window a full FSR
    dev = link.Deviations(ring_resonance_nm=f64(shifts.min() + 1.0))
    b = budget(dev=dev, dtype=F64)
    assert float(b.heater_worst_mw) == pytest.approx(fsr / eta_h, rel=1e-12)
    assert float(np.max(np.asarray(b.heater_mw))) == pytest.approx((fsr - 1.0) / eta_h, rel=1e-9)
    g = np.asarray(b.g)
    # the continuous lock margin: the resonance is 1 nm past the blue edge (it crossed the
    # lock point at the hottest-ring corner and the next order is out of reach), so the
    # margin is −1 nm of heater shift, i.e. −1/η_h mW
    assert g[1] == pytest.approx(-1.0 / eta_h, rel=1e-9)
    # with a small heater the lane fails thermal, and only thermal
    small = SC.replace({"design.ring.heater_max_mw": 20.0})
    g = _g(small, dev)
    assert g[1] < 0.0 and g[0] > 0.0 and g[2] > 0.0 and g[3] > 0.0, g


def test_weak_drive_fails_modulator():
    g = _g(SC.replace({"design.ring.drive_vpp": 0.5}))
    assert g[2] < 0.0
    assert g[1] > 0.0 and g[3] > 0.0, g  # optical may fail too (smaller OMA)


def test_tight_power_budget_fails_power_only():
    g = _g(SC.replace({"limits.power_budget_pj_per_bit": 4.0}))
    assert g[3] < 0.0
    assert np.all(g[:3] > 0.0), g


def _random_dev(shape, dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    names = [f.name for f in dataclasses.fields(link.Deviations)]
    sig = {n: 0.3 for n in names}
    sig.update(ring_resonance_nm=1.0, ring_loss_db_per_cm=2.0, laser_wavelength_nm=0.3)
    return link.Deviations(
        **{n: jnp.asarray(scale * sig[n] * rng.standard_normal(shape), dtype) for n in names}
    )


def test_shapes_and_dtypes():
    b = budget(dev=_random_dev((5, 3), jnp.float32))
    assert b.g.shape == (5, 3, 4)
    assert b.g.dtype == jnp.float32
    for name in ("margin_db", "er_db", "heater_mw", "lane_power_mw", "oma_rx_dbm", "pj_per_bit"):
        assert getattr(b, name).shape == (5, 3, 4), name
        assert getattr(b, name).dtype == jnp.float32, name
    for name in ("fsr_nm", "fwhm_nm", "loaded_q", "lock_detuning_nm", "heater_worst_mw"):
        assert getattr(b, name).shape == (5, 3), name
    b64 = budget(dev=_random_dev((5, 3), F64))
    assert b64.g.dtype == jnp.float64
    assert b64.margin_db.dtype == jnp.float64
    # float32 default for the nominal lane (Python-float design)
    assert budget().g.dtype == jnp.float32
    # one array field among scalars still broadcasts
    g = budget(dev=link.Deviations(offset_in_x_um=jnp.zeros((2, 7), jnp.float32))).g
    assert g.shape == (2, 7, 4)
    assert g.dtype == jnp.float32


def test_float32_matches_float64_nominal():
    b32 = budget(dtype=jnp.float32)
    b64 = budget(dtype=F64)
    g32, g64 = np.asarray(b32.g, np.float64), np.asarray(b64.g)
    # dB limit states (optical, modulator) within 1e-4 dB
    np.testing.assert_allclose(g32[[0, 2]], g64[[0, 2]], rtol=0, atol=1e-4)
    # thermal: λ ≈ 1311 nm has a float32 ulp of 1.2e-4 nm = 5e-4 mW at 0.25 nm/mW
    np.testing.assert_allclose(g32[1], g64[1], rtol=0, atol=1e-3)
    np.testing.assert_allclose(g32[3], g64[3], rtol=0, atol=1e-5)


def test_float32_matches_float64_with_deviations():
    g32 = np.asarray(budget(dev=_random_dev((5, 3), jnp.float32)).g, np.float64)
    g64 = np.asarray(budget(dev=_random_dev((5, 3), F64)).g)
    np.testing.assert_allclose(g32[..., [0, 2]], g64[..., [0, 2]], rtol=0, atol=1e-4)


DEV_NAMES = [f.name for f in dataclasses.fields(link.Deviations)]


@pytest.fixture(scope="module")
def link_grad():
    """jit(sum(g)) and its jit-compiled gradient wrt (Design, Deviations), float64.

    One compile serves both gradient tests (the backward pass of the whole lane is the
    expensive part of this file).
    """
    design64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, F64), SC.design)
    dev0 = link.Deviations(**{n: jnp.zeros((), F64) for n in DEV_NAMES})

    def total(design, dev):
        g = link.limit_states(
            design=design, dev=dev, system=SC.system, window=SC.window, limits=SC.limits
        )
        assert g.dtype == jnp.float64 and g.shape == (4,)
        return jnp.sum(g)

    total_j = jax.jit(total)
    g_design, g_dev = jax.jit(jax.grad(total, argnums=(0, 1)))(design64, dev0)
    return total_j, design64, dev0, g_design, g_dev


def test_jit_grad_wrt_all_deviations_finite_at_zero(link_grad):
    total, design64, dev0, _, grad = link_grad
    for n in DEV_NAMES:
        v = getattr(grad, n)
        assert v.dtype == jnp.float64, n
        assert bool(jnp.isfinite(v)), n
    # offsets enter squared: zero gradient at zero offset
    assert float(grad.offset_out_x_um) == 0.0
    # ring resonance red-shifted by 1 nm: the binding lock edge of the default is the blue
    # one (hot ring, cold laser: the resonance approaches the lock point), so the thermal
    # margin falls by 1/η_h mW; the heater needs 1 nm less, so power g rises by
    # (1/η_h mW)/(200 Gb/s) pJ/bit
    inv_eta = 1.0 / SC.design.ring.heater_efficiency_nm_per_mw
    want = -inv_eta + inv_eta / SC.system.lane_rate_gbps
    assert float(grad.ring_resonance_nm) == pytest.approx(want, rel=1e-9)
    # a few fields against central finite differences
    for n in ("laser_power_db", "responsivity_ln", "ring_coupling_ln", "mod_efficiency_ln"):
        fun = lambda x, n=n: total(design64, dataclasses.replace(dev0, **{n: x}))  # noqa: E731
        fd = central_fd(fun, 0.0, 1e-5)
        assert float(getattr(grad, n)) == pytest.approx(fd, rel=1e-6, abs=1e-9), n


def test_grad_wrt_design_value_matches_finite_difference(link_grad):
    total, design64, dev0, grad, _ = link_grad
    leaves = jax.tree_util.tree_leaves(grad)
    assert len(leaves) == len(jax.tree_util.tree_leaves(design64))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)

    def with_current(i):
        return dataclasses.replace(
            design64, laser=dataclasses.replace(design64.laser, current_ma=i)
        )

    fd = central_fd(lambda i: total(with_current(i), dev0), SC.design.laser.current_ma, 1e-3)
    assert float(grad.laser.current_ma) == pytest.approx(fd, rel=1e-6)
    assert float(grad.laser.current_ma) != 0.0

    def with_bias(x):
        return dataclasses.replace(design64, ring=dataclasses.replace(design64.ring, bias_nm=x))

    fd = central_fd(lambda x: total(with_bias(x), dev0), SC.design.ring.bias_nm, 1e-5)
    assert float(grad.ring.bias_nm) == pytest.approx(fd, rel=1e-6)


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
