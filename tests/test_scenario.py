"""Scenario: TOML round trips, strict validation, dotted access, pytree structure."""

from __future__ import annotations

import math
import os
import stat
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.fileio import atomic_write_text
from cpojax.scenario import Scenario, ScenarioError, iter_params
from cpojax.scenario.keys import param_meta


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


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_saved_files_get_the_umask_mode_not_0600(default, tmp_path, umask_022):
    """Issue 15 item 15: atomic writes used mkstemp's 0600; a plain write gives 0644."""
    path = tmp_path / "scen.toml"
    default.save(path)
    assert _mode(path) == 0o644
    atomic_write_text(tmp_path / "x.json", "{}")
    assert _mode(tmp_path / "x.json") == 0o644
    # as with open(path, "w"), an existing file keeps its mode
    os.chmod(path, 0o600)
    default.save(path)
    assert _mode(path) == 0o600
    assert Scenario.load(path) == default
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.json", "{}")
    assert _mode(tmp_path / "private.json") == 0o600


def test_atomic_write_failure_leaves_no_temporary_file(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "folder", "x")  # the target is a folder
    assert sorted(os.listdir(tmp_path)) == ["folder"]
    assert os.listdir(tmp_path / "folder") == []
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "missing" / "x.toml", "x")


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


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("spread.ring_resonance_nm.die", "allowed [0, 20] nm"),
        ("spread.fiber_offset_um.lane", "allowed [0, 10] µm"),
        ("spread.dark_current_ln.wafer", "allowed [0, 3] ln"),
        ("spread.ring_loss_db_per_cm.die", "allowed [0, 100] dB/cm"),
    ],
)
def test_spreads_beyond_float32_rejected_with_their_range(key, text):
    """Issue 15 item 9: 1e308 passed validation and overflowed later in float32."""
    for bad in (1e308, 1e39, 1e3):
        with pytest.raises(ScenarioError) as e:
            Scenario.default().replace({key: bad})
        assert key in str(e.value) and text in str(e.value)
    table, level = key.rsplit(".", 1)
    msg = _err(f"[{table}]\n{level} = 1e308\n")
    assert key in msg and text in msg


def test_spreads_at_their_upper_bound_are_finite_in_float32():
    sc = Scenario.default()
    keys = [k for k, _, _ in iter_params(sc) if k.startswith("spread.")]
    top = sc.replace({k: param_meta(k)["hi"] for k in keys if not k.endswith("truncate_sigma")})
    assert top.spread.ring_resonance_nm.die == 20.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        leaves = np.asarray(jax.tree_util.tree_leaves(top.spread), np.float32)
    assert np.all(np.isfinite(leaves)) and leaves.max() == 100.0


def test_out_of_range_message_has_range():
    msg = _err("[design.ring]\nradius_um = 0.5\n")
    assert "design.ring.radius_um" in msg and "[1, 100]" in msg and "0.5" in msg
    # open bounds are shown open and enforced
    msg = _err("[limits]\nber_threshold = 0.5\n")
    assert "[1e-20, 0.5)" in msg
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


# --------------------------------------------------------------------------- numpy / jax scalars
def test_numpy_and_jax_scalars_accepted_and_stored_as_python(default):
    """Issue 15 item 17: values from np.linspace / jnp sweeps are numbers too."""
    sc = default.replace(
        {
            "design.ring.bias_nm": np.float32(5.0),
            "design.laser.current_ma": np.linspace(100.0, 200.0, 5)[1],
            "design.ring.heater_max_mw": jnp.linspace(10.0, 50.0, 5)[2],
            "spread.ring_resonance_nm.die": jnp.float32(0.5),
            "spread.fiber_offset_um.lane": np.array(0.25),
            "system.lanes_per_engine": np.int64(16),
            "system.spare_lanes": jnp.asarray(1, jnp.int32),
            "system.lanes_per_laser": np.float64(4.0),
            "system.modulation": np.str_("nrz"),
            "limits.allow_order_hop": np.bool_(True),
            "limits.ber_threshold": np.float16(0.001),
        }
    )
    want = {
        "design.ring.bias_nm": 5.0,
        "design.laser.current_ma": 125.0,
        "design.ring.heater_max_mw": 30.0,
        "spread.ring_resonance_nm.die": 0.5,
        "spread.fiber_offset_um.lane": 0.25,
        "system.lanes_per_engine": 16,
        "system.spare_lanes": 1,
        "system.lanes_per_laser": 4,
        "system.modulation": "nrz",
        "limits.allow_order_hop": True,
        "limits.ber_threshold": float(np.float16(0.001)),
    }
    for key, value in want.items():
        got = sc.get(key)
        assert got == value and type(got) is type(value), (key, got)
    # the float32 value itself, as a Python float
    assert sc.replace({"design.ring.bias_nm": np.float32(0.1)}).design.ring.bias_nm == float(
        np.float32(0.1)
    )
    assert all(type(x) is float for x in jax.tree_util.tree_leaves(sc))
    assert Scenario.from_toml(sc.to_toml()) == sc
    assert Scenario.from_dict({"design": {"ring": {"radius_um": np.float32(7.5)}}}) == (
        default.replace({"design.ring.radius_um": 7.5})
    )
    # a correlation coefficient too
    corr = default.replace({"correlation.die.ring_resonance_nm,ring_coupling_ln": np.float32(0.5)})
    assert corr.correlation.die == (("ring_resonance_nm", "ring_coupling_ln", 0.5),)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.float32("nan"), "finite"),
        (jnp.float32(jnp.inf), "finite"),
        (np.float64(-np.inf), "finite"),
        (np.float32(0.5), r"out of range: allowed \[1, 100\] µm"),
        (jnp.asarray(1000.0), r"out of range: allowed \[1, 100\] µm"),
        (np.bool_(True), "must be a number"),
        (np.array([5.0, 6.0]), r"single value.*shape \(2,\)"),
        (jnp.zeros((1,)), r"single value.*shape \(1,\)"),
        (np.complex64(5.0), "must be a number"),
    ],
)
def test_bad_numpy_and_jax_values_name_the_key_and_range(default, value, match):
    with pytest.raises(ScenarioError, match=match) as e:
        default.replace({"design.ring.radius_um": value})
    assert "design.ring.radius_um" in str(e.value) and "[1, 100]" in str(e.value)


def test_numpy_values_for_int_and_bool_fields_validated(default):
    with pytest.raises(ScenarioError, match=r"system\.lanes_per_engine.*integer"):
        default.replace({"system.lanes_per_engine": np.float32(8.5)})
    with pytest.raises(ScenarioError, match=r"system\.lanes_per_engine.*\[1, 1024\]"):
        default.replace({"system.lanes_per_engine": np.int64(2048)})
    with pytest.raises(ScenarioError, match="true or false"):
        default.replace({"limits.allow_order_hop": np.int64(1)})
    with pytest.raises(ScenarioError, match=r"\(-1, 1\)"):
        default.replace({"correlation.die.ring_resonance_nm,ring_coupling_ln": np.float32(1.0)})


def test_traced_value_is_a_scenario_error_not_a_jax_error(default):
    @jax.jit
    def f(x):
        return default.replace({"design.ring.bias_nm": x}).design.ring.bias_nm

    with pytest.raises(ScenarioError, match=r"design\.ring\.bias_nm.*traced.*with_values"):
        f(jnp.float32(5.0))


# --------------------------------------------------------------------------- pytree
STATIC_SECTIONS = ("system.", "correlation.")
STATIC_NAMES = (
    "limits.allow_order_hop",
    "design.coupler.kind",
    "cost.failure_policy",
    "cost.laser_modules_per_switch",
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
