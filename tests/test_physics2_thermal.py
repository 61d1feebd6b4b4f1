"""Issue 9 item 5: heater-to-heater thermal crosstalk and the on-die temperature map.

The coupled solve against the linear system (residual ≈ 0, dense = banded, the one-ring
and uncoupled limits, the interior of a long uniform row = the lane-level model), the
temperature map's closed form, the engine-level stage in model.engine_budget, gradients
through the solve, and the yield direction (neighbours' heat relieves red-edge lanes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model, rng, variation
from cpojax.physics import link, thermal

F64 = jnp.float64
BASE = model.legacy_scenario()
COUPLED = BASE.replace({"system.thermal_coupling": True})


@pytest.mark.parametrize("lanes", [1, 2, 3, 8, 16, 70])
@pytest.mark.parametrize("method", ["dense", "neumann"])
def test_coupled_solve_residual_and_limits(lanes, method):
    r = np.random.default_rng(lanes)
    s = jnp.asarray(r.uniform(0, 15, (5, lanes, 4)), F64)
    c1, c2 = 0.2, 0.1
    q = thermal.coupled_shifts_nm(shift_nm=s, c1=c1, c2=c2, method=method)
    m = np.asarray(thermal.coupling_matrix(lanes, F64(c1), F64(c2)))
    resid = np.einsum("ij,bjk->bik", m, np.asarray(q)) - np.asarray(s)
    assert np.max(np.abs(resid)) < 1e-9
    # uncoupled: every heater does its own ring's work
    q0 = thermal.coupled_shifts_nm(shift_nm=s, c1=0.0, c2=0.0, method=method)
    np.testing.assert_allclose(np.asarray(q0), np.asarray(s), atol=1e-12)
    if lanes == 1:  # a single ring has no neighbours
        np.testing.assert_allclose(np.asarray(q), np.asarray(s), atol=1e-12)


def test_dense_and_banded_agree_and_interior_of_long_row_is_the_lane_model():
    s = jnp.full((1, 101, 4), 10.0, F64)
    qd = thermal.coupled_shifts_nm(shift_nm=s, c1=0.08, c2=0.02, method="dense")
    qn = thermal.coupled_shifts_nm(shift_nm=s, c1=0.08, c2=0.02, method="neumann")
    np.testing.assert_allclose(np.asarray(qd), np.asarray(qn), atol=1e-9)
    e = thermal.uniform_neighbour_shift_nm(shift_nm=F64(10.0), c1=0.08, c2=0.02)
    assert float(s[0, 50, 0] - qd[0, 50, 0]) == pytest.approx(float(e), rel=1e-9)
    assert float(e) == pytest.approx(10.0 * 0.2 / 1.2, rel=1e-12)
    # end rings have fewer neighbours: their own heater works harder
    assert float(qd[0, 0, 0]) > float(qd[0, 50, 0])


def test_lane_temperature_map_closed_form():
    pos = thermal.lane_positions(8)
    assert pos[0] == -0.5 and pos[-1] == 0.5 and np.allclose(pos, -pos[::-1])
    assert thermal.lane_positions(1)[0] == 0.0
    kw = dict(gradient_c=3.0, temp_min_c=40.0, temp_max_c=85.0)
    hot = np.asarray(thermal.lane_temperature_offset_c(position=pos, temp_c=85.0, **kw))
    cold = np.asarray(thermal.lane_temperature_offset_c(position=pos, temp_c=40.0, **kw))
    assert hot[-1] - hot[0] == pytest.approx(3.0)
    np.testing.assert_array_equal(cold, 0.0)
    mid = np.asarray(thermal.lane_temperature_offset_c(position=pos, temp_c=62.5, **kw))
    np.testing.assert_allclose(mid, 0.5 * hot, rtol=1e-12)


def _engine_budget(sc, key=0, n=32, dtype=F64):
    lay = variation.layout(sc)
    u = rng.block_normals(jax.random.key(key), 0, lay.engine_dim, dtype)[:n]
    dev = variation.engine_deviations(sc, u)
    return jax.jit(lambda d: model.engine_budget(sc, d, dtype))(dev), dev


def test_engine_stage_solves_crosstalk_per_engine_and_corner():
    b, dev = _engine_budget(COUPLED)
    # the unwrapped shift each ring needs at its lock order (front stage, lane by lane)
    front = link.lane_front(
        design=COUPLED.design,
        dev=jax.tree_util.tree_map(lambda x: x.reshape(-1), dev),
        system=COUPLED.system,
        window=COUPLED.window,
        limits=COUPLED.limits,
        dtype=F64,
        lane_position=np.tile(thermal.lane_positions(8), 32),
    )
    _, s_k = link.lock_order(front)
    s_k = np.asarray(s_k).reshape(32, 8, 4)
    th = COUPLED.design.thermal
    m = np.asarray(thermal.coupling_matrix(8, F64(th.crosstalk_nn), F64(th.crosstalk_nnn)))
    q = np.linalg.solve(m, s_k)  # per engine and corner
    np.testing.assert_allclose(np.asarray(b.neighbour_shift_nm), s_k - q, atol=1e-9)
    # the lane temperatures follow the map (hot corners: last lane G hotter than the first)
    t = np.asarray(b.lane_temp_c)
    assert t[0, 7, 3] - t[0, 0, 3] == pytest.approx(th.lane_gradient_c, abs=1e-9)
    assert t[0, 7, 0] - t[0, 0, 0] == pytest.approx(0.0, abs=1e-12)
    # each ring's own heater supplies q (the lanes that keep their order, i.e. all but
    # those pushed across an order boundary by their neighbours)
    hs = np.asarray(b.heater_shift_nm)
    fsr = np.asarray(b.fsr_nm)[..., None]
    k = np.round((hs - q) / fsr)
    assert (k == 0).mean() > 0.9
    np.testing.assert_allclose(hs, q + k * fsr, atol=1e-9)
    assert np.median(np.asarray(b.neighbour_shift_nm)) > 0


def test_without_coupling_the_engine_is_its_lanes():
    b, dev = _engine_budget(BASE)
    g = jax.jit(lambda d: model.lane_g(BASE, d, F64))(dev)
    np.testing.assert_allclose(np.asarray(b.g), np.asarray(g), rtol=1e-13, atol=1e-12)


def test_gradient_through_the_crosstalk_solve():
    lay = variation.layout(COUPLED)
    u = rng.block_normals(jax.random.key(1), 0, lay.engine_dim, F64)[:4]
    g, _dim = model.parametric_limit_state(COUPLED, "engine")
    keys = ["design.thermal.crosstalk_nn", "design.thermal.lane_gradient_c"]
    vals = {k: jnp.asarray(COUPLED.get(k), F64) for k in keys}
    grad = jax.grad(lambda v: jnp.sum(g(u, v)))(vals)
    for k in keys:
        assert np.isfinite(float(grad[k])), k
    assert float(grad["design.thermal.crosstalk_nn"]) != 0.0
    gu = jax.grad(lambda uu: jnp.sum(g(uu, vals)))(u)
    assert bool(jnp.all(jnp.isfinite(gu)))


def test_crosstalk_relieves_a_heater_limited_engine():
    """Neighbours' heat lowers the power each heater must deliver: with a heater that
    runs out (red edge) the coupled engine yields more; blue-edge failures do not fall."""
    sc = BASE.replace({"design.ring.heater_max_mw": 38.0, "design.ring.bias_nm": 7.5})
    n = 4096
    off = estimate_yield(sc, seed=0, n_engines=n)
    on = estimate_yield(
        sc.replace({"system.thermal_coupling": True, "design.thermal.lane_gradient_c": 0.0}),
        seed=0,
        n_engines=n,
    )
    red = lambda r: r.thermal_edges["red"] * (1 - r.lane.value)  # noqa: E731
    assert red(off) > 0.01
    assert red(on) < red(off)
    assert on.engine.value > off.engine.value
