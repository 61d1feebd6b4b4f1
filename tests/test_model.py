"""cpojax.model: the seam with every issue-9 effect on — shapes, the legacy switch set,
and gradients (wrt deviations, normals and design/spread values) through every effect."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model, rng, variation
from cpojax.physics import link
from cpojax.scenario import Scenario

F64 = jnp.float64
ALL_ON = {
    "system.laser_mode": "spec",
    "system.els_power_control": True,
    "system.self_heating": True,
    "system.fiber_array": "rigid",
    "system.thermal_coupling": True,
    "system.ring_response": "cmt",
    "system.pam4_levels": "four",
    "system.extra_spreads": True,
    "design.ring.heater_max_mw": 90.0,
}
SC = model.legacy_scenario().replace(ALL_ON)


def test_legacy_keys_switch_everything_off():
    leg = model.legacy_scenario()
    sy = leg.system
    assert sy.laser_mode == "paired" and sy.fiber_array == "translation"
    assert not (sy.self_heating or sy.thermal_coupling or sy.extra_spreads)
    assert sy.ring_response == "first_order" and sy.pam4_levels == "outer"
    assert variation.layout(leg).engine_dim == 152  # the former u-space
    # applying it twice, or to a modified scenario, keeps the modification
    assert model.legacy_scenario(leg) == leg
    mod = Scenario.default().replace({"design.ring.bias_nm": 5.5})
    assert model.legacy_scenario(mod).design.ring.bias_nm == 5.5


def test_shapes_with_every_effect():
    lay = variation.layout(SC)
    u = rng.block_normals(jax.random.key(0), 0, lay.engine_dim, jnp.float32)[:16]
    g = model.engine_g(SC, u, jnp.float32)
    assert g.shape == (16, 8, model.N_LIMIT) and g.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(g)))
    ge = model.limit_state(SC, "engine")(u)
    assert ge.shape == (16, 8 * model.N_LIMIT)
    ul = rng.block_normals(jax.random.key(1), 0, lay.lane_dim, jnp.float32)[:16]
    gl = model.limit_state(SC, "lane")(ul)
    assert gl.shape == (16, model.N_LIMIT)
    _g2, dim = model.parametric_limit_state(SC, "engine")
    assert dim == lay.engine_dim


#: (dotted key) of a value in each new effect; gradients of sum(g) must be finite and nonzero
EFFECT_KEYS = [
    "design.els.power_class_dbm",  # item 2
    "design.els.window_half_width_nm",
    "design.ring.self_heating_nm_per_mw",  # item 3
    "design.fiber_array.pitch_um",  # item 4
    "spread.fiber_array_roll_mrad.die",
    "design.thermal.crosstalk_nn",  # item 5
    "design.thermal.lane_gradient_c",
    "design.ring.tx_penalty_db",  # item 6
    "design.ring.electrical_bw_ghz",
    "spread.tx_penalty_db.lane",
    "spread.heater_resistance_ln.die",  # item 8
    "spread.ring_group_index.die",
    "spread.splitter_imbalance_db.lane",
    "spread.laser_aging_nm.lane",
]


def _effect_grads(sc, level):
    g, dim = model.parametric_limit_state(sc, level)
    u = rng.block_normals(jax.random.key(3), 0, dim, F64)[:64] * 0.8
    vals = {k: jnp.asarray(sc.get(k), F64) for k in EFFECT_KEYS}

    def total(v, uu):
        return jnp.sum(jnp.tanh(g(uu, v)))  # a smooth summary of every column

    gv, gu = jax.jit(jax.grad(total, argnums=(0, 1)))(vals, u)
    assert bool(jnp.all(jnp.isfinite(gu)))
    for k in EFFECT_KEYS:
        assert np.isfinite(float(gv[k])), k
    return {k for k in EFFECT_KEYS if float(gv[k]) != 0.0}


@pytest.mark.parametrize("level", ["lane", "engine"])
def test_gradients_through_every_effect(level):
    """Finite everywhere; nonzero for every effect that the limit states depend on here.

    With the spec laser (13 nm window > FSR) and the heater sized for a full FSR + the
    window, the lock does not depend on where the resonance sits: the window's width,
    self-heating (a static offset for a power-regulated laser) and the paired laser's
    aging have zero gradient. With the paired laser they act.
    """
    paired = SC.replace(
        {
            "system.laser_mode": "paired",
            "system.els_power_control": False,
            "design.ring.heater_max_mw": 46.0,
        }
    )
    narrow = SC.replace({"design.els.window_half_width_nm": 4.0, "design.ring.heater_max_mw": 70.0})
    nz_spec = _effect_grads(SC, level)
    nz_paired = _effect_grads(paired, level)
    if level == "lane":  # the window's width acts per lane: one compilation is enough
        assert "design.els.window_half_width_nm" in _effect_grads(narrow, level)
    nz_paired.add("design.els.window_half_width_nm")
    flat_spec = {
        "design.els.window_half_width_nm",
        "design.ring.self_heating_nm_per_mw",
        "spread.laser_aging_nm.lane",
    }
    # lane level: the centre lane has no lever arm (pitch, roll) and no temperature offset
    flat_lane = {
        "design.fiber_array.pitch_um",
        "spread.fiber_array_roll_mrad.die",
        "design.thermal.lane_gradient_c",
    }
    want = set(EFFECT_KEYS) - (flat_lane if level == "lane" else set())
    assert nz_spec >= want - flat_spec, want - flat_spec - nz_spec
    assert nz_spec | nz_paired >= want, want - nz_spec - nz_paired
    assert {"design.ring.self_heating_nm_per_mw", "spread.laser_aging_nm.lane"} <= nz_paired


def test_gradient_wrt_every_deviation_is_finite():
    names = [f.name for f in dataclasses.fields(link.Deviations)]
    dev0 = link.Deviations(**{n: F64(0.01) for n in names})

    def total(dev):
        return jnp.sum(
            link.limit_states(
                design=SC.design, dev=dev, system=SC.system, window=SC.window, limits=SC.limits
            )
        )

    gd = jax.jit(jax.grad(total))(dev0)
    for n in names:
        assert np.isfinite(float(getattr(gd, n))), n


def test_blue_and_red_thermal_failures_are_reported_apart():
    """A ring drawn too far red (bias small) fails at the blue edge; a weak heater at the
    red edge; the split adds up to the thermal share."""
    base = model.legacy_scenario()
    blue = estimate_yield(base.replace({"design.ring.bias_nm": 3.5}), seed=0, n_engines=4096)
    red = estimate_yield(
        base.replace({"design.ring.bias_nm": 9.0, "design.ring.heater_max_mw": 40.0}),
        seed=0,
        n_engines=4096,
    )
    for r in (blue, red):
        assert r.thermal_edges["blue"] + r.thermal_edges["red"] == pytest.approx(
            r.failure_modes["thermal"], abs=1e-12
        )
        assert set(r.to_dict()["thermal_edges"]) == {"blue", "red"}
    assert blue.thermal_edges["blue"] > 0.9 * blue.failure_modes["thermal"]
    assert red.thermal_edges["red"] > 0.9 * red.failure_modes["thermal"]
