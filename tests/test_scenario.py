"""Scenario: TOML round trips, strict validation, dotted access, pytree structure."""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import pytest

from cpojax.scenario import Scenario, ScenarioError, iter_params


@pytest.fixture(scope="module")
def default():
    return Scenario.default()


# --------------------------------------------------------------------------- round trips
def test_default_equals_plain_constructor(default):
    assert default == Scenario()


def test_toml_round_trip(default):
    text = default.to_toml()
    assert Scenario.from_toml(text) == default
    assert Scenario.from_toml(default.to_toml(comments=False)) == default


def test_toml_round_trip_of_modified_scenario(default):
    sc = default.replace(
        {
            "design.ring.bias_nm": -3.25,
            "system.modulation": "nrz",
            "system.lanes_per_engine": 16,
            "spread.fiber_offset_um.lane": 0.123456789,
            "spread.fiber_offset_um.truncate_sigma": 4.0,
            "design.coupler.kind": "grating",
            "limits.ber_threshold": 1e-12,
        }
    )
    back = Scenario.from_toml(sc.to_toml())
    assert back == sc
    assert back != default


def test_toml_comments_document_ranges(default):
    text = default.to_toml()
    line = next(x for x in text.splitlines() if x.startswith("radius_um"))
    assert "allowed [1, 100]" in line and "µm" in line


def test_dict_round_trip(default):
    assert Scenario.from_dict(default.to_dict()) == default


def test_save_load_round_trip_atomic(default, tmp_path):
    sc = default.replace({"design.laser.current_ma": 150.0})
    path = tmp_path / "scen.toml"
    sc.save(path)
    assert os.listdir(tmp_path) == ["scen.toml"]  # no stray temporary file
    assert Scenario.load(path) == sc
    # overwrite in place: still one file, new content
    default.save(path)
    assert os.listdir(tmp_path) == ["scen.toml"]
    assert Scenario.load(path) == default
    # str path works too
    assert Scenario.load(str(path)) == default


def test_load_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[design.ring]\nbias_nm = 1.0 # \xff\xfe\n")
    with pytest.raises(ScenarioError, match="UTF-8"):
        Scenario.load(bad)


def test_partial_toml_overrides_only_its_keys(default):
    sc = Scenario.from_toml("[design.ring]\nbias_nm = 4.0\n\n[window]\nengine_temp_max_c = 95.0\n")
    assert sc.get("design.ring.bias_nm") == 4.0
    assert sc.get("window.engine_temp_max_c") == 95.0
    assert isinstance(sc.get("design.ring.bias_nm"), float)
    back = sc.replace(
        {
            "design.ring.bias_nm": default.design.ring.bias_nm,
            "window.engine_temp_max_c": default.window.engine_temp_max_c,
        }
    )
    assert back == default
    # an integer in TOML for a float parameter is accepted and stored as float
    sc = Scenario.from_toml("[design.ring]\nbias_nm = 4\n")
    assert sc.design.ring.bias_nm == 4.0 and isinstance(sc.design.ring.bias_nm, float)
    assert Scenario.from_toml("") == default


# --------------------------------------------------------------------------- errors
def _err(text):
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml(text)
    return str(e.value)


def test_unknown_key_names_key_and_suggests():
    msg = _err("[design.ring]\nbias_nmm = 3.0\n")
    assert "design.ring.bias_nmm" in msg
    assert "did you mean" in msg and "design.ring.bias_nm" in msg
    msg = _err("[desing.ring]\nbias_nm = 3.0\n")
    assert "desing" in msg


def test_wrong_type():
    msg = _err('[design.ring]\nbias_nm = "x"\n')
    assert "design.ring.bias_nm" in msg and "number" in msg
    msg = _err("[system]\nlanes_per_engine = 8.5\n")
    assert "system.lanes_per_engine" in msg and "integer" in msg
    msg = _err("[design.ring]\nbias_nm = true\n")
    assert "design.ring.bias_nm" in msg
    msg = _err('[system]\nmodulation = "qam16"\n')
    assert "system.modulation" in msg and "pam4" in msg
    msg = _err("[design]\nring = 3\n")
    assert "design.ring" in msg and "table" in msg
    msg = _err("[design.ring.bias_nm]\nx = 1\n")
    assert "design.ring.bias_nm" in msg


def test_negative_spread():
    msg = _err("[spread.fiber_offset_um]\ndie = -1\n")
    assert "spread.fiber_offset_um.die" in msg
    assert "allowed [0, 10] µm" in msg


@pytest.mark.parametrize("val", ["nan", "inf", "-inf"])
def test_nan_and_inf_rejected(val):
    msg = _err(f"[design.ring]\nbias_nm = {val}\n")
    assert "design.ring.bias_nm" in msg and "finite" in msg
    with pytest.raises(ScenarioError, match="finite"):
        Scenario.default().replace({"design.laser.current_ma": float(val)})


def test_out_of_range_message_has_range():
    msg = _err("[design.ring]\nradius_um = 0.5\n")
    assert "design.ring.radius_um" in msg and "[1, 100]" in msg and "0.5" in msg
    # open bounds are shown open and enforced
    msg = _err("[limits]\nber_threshold = 0.5\n")
    assert "(0, 0.5)" in msg
    msg = _err("[design.laser]\ncurrent_ma = 0.0\n")
    assert "(0, 2000]" in msg


def test_malformed_toml():
    msg = _err("[design.ring\nbias_nm = 1\n")
    assert "malformed" in msg


def test_lanes_per_engine_multiple_of_lanes_per_laser():
    msg = _err("[system]\nlanes_per_engine = 6\n")
    assert "lanes_per_engine" in msg and "lanes_per_laser" in msg
    # consistent pair passes
    sc = Scenario.from_toml("[system]\nlanes_per_engine = 6\nlanes_per_laser = 3\n")
    assert sc.system.lanes_per_engine == 6


def test_spare_lanes_below_lanes_per_engine():
    msg = _err("[system]\nspare_lanes = 8\n")
    assert "spare_lanes" in msg


def test_engine_temperature_window_order():
    msg = _err("[window]\nengine_temp_min_c = 90.0\n")
    assert "engine_temp_min_c" in msg and "engine_temp_max_c" in msg
    msg = _err("[window]\nlaser_temp_min_c = 60.0\n")
    assert "laser_temp_min_c" in msg
    # equal ends are allowed
    sc = Scenario.from_toml("[window]\nengine_temp_min_c = 85.0\n")
    assert sc.window.engine_temp_min_c == sc.window.engine_temp_max_c


def test_error_message_names_source_file(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text("[design.ring]\nradius_um = 0.5\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"x\.toml"):
        Scenario.load(p)
    assert os.listdir(tmp_path) == ["x.toml"]


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


# --------------------------------------------------------------------------- pytree
STATIC_SECTIONS = ("system.", "correlation.")
STATIC_NAMES = (
    "limits.allow_order_hop",
    "design.coupler.kind",
)


def _is_static(key):
    return key.startswith(STATIC_SECTIONS) or key in STATIC_NAMES or key.endswith("truncate_sigma")


def test_scenario_is_pytree_and_static_fields_are_not_leaves(default):
    leaves = jax.tree_util.tree_leaves(default)
    want = [v for k, _, v in iter_params(default) if not _is_static(k)]
    assert leaves == want
    assert all(isinstance(x, float) for x in leaves)
    assert jax.tree_util.tree_leaves(default.system) == []
    assert "edge" not in leaves
    assert len(jax.tree_util.tree_leaves(default.design.coupler)) == 8  # all but `kind`
    # flatten / unflatten round trip; tree_map keeps static fields
    flat, treedef = jax.tree_util.tree_flatten(default)
    assert jax.tree_util.tree_unflatten(treedef, flat) == default
    doubled = jax.tree_util.tree_map(lambda x: 2.0 * x, default)
    assert doubled.design.ring.bias_nm == 12.0
    assert doubled.system == default.system
    assert doubled.design.coupler.kind == "edge"
    # a different static value is a different tree structure
    nrz = default.replace({"system.modulation": "nrz"})
    assert jax.tree_util.tree_structure(nrz) != jax.tree_util.tree_structure(default)


def test_scenario_passes_through_jit(default):
    @jax.jit
    def f(sc):
        assert isinstance(sc.system.lanes_per_engine, int)  # static stays Python
        return sc.design.ring.bias_nm * sc.system.lanes_per_engine

    out = f(jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), default))
    assert math.isclose(float(out), 48.0)


def test_correlation_round_trip_and_validation(default):
    text = '[correlation.die]\n"ring_resonance_nm,ring_coupling_ln" = 0.3\n'
    sc = Scenario.from_toml(text)
    assert sc.correlation.die == (("ring_resonance_nm", "ring_coupling_ln", 0.3),)
    assert Scenario.from_toml(sc.to_toml()) == sc
    assert jax.tree_util.tree_leaves(sc) == jax.tree_util.tree_leaves(default)  # static
    msg = _err('[correlation.die]\n"ring_resonance_nm,ring_coupling_ln" = 1.5\n')
    assert "correlation.die" in msg and "(-1, 1)" in msg


def test_lane_correlation_mixing_per_laser_and_per_lane_rejected_at_load():
    with pytest.raises(ScenarioError, match="per-laser"):
        Scenario.from_toml('[correlation.lane]\n"laser_power_db,ring_coupling_ln" = 0.3\n')
    # within one group it is fine
    Scenario.from_toml('[correlation.lane]\n"laser_power_db,laser_wavelength_nm" = 0.3\n')


def test_pam4_ber_threshold_bounded_by_formula_range():
    with pytest.raises(ScenarioError, match=r"0\.375"):
        Scenario.default().replace({"limits.ber_threshold": 0.4})
    nrz = Scenario.default().replace({"system.modulation": "nrz", "limits.ber_threshold": 0.4})
    assert nrz.limits.ber_threshold == 0.4


def test_bool_field_validated():
    with pytest.raises(ScenarioError, match="true or false"):
        Scenario.default().replace({"limits.allow_order_hop": 1})
    sc = Scenario.from_toml("[limits]\nallow_order_hop = true\n")
    assert sc.limits.allow_order_hop is True
    assert Scenario.from_toml(sc.to_toml()) == sc
