"""Issue 9 item 7: functional (defect-limited) and assembly yield.

Negative-binomial and Poisson die yield in closed form, the engine product, and the
reporting next to parametric yield at engine and switch level (YieldResult and JSON).
"""

from __future__ import annotations

import math

import pytest

from cpojax import estimate_yield, model
from cpojax.physics.functional import defect_yield, engine_functional_yield
from cpojax.scenario import Scenario


def test_defect_yield_closed_forms():
    # A·D0 = 20 mm² × 0.15 /cm² = 0.03 defects per die
    assert defect_yield(area_mm2=20.0, d0_per_cm2=0.15, alpha=2.0) == pytest.approx(
        (1 + 0.03 / 2) ** -2, rel=1e-15
    )
    assert defect_yield(area_mm2=20.0, d0_per_cm2=0.15, alpha=1e6) == pytest.approx(
        math.exp(-0.03), rel=1e-15
    )
    # clustering (small α) raises yield at equal mean defect count; α → ∞ tends to Poisson
    lam_area = dict(area_mm2=500.0, d0_per_cm2=0.5)  # 2.5 defects per die
    ys = [defect_yield(alpha=a, **lam_area) for a in (0.5, 2.0, 10.0, 1e3)]
    assert ys == sorted(ys, reverse=True)
    assert ys[-1] == pytest.approx(math.exp(-2.5), rel=2.5**2 / (2 * 1e3) * 1.1)
    assert defect_yield(area_mm2=0.0, d0_per_cm2=1.0, alpha=2.0) == 1.0


def test_engine_functional_yield_is_the_product():
    f = Scenario.default().functional
    out = engine_functional_yield(f, n_lasers=2)
    prod = out["pic"] * out["eic"] * out["stack"] * out["fiber_attach"] * out["laser_connectors"]
    assert out["engine"] == pytest.approx(prod, rel=1e-15)
    assert out["laser_connectors"] == pytest.approx((1 - f.laser_connector_defect) ** 2)
    assert 0.85 < out["engine"] < 0.97


def test_functional_yield_reported_next_to_parametric():
    sc = model.legacy_scenario().replace({"system.functional_yield": True})
    res = estimate_yield(sc, seed=0, n_engines=4096)
    f = res.functional["engine"]
    assert res.engine_total.value == pytest.approx(res.engine.value * f, rel=1e-15)
    assert res.engine_total.lo == pytest.approx(res.engine.lo * f, rel=1e-15)
    n = sc.system.engines_per_switch
    assert res.switch_total.value == pytest.approx(res.engine_total.value**n, rel=1e-12)
    d = res.to_dict()
    assert d["engine_total"]["yield"] == res.engine_total.value
    assert set(d["functional"]) == {
        "pic",
        "eic",
        "stack",
        "fiber_attach",
        "laser_connectors",
        "engine",
    }
    # parametric keys unchanged; the functional factor does not touch them
    off = estimate_yield(model.legacy_scenario(), seed=0, n_engines=4096)
    assert off.engine == res.engine and off.engine_total is None and off.functional == {}
    assert off.to_dict()["engine_total"] is None
