"""Issue 9 item 8: splitter port imbalance, FSR/group-index spread, heater-resistance
spread with driver headroom (P_max = V²/R), DFB wavelength aging — each against its closed
form in the lane, and each costing engine yield when drawn."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model
from cpojax.physics import link, ring

F64 = jnp.float64
OFF = model.legacy_scenario()
ON = OFF.replace({"system.extra_spreads": True})


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


def test_zero_deviations_reproduce_the_former_lane():
    np.testing.assert_allclose(np.asarray(budget(ON).g), np.asarray(budget(OFF).g), atol=1e-12)


def test_splitter_imbalance_moves_ring_power_db_for_db():
    b0, b1 = budget(ON), budget(ON, link.Deviations(splitter_db=F64(0.3)))
    np.testing.assert_allclose(
        np.asarray(b0.ring_in_dbm) - np.asarray(b1.ring_in_dbm), 0.3, atol=1e-12
    )
    np.testing.assert_allclose(np.asarray(b0.margin_db) - np.asarray(b1.margin_db), 0.3, atol=1e-9)


def test_group_index_sets_fsr():
    b = budget(ON, link.Deviations(ring_group_index=F64(0.05)))
    length = 2 * np.pi * ON.design.ring.radius_um
    assert float(b.fsr_nm) == pytest.approx(1311.0**2 / ((4.3 + 0.05) * length * 1e3), rel=1e-12)


def test_heater_resistance_limits_power_v2_over_r():
    """A heater 10 % more resistive delivers 1/1.1 of the power at the same drive voltage."""
    dln = float(np.log(1.1))
    b = budget(ON, link.Deviations(heater_resistance_ln=F64(dln)))
    assert float(b.heater_max_mw) == pytest.approx(46.0 / 1.1, rel=1e-12)
    b0 = budget(ON)
    eta = ON.design.ring.heater_efficiency_nm_per_mw
    s = np.asarray(b0.heater_shift_nm)
    x, span, fsr = s.min(), s.max() - s.min(), float(b0.fsr_nm)
    for pmax, bb in ((46.0, b0), (46.0 / 1.1, b)):
        w = pmax * eta - span
        want = max(min(x, w - x), min(x - fsr, w - x + fsr), w - fsr) / eta
        assert float(bb.g[1]) == pytest.approx(want, rel=1e-9)


def test_aging_extends_the_tracked_window():
    """The lock tracks the laser from begin to end of life: a drift a widens the window on
    its side by |a|; the margin is the former one for the widened window."""
    b0 = budget(ON)
    eta = ON.design.ring.heater_efficiency_nm_per_mw
    s = np.asarray(b0.heater_shift_nm)
    fsr, rr = float(b0.fsr_nm), 46.0 * eta
    for a in (0.3, -0.3):
        b = budget(ON, link.Deviations(laser_aging_nm=F64(a)))
        lo, hi = s.min() + min(a, 0.0), s.max() + max(a, 0.0)
        want = ring.lock_margin_nm(s_min_nm=lo, s_max_nm=hi, fsr_nm=fsr, range_nm=rr) / eta
        assert float(b.g[1]) == pytest.approx(float(want), rel=1e-9)


def test_each_spread_costs_yield():
    n = 4096
    base = estimate_yield(OFF, seed=0, n_engines=n)
    zero = {
        f"spread.{name}.{lv}": 0.0
        for name in (
            "splitter_imbalance_db",
            "ring_group_index",
            "heater_resistance_ln",
            "laser_aging_nm",
            "tx_penalty_db",
        )
        for lv in ("wafer", "die", "lane")
    }
    on0 = estimate_yield(ON.replace(zero), seed=0, n_engines=n)
    # switched on with zero spreads: same normals for the former variables, same yield
    assert on0.engine.value == pytest.approx(base.engine.value, abs=0.02)
    for name, lv, sig in (
        ("heater_resistance_ln", "die", 0.15),
        ("laser_aging_nm", "lane", 1.0),
        ("splitter_imbalance_db", "lane", 1.0),
    ):
        y = estimate_yield(ON.replace({**zero, f"spread.{name}.{lv}": sig}), seed=0, n_engines=n)
        assert y.engine.value < on0.engine.value - 0.01, name
    # The FSR matters where the heater is sized for a full FSR + window (spec laser): a
    # larger FSR needs a larger range.
    spec = ON.replace(
        {
            **zero,
            "system.laser_mode": "spec",
            "system.els_power_control": True,
            "design.laser.supply_efficiency": 0.8,
            "design.ring.heater_max_mw": (12.72 + 6.35 + 0.5) / 0.25,  # FSR + Δ + 0.5 nm
            **{f"spread.heater_efficiency_ln.{lv}": 0.0 for lv in ("wafer", "die", "lane")},
        }
    )
    y0 = estimate_yield(spec, seed=0, n_engines=n).engine.value
    y1 = estimate_yield(
        spec.replace({"spread.ring_group_index.die": 0.1}), seed=0, n_engines=n
    ).engine.value
    assert y1 < y0 - 0.01
