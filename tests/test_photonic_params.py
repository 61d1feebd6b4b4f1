"""Dotted-key access to traced scenario values (cpojax.scenario.keys: numeric_keys,
get_values, with_values) as the gradient and optimizer layers use it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from cpojax.scenario import Scenario, ScenarioError, get_values, numeric_keys, with_values

K = 4.0  # statistical tolerance, in standard errors
Z95 = 1.959963984540054

HEATER = "design.ring.heater_max_mw"
BIAS = "design.ring.bias_nm"
RING_DIE = "spread.ring_resonance_nm.die"


@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """Strict rank promotion, explicitly (variation.py once broadcast implicitly)."""
    with jax.numpy_rank_promotion("raise"):
        yield


def _ci_se(ci) -> float:
    """Standard error implied by a two-sided 95 % interval (half width / 1.96)."""
    return (ci[1] - ci[0]) / (2.0 * Z95)


@pytest.fixture(scope="module")
def default_sc():
    return Scenario.default()


# --------------------------------------------------------------------------- params.py
def test_numeric_keys_design_and_spreads_only(default_sc):
    keys = numeric_keys(default_sc)
    assert BIAS in keys and "spread.fiber_offset_um.die" in keys and HEATER in keys
    assert all(k.startswith(("design.", "spread.")) for k in keys)
    assert len(keys) == len(set(keys))
    # structural values are pytree aux data, not leaves: never listed, whatever the prefix
    assert "system.lanes_per_engine" not in keys
    assert numeric_keys(default_sc, prefixes=("system.",)) == []
    assert numeric_keys(default_sc, prefixes=("window.",)) == [
        "window.engine_temp_min_c",
        "window.engine_temp_max_c",
        "window.laser_temp_min_c",
        "window.laser_temp_max_c",
    ]


def test_with_values_round_trip_and_replaces_leaves(default_sc):
    keys = [BIAS, "spread.fiber_offset_um.die", HEATER]
    vals = get_values(default_sc, keys)
    assert all(v.dtype == jnp.float32 and v.shape == () for v in vals.values())
    assert float(vals[BIAS]) == pytest.approx(default_sc.get(BIAS))
    # identity round trip
    same = with_values(default_sc, vals)
    for k in keys:
        assert float(get_values(same, [k])[k]) == pytest.approx(float(vals[k]))
    # replace two leaves: those change, every other leaf is untouched
    new = with_values(default_sc, {BIAS: jnp.float32(6.5), "spread.fiber_offset_um.die": 0.25})
    got = get_values(new, keys, dtype=jnp.float64)
    assert float(got[BIAS]) == 6.5
    assert float(got["spread.fiber_offset_um.die"]) == 0.25
    assert float(got[HEATER]) == default_sc.get(HEATER)
    for k in numeric_keys(default_sc):
        if k not in (BIAS, "spread.fiber_offset_um.die"):
            assert float(new.get(k)) == float(default_sc.get(k)), k
    assert new.system == default_sc.system
    # traceable: with_values inside jit, gradient flows to the replaced leaf
    f = jax.jit(jax.grad(lambda b: 3.0 * with_values(default_sc, {BIAS: b}).design.ring.bias_nm))
    assert float(f(jnp.float32(6.0))) == 3.0


def test_params_unknown_key_named(default_sc):
    with pytest.raises(ScenarioError, match=r"design\.ring\.bias_nmm"):
        get_values(default_sc, ["design.ring.bias_nmm"])
    with pytest.raises(ScenarioError, match=r"spread\.nope\.die"):
        with_values(default_sc, {"spread.nope.die": 1.0})


def test_params_static_key_rejected(default_sc):
    with pytest.raises(ScenarioError, match="static"):
        get_values(default_sc, ["system.lanes_per_engine"])
    with pytest.raises(ScenarioError, match=r"system\.lanes_per_engine"):
        with_values(default_sc, {"system.lanes_per_engine": 4})
