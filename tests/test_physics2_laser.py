"""Issue 9 item 2: the external laser source (ELS) as an interface spec.

The spec-window lock margin against a brute-force search over laser positions and
resonance orders, the standard heater sizing rule (range >= FSR + window span), the worst
compliant power, power control (APC) and the cooled/uncooled laser, and the yield
direction of locking to any compliant laser instead of the paired one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model
from cpojax.physics import laser, link, ring
from cpojax.scenario import Scenario

F64 = jnp.float64
PAIRED = model.legacy_scenario()
SPEC = PAIRED.replace(
    {
        "system.laser_mode": "spec",
        "system.els_power_control": True,
        "design.laser.supply_efficiency": 0.8,  # an uncooled, regulated ELS (no TEC)
    }
)


def budget(sc, dev=None, dtype=F64):
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


def _lockable_brute(s_min, span, fsr, rng_nm, arc, n_t=401):
    """Every laser on the arc [0, arc] has an order k with [s + t − kFSR, s + t + Δ − kFSR]
    inside [0, R] (hitless for that laser); brute force over t and k."""
    for t in np.linspace(0.0, arc, n_t):
        lo = s_min + t
        ks = np.arange(np.floor(lo / fsr) - 3, np.floor(lo / fsr) + 4)
        ok = any(lo - k * fsr >= 0.0 and lo + span - k * fsr <= rng_nm for k in ks)
        if not ok:
            return False
    return True


def test_spec_margin_equals_legacy_for_zero_arc():
    rng = np.random.default_rng(0)
    s_min = rng.uniform(-30, 30, 200)
    span = rng.uniform(0, 10, 200)
    fsr = rng.uniform(8, 14, 200)
    rr = rng.uniform(2, 30, 200)
    for hop in (False, True):
        a = ring.lock_margin_nm(
            s_min_nm=s_min, s_max_nm=s_min + span, fsr_nm=fsr, range_nm=rr, allow_order_hop=hop
        )
        b = ring.lock_margin_spec_nm(
            s_min_nm=s_min,
            s_max_nm=s_min + span,
            fsr_nm=fsr,
            range_nm=rr,
            arc_nm=0.0,
            allow_order_hop=hop,
        )
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_spec_margin_sign_matches_brute_force():
    """g >= 0 exactly when every laser position on the arc is lockable hitlessly."""
    rng = np.random.default_rng(1)
    n_checked = 0
    for _ in range(600):
        fsr = rng.uniform(9, 14)
        span = rng.uniform(0, 8)
        arc = rng.uniform(0, 16)
        rr = rng.uniform(span, span + 2 * fsr + arc)
        s_min = rng.uniform(-2 * fsr, 2 * fsr)
        g = float(
            ring.lock_margin_spec_nm(
                s_min_nm=s_min, s_max_nm=s_min + span, fsr_nm=fsr, range_nm=rr, arc_nm=arc
            )
        )
        if abs(g) < 0.05:  # the brute-force grid resolves arc / 400
            continue
        assert (g >= 0) == _lockable_brute(s_min, span, fsr, rr, arc), (s_min, span, fsr, rr, arc)
        n_checked += 1
    assert n_checked > 500


def test_sizing_rule_range_fsr_plus_span_locks_any_laser():
    """Heater range >= FSR + Δ: every laser at every position is lockable (g >= 0 for any
    x and arc); just below it some resonance position fails."""
    fsr, span = 12.72, 6.15
    x = np.linspace(-20, 20, 2001)
    g_ok = ring.lock_margin_spec_nm(
        s_min_nm=x, s_max_nm=x + span, fsr_nm=fsr, range_nm=fsr + span + 1e-6, arc_nm=13.0
    )
    assert float(jnp.min(g_ok)) >= 0.0
    g_bad = ring.lock_margin_spec_nm(
        s_min_nm=x, s_max_nm=x + span, fsr_nm=fsr, range_nm=fsr + span - 0.5, arc_nm=13.0
    )
    assert float(jnp.min(g_bad)) == pytest.approx(-0.5, abs=1e-9)


def test_spec_margin_continuous_in_position():
    x = np.linspace(-30, 30, 60001)
    g = np.asarray(
        ring.lock_margin_spec_nm(
            s_min_nm=x, s_max_nm=x + 5.0, fsr_nm=12.7, range_nm=16.0, arc_nm=2.5
        )
    )
    assert np.max(np.abs(np.diff(g))) <= 1.01 * (x[1] - x[0])


def test_spec_lane_uses_the_worst_compliant_power_and_the_whole_window():
    els = SPEC.design.els
    b = budget(SPEC)
    want = els.power_class_dbm - els.power_tolerance_db - els.eol_guard_db
    np.testing.assert_allclose(np.asarray(b.laser_power_dbm), want, atol=1e-12)
    # The laser's own deviations do not matter: the spec covers every compliant laser.
    b2 = budget(SPEC, link.Deviations(laser_power_db=F64(3.0), laser_wavelength_nm=F64(2.0)))
    np.testing.assert_allclose(np.asarray(b2.g), np.asarray(b.g), atol=1e-12)
    # DR window 13 nm > FSR 12.72 nm: locking every compliant laser needs R >= FSR + Δ
    # (the sizing rule). Δ = κ_R·45 K + 0.1 nm/K·30 K (uncooled) + 2 × aging.
    fsr = float(b.fsr_nm)
    span = 0.07 * 45 + 0.1 * 30 + 2 * els.aging_nm
    eta = SPEC.design.ring.heater_efficiency_nm_per_mw
    need_mw = (fsr + span) / eta
    for dlam in (-3.0, 0.0, 4.0):  # any resonance position
        dev = link.Deviations(ring_resonance_nm=F64(dlam))
        ok = budget(SPEC.replace({"design.ring.heater_max_mw": need_mw + 0.2}), dev)
        assert float(ok.g[1]) == pytest.approx(0.2, abs=1e-9)
        assert float(ok.heater_worst_mw) == pytest.approx(need_mw, rel=1e-9)
        bad = budget(SPEC.replace({"design.ring.heater_max_mw": need_mw - 0.2}), dev)
        assert float(bad.g[1]) < 0.0


def test_narrow_window_arc_and_cooled_laser():
    """A window narrower than the FSR: the arc is 2·hw − drift (uncooled), 2·hw (cooled)."""
    narrow = SPEC.replace({"design.els.window_half_width_nm": 2.0, "design.els.aging_nm": 0.0})
    fsr = float(budget(narrow).fsr_nm)
    eta = narrow.design.ring.heater_efficiency_nm_per_mw
    # heater range R = 10 nm < FSR: lockable iff x ∈ [0, R − Δ − W]
    rr = 10.0
    sc = narrow.replace({"design.ring.heater_max_mw": rr / eta})
    for cooled, w_arc, span in ((False, 4.0 - 3.0, 0.07 * 45 + 3.0), (True, 4.0, 0.07 * 45)):
        s = sc.replace({"system.els_cooled": cooled})
        b = budget(s)
        shifts = np.asarray(b.heater_shift_nm)
        assert shifts.max() - shifts.min() == pytest.approx(span, abs=1e-9)
        x = shifts.min()
        want = max(min(x, rr - span - w_arc - x), min(x - fsr, rr - span - w_arc - x + fsr))
        assert float(b.g[1]) * eta == pytest.approx(want, abs=1e-9)
        if cooled:  # wavelength and power fixed at the setpoint
            np.testing.assert_allclose(
                np.asarray(b.laser_temp_c), s.design.els.setpoint_c, atol=1e-12
            )


def test_power_control_holds_power_and_draws_more_current_when_hot():
    sc = PAIRED.replace({"system.els_power_control": True})
    b = budget(sc)
    p = np.asarray(b.laser_power_dbm)
    np.testing.assert_allclose(p, sc.design.els.power_class_dbm, atol=1e-9)
    lk = dict(ith_ref_ma=20.0, slope_ref_w_per_a=0.32, t0_k=60.0, t1_k=200.0)
    i25 = float(laser.current_for_power_ma(power_mw=100.0, temp_c=25.0, **lk))
    i55 = float(laser.current_for_power_ma(power_mw=100.0, temp_c=55.0, **lk))
    assert i55 > i25
    # the inverse of the L–I curve
    assert float(laser.optical_power_mw(current_ma=i55, temp_c=55.0, **lk)) == pytest.approx(
        100.0, rel=1e-12
    )
    # hotter laser corners draw more lane power
    lp = np.asarray(b.lane_power_mw) - np.asarray(b.heater_mw)
    assert lp[1] > lp[0] and lp[3] > lp[2]
    # without control the output follows the L–I curve: lower when hot
    p0 = np.asarray(budget(PAIRED).laser_power_dbm)
    assert p0[1] < p0[0]


def test_spec_mode_changes_engine_yield_in_the_predicted_direction():
    """With the former heater (46 mW, R = 11.5 nm < FSR) no lane can lock every compliant
    laser of a 13 nm window: thermal yield collapses. A heater sized by the rule
    (R >= FSR + Δ plus spread margin) removes the resonance-position dependence, so
    thermal failures fall below the paired laser's."""
    n = 4096
    small = estimate_yield(SPEC, seed=0, n_engines=n)
    assert small.engine.value == 0.0
    assert small.failure_modes["thermal"] == 1.0
    sized = SPEC.replace({"design.ring.heater_max_mw": 100.0})
    y_spec = estimate_yield(sized, seed=0, n_engines=n)
    y_pair = estimate_yield(
        PAIRED.replace({"design.ring.heater_max_mw": 100.0}), seed=0, n_engines=n
    )
    # paired with 100 mW: a full FSR + span as well, so both lock; the spec lane is judged
    # at the worst compliant power (18.5 dBm here vs 16.4 dBm paired): more optical margin
    assert y_spec.lane_fail_fraction["thermal"] <= y_pair.lane_fail_fraction["thermal"] + 1e-3
    assert y_spec.engine.value > 0.5
    # Paired laser: the resonance spread matters (a 46 mW heater misses the window's edges);
    # spec laser with the sized heater: it does not.
    wide = {"spread.ring_resonance_nm.die": 1.5}
    assert estimate_yield(sized.replace(wide), seed=0, n_engines=n).engine.value == pytest.approx(
        y_spec.engine.value, abs=0.01
    )
    assert estimate_yield(PAIRED.replace(wide), seed=0, n_engines=n).engine.value < 0.8


def test_spec_budget_gradients_are_finite():
    design64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, F64), SPEC.design)

    def total(design, dev):
        return jnp.sum(
            link.limit_states(
                design=design, dev=dev, system=SPEC.system, window=SPEC.window, limits=SPEC.limits
            )
        )

    dev0 = link.Deviations(els_loss_db=F64(0.0), ring_resonance_nm=F64(0.3))
    gd, gv = jax.grad(total, argnums=(0, 1))(design64, dev0)
    for leaf in jax.tree_util.tree_leaves((gd, gv)):
        assert bool(jnp.all(jnp.isfinite(leaf)))
    assert float(gd.els.power_class_dbm) != 0.0  # optical margin moves with the class


def test_default_scenario_field_sanity():
    """The ELS keys exist with the OIF ELSFP DR values."""
    els = Scenario.default().design.els
    assert (els.window_center_nm - els.window_half_width_nm) == 1304.5
    assert (els.window_center_nm + els.window_half_width_nm) == 1317.5
    assert els.power_class_dbm == 20.0 and els.power_tolerance_db == 1.5
