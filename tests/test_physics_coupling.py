"""cpojax.physics.coupling: mode overlap, Fresnel and coupler efficiency.

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

from cpojax.physics import coupling

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
