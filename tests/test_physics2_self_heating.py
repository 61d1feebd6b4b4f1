"""Issue 9 item 3: micro-ring optical self-heating.

The shift is absorbed power × (thermal impedance × dλ/dT) at the lock point, per lane and
corner; the heater supplies that much less; gradients flow through it; and in yield the
extra red shift moves failures from the red edge (heater runs out) to the blue edge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model
from cpojax.physics import link, ring
from cpojax.physics.units import db_to_lin

F64 = jnp.float64
OFF = model.legacy_scenario()
ON = OFF.replace({"system.self_heating": True})


def budget(sc, dev=None):
    return jax.jit(
        lambda: link.lane_budget(
            design=sc.design,
            dev=dev,
            system=sc.system,
            window=sc.window,
            limits=sc.limits,
            dtype=F64,
        )
    )()


def test_shift_is_absorbed_power_times_thermal_efficiency_at_lock():
    b = budget(ON)
    rg = ON.design.ring
    # mean transmission at lock from the ring's insertion loss (two outer levels)
    t_mean = 10.0 ** (-np.asarray(b.ring_il_db) / 10.0)
    p_in = 10.0 ** (np.asarray(b.ring_in_dbm) / 10.0)
    p_abs = rg.absorbed_fraction * p_in * (1.0 - t_mean)
    want = rg.self_heating_nm_per_mw * p_abs
    np.testing.assert_allclose(np.asarray(b.self_heating_nm), want, rtol=1e-12)
    # the default: ≈ 2.5 mW absorbed at ≈ 6.9 dBm ring input, a few tenths of a nm (1–3 FWHM)
    assert 1.5 < p_abs[0] < 4.0
    assert 1.0 < want[0] / float(b.fwhm_nm) < 3.0
    # the lock detuning and the levels are unchanged; only the heater's share moves
    off = budget(OFF)
    np.testing.assert_allclose(
        np.asarray(off.heater_shift_nm) - np.asarray(b.heater_shift_nm), want, rtol=1e-9
    )
    np.testing.assert_allclose(np.asarray(off.margin_db), np.asarray(b.margin_db), atol=1e-12)


def test_shift_depends_on_ring_input_power_and_detuning():
    f = lambda p, t: ring.self_heating_shift_nm(  # noqa: E731
        ring_in_mw=p, mean_transmission=t, absorbed_fraction=0.8, nm_per_mw=0.2
    )
    assert float(f(10.0, 0.4)) == pytest.approx(0.2 * 0.8 * 10.0 * 0.6)
    assert float(f(20.0, 0.4)) == pytest.approx(2 * float(f(10.0, 0.4)))
    # a lane with 1 dB more laser power self-heats 10^0.1 times more
    b0 = budget(ON)
    b1 = budget(ON, link.Deviations(laser_power_db=F64(1.0)))
    np.testing.assert_allclose(
        np.asarray(b1.self_heating_nm) / np.asarray(b0.self_heating_nm),
        db_to_lin(db=1.0),
        rtol=1e-9,
    )
    # the paired laser's power falls with its temperature: less self-heating at hot-laser
    # corners (corners 1 and 3), so the shift varies across the window
    sh = np.asarray(b0.self_heating_nm)
    assert sh[1] < sh[0] and sh[3] < sh[2]


def test_gradient_through_self_heating():
    design64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, F64), ON.design)

    def thermal_g(design, x):
        return link.limit_states(
            design=design,
            dev=link.Deviations(laser_power_db=x),
            system=ON.system,
            window=ON.window,
            limits=ON.limits,
        )[1]

    gd, gx = jax.grad(thermal_g, argnums=(0, 1))(design64, F64(0.0))
    assert np.isfinite(float(gx)) and float(gx) != 0.0
    assert float(gd.ring.self_heating_nm_per_mw) != 0.0
    h = 1e-6
    fd = (float(thermal_g(design64, F64(h))) - float(thermal_g(design64, F64(-h)))) / (2 * h)
    assert float(gx) == pytest.approx(fd, rel=1e-5)


def test_self_heating_moves_thermal_failures_to_the_blue_edge():
    """A red shift helps a ring that needs more heat and hurts one fabricated too red."""
    n = 4096
    off = estimate_yield(OFF, seed=0, n_engines=n)
    on = estimate_yield(ON, seed=0, n_engines=n)
    k_off = off.lane_fail_fraction["thermal"]
    blue_off = off.thermal_edges["blue"] * (1 - off.lane.value)
    blue_on = on.thermal_edges["blue"] * (1 - on.lane.value)
    red_off = off.thermal_edges["red"] * (1 - off.lane.value)
    red_on = on.thermal_edges["red"] * (1 - on.lane.value)
    assert blue_on > blue_off and red_on < red_off
    # the former default's lock is blue-edge bound: self-heating costs it yield
    assert on.engine.value < off.engine.value
    assert k_off > 0
