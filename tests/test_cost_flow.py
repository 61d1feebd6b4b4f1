"""Cost per good switch (cpojax.cost, section 2): the flow algebra on hand-computed cases,
monotonicity, gradients, the breakeven against a bracketing root search, and the
switch-by-switch Monte Carlo of the flow against the closed form."""

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from cpojax import cost as C
from cpojax.scenario import Scenario


def prices(**kw):
    """A small, hand-friendly [cost] section (any object with the attributes works)."""
    base = {
        "engine_usd": 100.0,
        "engine_test_usd": 10.0,
        "test_coverage": 1.0,
        "attach_yield": 1.0,
        "package_usd": 1000.0,
        "failure_policy": "scrap",
        "rework_usd": 50.0,
        "rework_yield": 0.8,
        "laser_module_usd": 50.0,
        "laser_modules_per_switch": 2,
        "pluggable_module_usd": 200.0,
        "pluggable_yield": 0.8,
        "pluggable_host_usd": 1500.0,
        "pluggable_w_per_module": 10.0,
        "energy_usd_per_kwh": 0.1,
        "pue": 1.5,
        "service_years": 2.0,
    }
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("policy", ["scrap", "rework"])
@pytest.mark.parametrize("y", [0.3, 0.8, 1.0])
def test_perfect_coverage_and_attach(policy, y):
    """c = 1, a = 1: package + lasers + N·(engine + test)/y, whatever the policy."""
    c = prices(failure_policy=policy)
    got = C.cpo_capex_usd(engine_yield=y, cost=c, engines_per_switch=4)
    assert float(got) == pytest.approx(1000.0 + 2 * 50.0 + 4 * 110.0 / y, rel=1e-14)
    flow = C.cpo_flow(engine_yield=y, cost=c, engines_per_switch=4)
    assert float(flow.clean_package_rate) == 1.0 and float(flow.escape_rate) == 0.0
    assert float(flow.engines_built_per_good_switch) == pytest.approx(4 / y)


def test_zero_coverage_with_scrap():
    """c = 0: every engine is attached; a package is clean with (y·a)^N."""
    c = prices(test_coverage=0.0, attach_yield=0.95)
    y, n = 0.9, 4
    want = (1000.0 + n * 110.0) / (y * 0.95) ** n + 100.0
    assert float(C.cpo_capex_usd(engine_yield=y, cost=c, engines_per_switch=n)) == pytest.approx(
        want, rel=1e-14
    )
    flow = C.cpo_flow(engine_yield=y, cost=c, engines_per_switch=n)
    assert float(flow.kge_pass_rate) == 1.0
    assert float(flow.escape_rate) == pytest.approx(0.1)
    assert float(flow.packages_per_good_switch) == pytest.approx(1 / (y * 0.95) ** n)


def test_rework_against_scrap_by_hand():
    """c = 1, a = 0.9, r = 0.8, R = 50, N = 2, y = 0.5: k = 110/0.5 = 220, s = 0.9.

    scrap:  (1000 + 2·220)/0.9² + 100 = 1877.78
    rework: 1000 + 100 + 2·220 + 2·0.1·(50 + 220)/(0.8·0.9) = 1615
    """
    c = prices(attach_yield=0.9)
    kw = {"engine_yield": 0.5, "cost": c, "engines_per_switch": 2}
    scrap = C.cpo_flow(**kw, failure_policy="scrap")
    rework = C.cpo_flow(**kw, failure_policy="rework")
    assert float(scrap.capex_usd) == pytest.approx(1440.0 / 0.81 + 100.0, rel=1e-14)
    assert float(rework.capex_usd) == pytest.approx(1615.0, rel=1e-14)
    assert float(rework.reworks_per_good_switch) == pytest.approx(2 * 0.1 / 0.72)
    assert float(rework.rework_usd) == pytest.approx(50.0 * 2 * 0.1 / 0.72)
    assert float(rework.packages_per_good_switch) == 1.0
    # the parts add up to the total
    for f in (scrap, rework):
        parts = f.package_usd + f.engines_usd + f.rework_usd + f.lasers_usd
        assert float(parts) == pytest.approx(float(f.capex_usd), rel=1e-14)
    # an expensive, unreliable rework loses against scrap
    bad = prices(attach_yield=0.9, rework_usd=5000.0, rework_yield=0.1)
    assert float(C.cpo_capex_usd(**{**kw, "cost": bad}, failure_policy="rework")) > float(
        scrap.capex_usd
    )


def test_imperfect_coverage_by_hand():
    """c = 0.5, a = 0.9, y = 0.8: q = 0.9, escapes 0.1/0.9, s = 0.8, k = 110/0.9."""
    c = prices(test_coverage=0.5, attach_yield=0.9)
    f = C.cpo_flow(engine_yield=0.8, cost=c, engines_per_switch=3)
    assert float(f.kge_pass_rate) == pytest.approx(0.9)
    assert float(f.escape_rate) == pytest.approx(0.1 / 0.9)
    assert float(f.attached_good_rate) == pytest.approx(0.8)
    k = 110.0 / 0.9
    assert float(f.capex_usd) == pytest.approx((1000.0 + 3 * k) / 0.8**3 + 100.0, rel=1e-14)
    r = C.cpo_flow(engine_yield=0.8, cost=c, engines_per_switch=3, failure_policy="rework")
    want = 1000.0 + 100.0 + 3 * k + 3 * 0.2 * (50.0 + k) / (0.8 * 0.8)
    assert float(r.capex_usd) == pytest.approx(want, rel=1e-14)


def test_scenario_defaults_reproduce_the_design_note():
    """docs/cost.md (from the design note): c = 1, a = 1, scrap → capital breakeven ≈ 0.45;
    c = 0.95, a = 0.995, scrap at y = 0.85 → 37 % clean packages, ≈ 166 k$ vs ≈ 107 k$."""
    sc = Scenario.default()
    c = sc.cost
    f = C.cpo_flow(engine_yield=0.85, cost=c, engines_per_switch=72)
    assert float(f.clean_package_rate) == pytest.approx(0.370, abs=5e-4)
    assert float(f.capex_usd) == pytest.approx(165_577, abs=1)
    pl = C.pluggable_capex_usd(cost=c, engines_per_switch=72)
    assert float(pl) == pytest.approx(20_000 + 72 * 1200 / 0.99, rel=1e-14)
    perfect = sc.replace({"cost.test_coverage": 1.0, "cost.attach_yield": 1.0}).cost
    b = C.breakeven_engine_yield(cost=perfect, engines_per_switch=72)
    # 15000 + 18·650 + 72·500/y = 107272.7  →  y = 36000/80572.7
    assert b.engine_yield == pytest.approx(36_000 / (107_272.727272727 - 26_700), rel=1e-9)
    assert b.engine_yield == pytest.approx(0.45, abs=0.01)


@pytest.mark.parametrize("policy", ["scrap", "rework"])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"test_coverage": 0.0, "attach_yield": 0.97},
        {"test_coverage": 0.9, "attach_yield": 0.99, "rework_yield": 0.5},
        {"test_coverage": 0.5, "engine_usd": 0.0, "package_usd": 0.0},
    ],
)
def test_cost_falls_monotonically_with_yield(policy, kw):
    c = prices(failure_policy=policy, **kw)
    ys = np.linspace(0.05, 1.0, 400)
    cost = np.asarray(C.cpo_capex_usd(engine_yield=ys, cost=c, engines_per_switch=8))
    assert np.all(np.isfinite(cost))
    assert np.all(np.diff(cost) < 0)
    # and the derivative is negative everywhere (autodiff)
    d = jax.vmap(jax.grad(lambda y: C.cpo_capex_usd(engine_yield=y, cost=c, engines_per_switch=8)))(
        jnp.asarray(ys)
    )
    assert np.all(np.asarray(d) < 0)


def test_zero_yield_is_infinite_not_an_exception():
    """y → 0 costs inf (with perfect coverage y = 0 exactly is 0/0: NaN, documented)."""
    with np.errstate(divide="ignore"):
        for pol in ("scrap", "rework"):
            v = C.cpo_capex_usd(
                engine_yield=0.0,
                cost=prices(test_coverage=0.95),
                engines_per_switch=4,
                failure_policy=pol,
            )
            assert math.isinf(float(v))
        # 0.0 as a Python float, tiny yields whose s^N underflows
        assert math.isinf(
            float(
                C.cpo_capex_usd(
                    engine_yield=1e-9,
                    cost=prices(test_coverage=0.0, attach_yield=0.9),
                    engines_per_switch=72,
                )
            )
        )


def test_gradients_match_finite_differences_and_flow_through_the_cost_pytree():
    """Differentiable in the yield and in every price: jax.grad over the scenario's Cost."""
    sc = Scenario.default()
    for policy in ("scrap", "rework"):
        cost = sc.replace({"cost.failure_policy": policy}).cost
        cost64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), cost)

        def f(y, c):
            return C.cpo_capex_usd(engine_yield=y, cost=c, engines_per_switch=72)

        y = jnp.asarray(0.93, jnp.float64)
        dy, dc = jax.grad(f, argnums=(0, 1))(y, cost64)
        h = 1e-6
        fd = (f(y + h, cost64) - f(y - h, cost64)) / (2 * h)
        assert float(dy) == pytest.approx(float(fd), rel=1e-6)
        assert isinstance(dc, type(cost))
        # C is linear in the package price: dC/dP = packages per good switch
        flow = C.cpo_flow(engine_yield=y, cost=cost64, engines_per_switch=72)
        assert float(dc.package_usd) == pytest.approx(float(flow.packages_per_good_switch))
        assert float(dc.laser_module_usd) == pytest.approx(18.0)
        # the engine price enters per engine built (tested) per good switch
        assert float(dc.engine_usd) == pytest.approx(float(flow.engines_built_per_good_switch))
        # usd_per_yield_point is −dC/dy / 100
        pt = C.usd_per_yield_point(engine_yield=0.93, cost=cost, engines_per_switch=72)
        assert pt == pytest.approx(-float(dy) / 100, rel=1e-5)


def test_pluggable_and_energy_by_hand():
    c = prices()
    assert float(C.pluggable_capex_usd(cost=c, engines_per_switch=4)) == pytest.approx(
        1500.0 + 4 * 200.0 / 0.8
    )
    # 40 W · 1.5 · 8766 h · 2 y · 0.1 $/kWh = 105.192 $
    assert float(C.energy_usd(watts=40.0, cost=c)) == pytest.approx(105.192, rel=1e-12)
    assert float(C.pluggable_tco_usd(cost=c, engines_per_switch=4)) == pytest.approx(
        2500.0 + 105.192
    )
    tco = C.cpo_tco_usd(engine_yield=0.5, engine_w=2.5, cost=c, engines_per_switch=4)
    assert float(tco) == pytest.approx(
        1100.0 + 4 * 110.0 / 0.5 + 10.0 * 1.5 * 8766 * 2 * 0.1 / 1000
    )


@pytest.mark.parametrize("policy", ["scrap", "rework"])
@pytest.mark.parametrize("engine_w", [None, 8.0])
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"cost.test_coverage": 1.0, "cost.attach_yield": 1.0},
        {"cost.test_coverage": 0.5, "cost.attach_yield": 0.999},
        {"cost.pluggable_module_usd": 600.0},
    ],
)
def test_breakeven_matches_a_bracketing_root_search(policy, engine_w, overrides):
    sc = Scenario.default().replace({**overrides, "cost.failure_policy": policy})
    c, n = sc.cost, 72
    b = C.breakeven_engine_yield(cost=c, engines_per_switch=n, engine_w=engine_w)
    if engine_w is None:
        target = float(C.pluggable_capex_usd(cost=c, engines_per_switch=n))

        def f(y):
            return float(C.cpo_capex_usd(engine_yield=y, cost=c, engines_per_switch=n)) - target
    else:
        target = float(C.pluggable_tco_usd(cost=c, engines_per_switch=n))

        def f(y):
            cpo = C.cpo_tco_usd(engine_yield=y, engine_w=engine_w, cost=c, engines_per_switch=n)
            return float(cpo) - target

    if f(1.0) > 0:
        assert b.engine_yield is None and "even at engine yield 1" in b.reason
        return
    root = brentq(f, 1e-3, 1.0, xtol=1e-14, rtol=1e-14)
    assert b.reason is None
    assert b.engine_yield == pytest.approx(root, abs=1e-10)


def test_breakeven_none_with_a_reason():
    c = prices(pluggable_module_usd=1.0, pluggable_host_usd=0.0)
    b = C.breakeven_engine_yield(cost=c, engines_per_switch=4)
    assert b.engine_yield is None
    assert "CPO costs more than pluggables (capital) even at engine yield 1" in b.reason
    b = C.breakeven_engine_yield(cost=c, engines_per_switch=4, engine_w=1.0)
    assert b.engine_yield is None and "capital + energy" in b.reason
    # exactly at the crossing at y = 1
    c1 = prices(pluggable_module_usd=(1100.0 + 4 * 110.0 - 1500.0) * 0.8 / 4)
    assert C.breakeven_engine_yield(cost=c1, engines_per_switch=4).engine_yield == 1.0


def test_unknown_policy():
    with pytest.raises(ValueError, match="failure_policy must be 'scrap' or 'rework'"):
        C.cpo_capex_usd(engine_yield=0.9, cost=prices(failure_policy="burn"), engines_per_switch=1)


# Monte Carlo of the flow, switch by switch: the closed form must lie inside the
# Monte Carlo's interval. A 99.9 % interval (z = 3.29) keeps the test's own false
# alarm rate at 1e-3 per case; the seeds are fixed, so the test is deterministic.
Z999 = 3.2905


@pytest.mark.parametrize("policy", ["scrap", "rework"])
@pytest.mark.parametrize(
    ("y", "kw", "n"),
    [
        (0.85, {}, 72),  # the scenario's defaults (37 % clean packages)
        (0.97, {}, 72),
        (0.6, {"cost.test_coverage": 0.0, "cost.attach_yield": 0.98}, 8),
        (0.5, {"cost.test_coverage": 0.7, "cost.rework_yield": 0.4}, 16),
    ],
)
def test_flow_monte_carlo_agrees_with_the_closed_form(policy, y, kw, n):
    c = Scenario.default().replace({**kw, "cost.failure_policy": policy}).cost
    mc = C.simulate_flow(engine_yield=y, cost=c, engines_per_switch=n, n_switches=20_000, seed=1)
    flow = C.cpo_flow(engine_yield=y, cost=c, engines_per_switch=n)
    lo, hi = mc.interval(Z999)
    assert lo <= float(flow.capex_usd) <= hi, (mc, float(flow.capex_usd))
    assert mc.engines_built_per_good_switch == pytest.approx(
        float(flow.engines_built_per_good_switch), rel=0.03
    )
    assert mc.packages_per_good_switch == pytest.approx(
        float(flow.packages_per_good_switch), rel=0.03
    )
    assert mc.reworks_per_good_switch == pytest.approx(
        float(flow.reworks_per_good_switch), rel=0.05, abs=1e-12
    )


def test_flow_monte_carlo_is_seeded():
    c = Scenario.default().cost
    a = C.simulate_flow(engine_yield=0.9, cost=c, engines_per_switch=72, n_switches=500, seed=3)
    b = C.simulate_flow(engine_yield=0.9, cost=c, engines_per_switch=72, n_switches=500, seed=3)
    assert a == b
