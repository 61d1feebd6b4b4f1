"""cpojax.physics.laser: L-I curve, temperature laws, splitter.

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

from cpojax.physics import laser

F64 = jnp.float64


def f64(x):
    return jnp.asarray(x, F64)


def central_fd(fun, x, h):
    """Central finite difference of a scalar function at a Python float x."""
    return (float(fun(f64(x + h))) - float(fun(f64(x - h)))) / (2.0 * h)


def _grad_vs_fd(fun, kwargs, name, rtol=1e-6, atol=1e-10, rel_step=1e-5):
    x0 = float(kwargs[name])
    rest = {k: f64(v) for k, v in kwargs.items() if k != name}
    g = jax.grad(lambda x: fun(**rest, **{name: x}))(f64(x0))
    assert jnp.isfinite(g), f"non-finite gradient wrt {name}"
    h = rel_step * max(abs(x0), 1.0)
    fd = central_fd(lambda x: fun(**rest, **{name: x}), x0, h)
    np.testing.assert_allclose(float(g), fd, rtol=rtol, atol=atol, err_msg=name)
    return float(g)


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


@pytest.mark.parametrize("name", ["current_ma", "temp_c"])
def test_grad_optical_power(name):
    _grad_vs_fd(laser.optical_power_mw, dict(current_ma=170.0, temp_c=55.0, **LASER), name)
