"""The independent NumPy implementation (benchmarks/numpy_reference) against the JAX model.

float64: deviations, limit states and every yield counter agree (≤ 1e-9 relative, counts
identical); float32: identical pass/fail on ≥ 1e5 lanes away from the boundary.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import numpy_reference as nr

from cpojax import counters, model, rng, variation
from cpojax.scenario import Scenario

SWITCHES = {
    "default": {},
    "legacy": dict(model.LEGACY),
    "paired_first_order_nrz": {
        "system.laser_mode": "paired",
        "system.ring_response": "first_order",
        "system.modulation": "nrz",
        "system.fiber_map": "interleaved",
    },
    "cooled_apc_hop_outer": {
        "system.els_cooled": True,
        "system.pam4_levels": "outer",
        "limits.allow_order_hop": True,
        "system.self_heating": False,
    },
    "apc_paired_uncoupled": {
        "system.laser_mode": "paired",
        "system.els_power_control": True,
        "system.thermal_coupling": False,
        "system.fiber_array": "translation",
    },
    "correlated": {
        "correlation.die.ring_resonance_nm,ring_coupling_ln": 0.4,
        "correlation.lane.ring_resonance_nm,heater_efficiency_ln": -0.3,
        "correlation.lane.laser_power_db,laser_wavelength_nm": 0.5,
    },
}


def _scenario(name):
    return Scenario.default().replace(SWITCHES[name])


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-30)))


def _params(names, fast=("default",)):
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _params(list(SWITCHES)))
def test_float64_limit_states_agree(name):
    sc = _scenario(name)
    lay = variation.layout(sc)
    u = rng.block_normals(jax.random.key(11), 0, lay.engine_dim, jnp.float64)[:256]
    dev_j = jax.jit(variation.engine_deviations, static_argnums=0)(sc, u)
    dev_n = nr.engine_deviations(sc, np.asarray(u))
    for f, x in dev_n.items():
        np.testing.assert_allclose(np.asarray(getattr(dev_j, f)), x, rtol=1e-12, atol=1e-12)
    g_j = jax.jit(lambda u: model.engine_g(sc, u, jnp.float64))(u)
    assert _rel(g_j, nr.engine_g(sc, dev_n, np.float64)) < 1e-9
    ul = rng.block_normals(jax.random.key(12), 0, lay.lane_dim, jnp.float64)[:256]
    gl_j = jax.jit(lambda u: model.lane_g(sc, variation.lane_deviations(sc, u), jnp.float64))(ul)
    gl_n = nr.lane_g(sc, nr.lane_deviations(sc, np.asarray(ul)), np.float64)
    assert _rel(gl_j, gl_n) < 1e-9


@pytest.mark.parametrize("name", _params(["default", "legacy"]))
def test_float64_block_counters_identical(name):
    sc = _scenario(name)
    key = jax.random.key(3)
    counts = jax.jit(counters.block_fn("float64", "threefry"))(key, jnp.uint32(2), sc)
    u = np.asarray(rng.block_normals(key, 2, variation.layout(sc).engine_dim, jnp.float64))
    ref = nr.block_counts(sc, u)
    for k, v in ref.items():
        got = counters.combine(counts[k]) if k.startswith("z") else np.asarray(counts[k])
        np.testing.assert_array_equal(got, np.asarray(v), err_msg=k)


def test_float32_pass_fail_identical_away_from_boundary():
    sc = Scenario.default()
    lay = variation.layout(sc)
    key = jax.random.key(5)
    g_fn = jax.jit(lambda u: model.engine_g(sc, u, jnp.float32))
    n_lanes = 0
    for b in range(4):  # 4 blocks x 4096 engines x 8 lanes = 131 072 lanes
        u = rng.block_normals(key, b, lay.engine_dim, jnp.float32)
        g_j = np.asarray(g_fn(u))
        g_n = nr.engine_g(sc, nr.engine_deviations(sc, np.asarray(u)), np.float32)
        far = np.abs(g_j) > 1e-3 * np.maximum(1.0, np.abs(g_n))
        np.testing.assert_array_equal((g_j < 0)[far], (g_n < 0)[far])
        n_lanes += g_j.shape[0] * g_j.shape[1]
        assert far.mean() > 0.99
    assert n_lanes >= 100_000
