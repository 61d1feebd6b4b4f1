"""The fast formulation of the limit states (cpojax.physics.limits, model.engine_limits /
lane_limits) against the reporting lane budget (physics.link.lane_budget,
model.engine_budget): float64 ≤ 1e-10 relative, red/blue split identical, under every
model switch; and the corner helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import model, rng, variation
from cpojax.physics import limits
from cpojax.scenario import Scenario

SWITCHES = {
    "default": {},
    "legacy": dict(model.LEGACY),
    "paired_first_order_nrz_interleaved": {
        "system.laser_mode": "paired",
        "system.ring_response": "first_order",
        "system.modulation": "nrz",
        "system.fiber_map": "interleaved",
    },
    "cooled_hop_outer_no_self_heating": {
        "system.els_cooled": True,
        "system.pam4_levels": "outer",
        "limits.allow_order_hop": True,
        "system.self_heating": False,
    },
    "apc_paired_uncoupled_translation": {
        "system.laser_mode": "paired",
        "system.els_power_control": True,
        "system.thermal_coupling": False,
        "system.fiber_array": "translation",
    },
    "paired_extra_hop": {
        "system.laser_mode": "paired",
        "system.els_power_control": False,
        "limits.allow_order_hop": True,
    },
}


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize(
    "name",
    [
        n if n in ("default", "legacy") else pytest.param(n, marks=pytest.mark.slow)
        for n in SWITCHES
    ],
)
def test_fast_limits_equal_the_budget(name):
    sc = Scenario.default().replace(SWITCHES[name])
    lay = variation.layout(sc)
    u = rng.block_normals(jax.random.key(1), 0, lay.engine_dim, jnp.float64)[:200]

    @jax.jit
    def both(u):
        dev = variation.engine_deviations(sc, u)
        b = model.engine_budget(sc, dev, jnp.float64)
        return b.g, b.thermal_red, *model.engine_limits(sc, dev, jnp.float64)

    g_ref, red_ref, g, red = both(u)
    assert _rel(g, g_ref) < 1e-10
    np.testing.assert_array_equal(np.asarray(red), np.asarray(red_ref))
    ul = rng.block_normals(jax.random.key(2), 0, lay.lane_dim, jnp.float64)[:200]

    @jax.jit
    def lane(u):
        dev = variation.lane_deviations(sc, u)
        b = model.lane_budget_of(sc, dev, jnp.float64)
        return b.g, b.thermal_red, *model.lane_limits(sc, dev, jnp.float64)

    g_ref, red_ref, g, red = lane(ul)
    assert _rel(g.reshape(g_ref.shape), g_ref) < 1e-10
    np.testing.assert_array_equal(np.asarray(red).reshape(-1), np.asarray(red_ref))


def test_scalar_nominal_lane_and_float32():
    sc = Scenario.default()
    dev = variation.Deviations()
    for dt in (jnp.float32, jnp.float64):
        g, red = limits.lane_limits(
            design=sc.design,
            dev=dev,
            system=sc.system,
            window=sc.window,
            limits=sc.limits,
            dtype=dt,
        )
        assert all(x.dtype == dt and x.shape == () for x in g) and red.shape == ()
        assert all(float(x) > 0 for x in g)  # the nominal lane passes


def test_corner_helpers():
    xs = [jnp.asarray([3.0, -1.0]), jnp.asarray([2.0, 5.0]), jnp.asarray([4.0, 0.0])]
    np.testing.assert_array_equal(limits.corner_min(xs), [2.0, -1.0])
    np.testing.assert_array_equal(limits.corner_max(xs), [4.0, 5.0])
    assert float(limits.corner_min([jnp.asarray(jnp.nan), jnp.asarray(1.0)])) != 1.0
