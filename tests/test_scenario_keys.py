"""Dotted keys: Scenario.get/replace, iter_params, param_meta, value_range, the params shim."""

from __future__ import annotations

import math

import jax.numpy as jnp
import pytest

from cpojax.scenario import Scenario, ScenarioError, iter_params, param_keys, value_range
from cpojax.scenario.keys import get_value, param_meta, set_dotted, split_key


@pytest.fixture(scope="module")
def default():
    return Scenario.default()


# --------------------------------------------------------------------------- replace / get
def test_replace_dotted_keys(default):
    sc = default.replace({"design.ring.heater_max_mw": 20.0, "spread.fiber_offset_um.die": 0.5})
    assert sc.design.ring.heater_max_mw == 20.0
    assert sc.spread.fiber_offset_um.die == 0.5
    assert sc.spread.fiber_offset_um.lane == default.spread.fiber_offset_um.lane
    assert default.design.ring.heater_max_mw == Scenario().design.ring.heater_max_mw != 20.0
    assert sc.replace({"system.lanes_per_engine": 16.0}).system.lanes_per_engine == 16
    assert isinstance(sc.replace({"system.lanes_per_engine": 16.0}).system.lanes_per_engine, int)


def test_replace_validates(default):
    with pytest.raises(ScenarioError, match=r"design\.ring\.radius_um.*\[1, 100\]"):
        default.replace({"design.ring.radius_um": -1.0})
    with pytest.raises(ScenarioError, match="did you mean"):
        default.replace({"design.ring.bias_nmm": 1.0})
    with pytest.raises(ScenarioError, match="unknown parameter"):
        default.replace({"design.ring": 1.0})  # a table, not a value
    with pytest.raises(ScenarioError, match="unknown parameter"):
        default.replace({"design.ring.bias_nm.x": 1.0})
    with pytest.raises(ScenarioError, match="malformed"):
        default.replace({"design..ring": 1.0})
    with pytest.raises(ScenarioError, match="lanes_per_laser"):
        default.replace({"system.lanes_per_engine": 6})
    with pytest.raises(ScenarioError, match="engine_temp_min_c"):
        default.replace({"window.engine_temp_min_c": 100.0})


def test_get_dotted_keys(default):
    assert default.get("design.ring.bias_nm") == default.design.ring.bias_nm
    assert default.get("spread.fiber_offset_um.die") == default.spread.fiber_offset_um.die
    assert default.get("system.lanes_per_engine") == default.system.lanes_per_engine == 8
    assert default.get("design.ring") == default.design.ring
    with pytest.raises(ScenarioError, match=r"design\.rng\.bias_nm.*did you mean"):
        default.get("design.rng.bias_nm")
    with pytest.raises(ScenarioError, match="unknown parameter"):
        default.get("design.ring.bias_nm.x")


def test_every_param_key_gets_its_value(default):
    n = 0
    for key, _, value in iter_params(default):
        assert default.get(key) == value, key
        n += 1
    assert n > 80


def test_iter_params_default_root_is_the_default_scenario(default):
    assert [(k, v) for k, _, v in iter_params()] == [(k, v) for k, _, v in iter_params(default)]
    assert param_keys() == [k for k, _, _ in iter_params(default)]
    assert "spread.ring_resonance_nm.die" in param_keys()
    assert "correlation.die" in param_keys()


def test_split_key_and_get_value(default):
    assert split_key("design.ring.bias_nm") == ["design", "ring", "bias_nm"]
    for bad in ("", "design..ring", ".design", "design."):
        with pytest.raises(ScenarioError, match="malformed"):
            split_key(bad)
    assert get_value(default, "design.ring.bias_nm") == default.get("design.ring.bias_nm")


def test_set_dotted_sets_leaves_and_new_correlation_entries(default):
    tree = set_dotted(default.to_dict(), {"design.ring.bias_nm": 4.0})
    assert tree["design"]["ring"]["bias_nm"] == 4.0
    tree = set_dotted(tree, {"correlation.die.ring_resonance_nm,ring_coupling_ln": 0.3})
    assert tree["correlation"]["die"] == {"ring_resonance_nm,ring_coupling_ln": 0.3}
    with pytest.raises(ScenarioError, match="did you mean"):
        set_dotted(tree, {"design.ring.bias_nmm": 1.0})


# --------------------------------------------------------------------------- metadata, ranges
def test_param_meta_of_a_spread_level_carries_the_spread_unit_and_bound():
    m = param_meta("spread.ring_resonance_nm.die")
    assert (m["unit"], m["lo"], m["hi"]) == ("nm", 0.0, 20.0)
    m = param_meta("spread.ring_coupling_ln.lane")
    assert (m["unit"], m["hi"]) == ("ln", 3.0)
    m = param_meta("spread.fiber_offset_um.truncate_sigma")
    assert (m["unit"], m["hi"]) == ("σ", 100.0)
    assert param_meta("design.ring.radius_um")["hi"] == 100.0
    with pytest.raises(ScenarioError, match=r"unknown parameter.*did you mean"):
        param_meta("design.ring.radius")


def test_value_range_closed_open_and_spread_bounds():
    assert value_range("design.ring.radius_um") == (1.0, 100.0)
    lo, hi = value_range("limits.ber_threshold")  # (0, 0.5): both ends nudged inwards
    assert 0.0 < lo < 1e-6 and 0.5 - 1e-6 < hi < 0.5
    assert value_range("spread.ring_resonance_nm.die") == (0.0, 20.0)
    assert value_range("spread.fiber_offset_um.lane") == (0.0, 10.0)
    with pytest.raises(ScenarioError, match="unknown parameter"):
        value_range("design.ring.nope")


def test_every_numeric_range_is_finite_in_float32():
    """Issue 15 item 9: a validated value must stay finite when evaluated in float32."""
    f32_max = float(jnp.finfo(jnp.float32).max)
    for key, _, value in iter_params():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        m = param_meta(key)
        assert math.isfinite(m["lo"]) and math.isfinite(m["hi"]), key
        assert -f32_max < m["lo"] <= m["hi"] < f32_max, key
        assert m["lo"] <= value <= m["hi"], key


# --------------------------------------------------------------------------- params shim
