"""Process variation: layout, hierarchy of spreads, truncation, correlations, z-scores.

Statistical checks use fixed seeds, N_ENG engines (each a row of the sample-indexed
normals) and tolerances of K standard errors of the estimator:

* variance of a normal from n draws: SE = σ²·sqrt(2/n);
* covariance of a bivariate normal: SE = sqrt((σ₁²σ₂² + c²)/n);
* correlation: SE = (1 − ρ²)/sqrt(n).

Everything here runs eagerly on host arrays (`sample` is not jitted), in float64.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import variation
from cpojax.physics import fiber_array
from cpojax.physics.link import Deviations
from cpojax.scenario import Scenario, ScenarioError, Spreads

N_ENG = 20_000
K = 4.0  # tolerance in standard errors
SPREADS = [f.name for f in dataclasses.fields(Spreads)]
NEW_SPREADS = variation.RIGID_ARRAY_SPREADS + variation.EXTRA_SPREADS


@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """Keep the suite's strict rank promotion explicit for every variation test
    (a regression test for implicit [cols] vs [..., cols] broadcasting)."""
    with jax.numpy_rank_promotion("raise"):
        yield


def _only(sc: Scenario, keep: dict[str, dict[str, float]]) -> Scenario:
    """Scenario with every spread zero except the given (variable -> {level: σ})."""
    upd = {f"spread.{n}.{lvl}": 0.0 for n in SPREADS for lvl in ("wafer", "die", "lane")}
    for n, levels in keep.items():
        for lvl, v in levels.items():
            upd[f"spread.{n}.{lvl}"] = v
    return sc.replace(upd)


@functools.lru_cache(maxsize=8)
def _sampler(n: int):
    """Jitted `sample` for n engines: one compilation per n and scenario *structure*
    (the scenario is traced, so value changes made with Scenario.replace reuse it)."""
    return jax.jit(lambda key, sc: variation.sample(key, sc, n, dtype=jnp.float64))


def _sample(sc: Scenario, n: int = N_ENG, seed: int = 0) -> Deviations:
    dev = _sampler(n)(jax.random.key(seed), sc)
    return jax.tree_util.tree_map(np.asarray, dev)


# One correlated scenario structure (correlations are static: each new table recompiles).
RHO_DIE, RHO_LANE = 0.6, -0.5


def _corr_scenario() -> Scenario:
    return Scenario.default().replace(
        {
            "correlation.die.ring_resonance_nm,ring_coupling_ln": RHO_DIE,
            "correlation.lane.laser_power_db,laser_wavelength_nm": RHO_LANE,
        }
    )


def _cov(a, b):
    return float(np.mean((a - a.mean()) * (b - b.mean())))


def _truncated_var(k: float) -> float:
    """Variance of N(0, 1) truncated to [−k, k]: 1 − 2kφ(k)/(2Φ(k) − 1)."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    mass = math.erf(k / math.sqrt(2))  # 2Φ(k) − 1
    return 1.0 - 2.0 * k * phi / mass


# --------------------------------------------------------------------------- strict broadcasting
def test_engine_deviations_under_strict_rank_promotion():
    sc = Scenario.default()
    u = jax.ShapeDtypeStruct((3, variation.layout(sc).engine_dim), jnp.float64)
    with jax.numpy_rank_promotion("raise"):
        dev = jax.eval_shape(lambda x: variation.engine_deviations(sc, x), u)
    assert dev.ring_resonance_nm.shape == (3, 8)


# --------------------------------------------------------------------------- layout
#: Every issue-9 spread drawn (fiber array as a rigid body, the extra process spreads).
ALL_SPREADS = {"system.fiber_array": "rigid", "system.extra_spreads": True}
#: None of them drawn (the former model's layout).
LEGACY_SPREADS = {"system.fiber_array": "translation", "system.extra_spreads": False}
NEW_FIELDS = {
    "array_roll_mrad",
    "tilt_x_mrad",
    "tilt_y_mrad",
    "gap_in_um",
    "gap_out_um",
    "gap_rx_um",
    "splitter_db",
    "ring_group_index",
    "heater_resistance_ln",
    "laser_aging_nm",
    "tx_penalty_db",
}


@pytest.mark.parametrize("all_on", [False, True])
def test_layout_dims_match_deviations_fields(all_on):
    sc = Scenario.default().replace(ALL_SPREADS if all_on else LEGACY_SPREADS)
    lay = variation.layout(sc)
    fields = {f.name for f in dataclasses.fields(Deviations)}
    if not all_on:  # the issue-9 spreads are not drawn: the former layout exactly
        fields -= NEW_FIELDS
    lane_fields = [f for _, f in lay.lane]
    laser_fields = [f for _, f in lay.laser]
    # Every Deviations field is driven by exactly one lane or laser column.
    assert sorted(lane_fields + laser_fields) == sorted(fields)
    # Laser quantities and everything before the 1:N splitter (the laser-in coupler)
    # vary per laser.
    want_laser = {
        "laser_power_db",
        "laser_wavelength_nm",
        "els_loss_db",
        "offset_in_x_um",
        "offset_in_y_um",
        "coupler_in_db",
    }
    if all_on:
        want_laser |= {"gap_in_um", "laser_aging_nm"}
    assert set(laser_fields) == want_laser
    # Shared columns: one per variable, two for the fiber offsets (array shift x, y).
    assert lay.n_shared == len(lay.variables) + 1
    assert len(lay.variables) == len(variation.VARIABLES) - (0 if all_on else 9)
    assert lay.lanes == 8 and lay.lanes_per_laser == 4 and lay.n_lasers == 2
    assert lay.engine_dim == 2 * lay.n_shared + 8 * len(lay.lane) + 2 * len(lay.laser)
    assert lay.lane_dim == 2 * lay.n_shared + len(lay.lane) + len(lay.laser)
    assert len(lay.column_names()) == lay.engine_dim
    assert len(lay.column_names(engine=False)) == lay.lane_dim
    assert len(set(lay.column_names())) == lay.engine_dim
    # Another architecture changes the dims accordingly.
    lay2 = variation.layout(
        sc.replace({"system.lanes_per_engine": 16, "system.lanes_per_laser": 2})
    )
    assert lay2.engine_dim == 2 * lay.n_shared + 16 * len(lay.lane) + 8 * len(lay.laser)
    assert lay2.lane_dim == lay.lane_dim


def test_sample_shapes_and_bad_n():
    sc = Scenario.default()
    dev = jax.eval_shape(lambda k: variation.sample(k, sc, 5), jax.random.key(1))
    for f in dataclasses.fields(Deviations):
        x = getattr(dev, f.name)
        assert x.shape == (5, 8), f.name
        assert x.dtype == jnp.float32, f.name
    with pytest.raises(ValueError, match="n_engines"):
        variation.sample(jax.random.key(1), sc, 0)
    with pytest.raises(ValueError, match="engine_dim"):
        variation.engine_deviations(sc, np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="lane_dim"):
        variation.lane_deviations(sc, np.zeros((2, 7), np.float32))


def test_first_engines_do_not_depend_on_n():
    sc = Scenario.default()
    small = _sample(sc, 4097, seed=7)  # one block plus one engine of the next
    big = _sample(sc, N_ENG, seed=7)
    # The normals are identical bit for bit; the deviations computed from them may
    # differ in the last ulp because XLA vectorises batches of different sizes
    # differently (seen with jax 0.10 on float64), so they are compared to 1e-13.
    for f in dataclasses.fields(Deviations):
        a, b = getattr(small, f.name), getattr(big, f.name)
        np.testing.assert_allclose(a, b[:4097], rtol=1e-13, atol=1e-13, err_msg=f.name)
    # ... and a different key gives different engines.
    other = _sample(sc, 4097, seed=8)
    assert not np.array_equal(other.ring_resonance_nm, small.ring_resonance_nm)


# --------------------------------------------------------------------------- hierarchy
def test_hierarchy_variance_and_lane_covariance():
    sw, sd, sl = 0.8, 0.6, 0.3
    sc = _only(Scenario.default(), {"ring_resonance_nm": {"wafer": sw, "die": sd, "lane": sl}})
    x = _sample(sc).ring_resonance_nm  # [n, 8]
    var_tot = sw**2 + sd**2 + sl**2
    cov_lanes = sw**2 + sd**2
    n = x.shape[0]
    for lane in (0, 5):
        v = float(np.var(x[:, lane]))
        assert abs(v - var_tot) < K * var_tot * math.sqrt(2 / n), (lane, v, var_tot)
    c = _cov(x[:, 0], x[:, 5])
    se = math.sqrt((var_tot**2 + cov_lanes**2) / n)
    assert abs(c - cov_lanes) < K * se, (c, cov_lanes, se)
    # Discriminates: independent lanes (c = 0) or fully shared lanes (c = var_tot) fail.
    assert abs(c - var_tot) > K * se and c > K * se
    # The lane-level difference has variance 2σ_lane² (wafer and die cancel).
    d = x[:, 0] - x[:, 5]
    assert abs(np.var(d) - 2 * sl**2) < K * 2 * sl**2 * math.sqrt(2 / n)


def test_laser_quantities_shared_per_laser():
    sw, sd, sl = 0.2, 0.1, 0.3
    sc = _only(Scenario.default(), {"laser_power_db": {"wafer": sw, "die": sd, "lane": sl}})
    x = _sample(sc).laser_power_db  # [n, 8]; lanes 0..3 on laser 0, 4..7 on laser 1
    # Equal up to the last ulp: XLA:CPU may compute different SIMD positions of one
    # array with and without fused multiply-add (seen with jax 0.10 on float64).
    for lane in (1, 2, 3):
        np.testing.assert_allclose(x[:, lane], x[:, 0], rtol=1e-14, atol=1e-15)
    for lane in (5, 6, 7):
        np.testing.assert_allclose(x[:, lane], x[:, 4], rtol=1e-14, atol=1e-15)
    n = x.shape[0]
    var_tot = sw**2 + sd**2 + sl**2
    assert abs(np.var(x[:, 0]) - var_tot) < K * var_tot * math.sqrt(2 / n)
    c = _cov(x[:, 0], x[:, 4])  # different lasers: only wafer + die shared
    se = math.sqrt((var_tot**2 + (sw**2 + sd**2) ** 2) / n)
    assert abs(c - (sw**2 + sd**2)) < K * se, (c, sw**2 + sd**2, se)
    assert abs(c - var_tot) > K * se  # not perfectly shared across lasers


def test_fiber_offsets_share_die_component_per_axis():
    sd, sl = 0.45, 0.4  # default truncation at 3 σ stays in place
    sc = _only(Scenario.default(), {"fiber_offset_um": {"die": sd, "lane": sl}})
    assert sc.spread.fiber_offset_um.truncate_sigma == 3.0
    dev = _sample(sc)
    tv = _truncated_var(3.0)
    n = N_ENG
    xs = [dev.offset_in_x_um, dev.offset_out_x_um, dev.offset_rx_x_um]
    ys = [dev.offset_in_y_um, dev.offset_out_y_um, dev.offset_rx_y_um]
    var_tot = (sd**2 + sl**2) * tv
    c_die = sd**2 * tv
    se_c = math.sqrt((var_tot**2 + c_die**2) / n)
    for axis in (xs, ys):
        for a, b in ((0, 1), (0, 2), (1, 2)):
            # same lane, two couplers: only the fiber array's die-level shift is shared
            c = _cov(axis[a][:, 0], axis[b][:, 0])
            assert abs(c - c_die) < K * se_c, (a, b, c, c_die)
        # two lanes on different lasers, one coupler: the same die-level shift only
        for a in range(3):
            c = _cov(axis[a][:, 0], axis[a][:, 4])
            assert abs(c - c_die) < K * se_c, (a, c, c_die)
        # the laser-in coupler sits before the 1:4 splitter: one coupler per laser,
        # so lanes 0..3 see the same laser-in offset
        np.testing.assert_allclose(
            np.asarray(axis[0][:, 0]), np.asarray(axis[0][:, 3]), rtol=1e-14, atol=1e-15
        )
        assert not np.array_equal(np.asarray(axis[1][:, 0]), np.asarray(axis[1][:, 3]))
    se0 = math.sqrt(var_tot**2 / n)
    for a in range(3):
        for b in range(3):
            c = _cov(xs[a][:, 0], ys[b][:, 0])  # x and y are independent
            assert abs(c) < K * se0, (a, b, c)


def test_truncation_bounds_and_variance():
    k, sl = 1.5, 0.4
    sc = _only(Scenario.default(), {"fiber_offset_um": {"lane": sl}}).replace(
        {"spread.fiber_offset_um.truncate_sigma": k}
    )
    dev = _sample(sc)
    x = np.concatenate(
        [getattr(dev, f).ravel() for f in ("offset_in_x_um", "offset_out_y_um", "offset_rx_x_um")]
    )  # independent draws: no shared component
    assert np.max(np.abs(x)) <= k * sl * (1 + 1e-12)
    assert np.max(np.abs(x)) > 0.99 * k * sl  # the bound is reached, not over-tightened
    n = x.size
    tv = _truncated_var(k) * sl**2  # ≈ 0.55 σ² at k = 1.5
    v = float(np.var(x))
    # SE of a sample variance: sqrt((μ4 − σ⁴)/n); μ4 of a truncated normal < 3σ⁴.
    se = tv * math.sqrt(2 / n)
    assert abs(v - tv) < K * se, (v, tv, se)
    assert abs(v - sl**2) > 100 * se  # truncation really shrinks the variance


# --------------------------------------------------------------------------- correlations
def test_correlations_die_and_lane_level():
    sc = _only(
        _corr_scenario(),
        {
            "ring_resonance_nm": {"die": 0.5},
            "ring_coupling_ln": {"die": 0.05},
            "laser_power_db": {"lane": 0.3},
            "laser_wavelength_nm": {"lane": 0.3},
        },
    )
    dev = _sample(sc)
    n = N_ENG
    a, b = dev.ring_resonance_nm[:, 0], dev.ring_coupling_ln[:, 0]
    r = float(np.corrcoef(a, b)[0, 1])
    assert abs(r - RHO_DIE) < K * (1 - RHO_DIE**2) / math.sqrt(n), r
    # Marginal spreads are unchanged by the correlation.
    assert abs(np.std(a) / 0.5 - 1) < K / math.sqrt(2 * n)
    assert abs(np.std(b) / 0.05 - 1) < K / math.sqrt(2 * n)
    # Without a lane-level spread every lane of an engine carries its die value.
    np.testing.assert_array_equal(dev.ring_resonance_nm[:, 3], a)
    # Per-laser pair at lane level.
    a, b = dev.laser_power_db[:, 4], dev.laser_wavelength_nm[:, 4]
    r = float(np.corrcoef(a, b)[0, 1])
    assert abs(r - RHO_LANE) < K * (1 - RHO_LANE**2) / math.sqrt(n), r
    # Different lasers stay independent.
    r = float(np.corrcoef(dev.laser_power_db[:, 0], b)[0, 1])
    assert abs(r) < K / math.sqrt(n), r


def test_lane_correlation_mixing_groups_raises():
    # rejected when the scenario is built (host side), before any sampling
    with pytest.raises(ScenarioError, match="per-laser"):
        Scenario.default().replace({"correlation.lane.ring_resonance_nm,laser_power_db": 0.3})


# --------------------------------------------------------------------------- standardized
@pytest.mark.parametrize("all_on", [False, True])
def test_standardized_unit_variance_and_zero_without_spread(all_on):
    sc = _corr_scenario().replace(
        {
            "spread.tia_noise_ln.wafer": 0.0,
            "spread.tia_noise_ln.die": 0.0,
            "spread.tia_noise_ln.lane": 0.0,
            **(ALL_SPREADS if all_on else LEGACY_SPREADS),
        }
    )
    lay = variation.layout(sc)

    @jax.jit
    def run(key, sc):
        u = jax.random.normal(key, (N_ENG, lay.engine_dim), jnp.float64)
        return variation.standardized(sc, u), variation.engine_deviations(sc, u)

    z, dev = jax.tree_util.tree_map(np.asarray, run(jax.random.key(3), sc))
    assert set(z) == set(variation.active_variables(sc))
    assert set(z) == (set(SPREADS) if all_on else set(SPREADS) - set(NEW_SPREADS))
    np.testing.assert_array_equal(z["tia_noise_ln"], 0.0)
    n = N_ENG
    for name, arr in z.items():
        assert arr.shape[:2] == (n, 8), name
        if name == "tia_noise_ln":
            continue
        for j in range(arr.shape[-1]):
            col = arr[:, 5, j]  # one lane: engines are i.i.d.
            assert abs(np.mean(col)) < K / math.sqrt(n), (name, j)
            assert abs(np.mean(col**2) - 1.0) < K * math.sqrt(2 / n), (name, j)
    assert z["fiber_offset_um"].shape[-1] == 6 and z["coupler_loss_db"].shape[-1] == 3
    # z is the standardized deviation: for an untruncated variable it is dev / σ_tot.
    sp = sc.spread.ring_resonance_nm
    tot = math.sqrt(sp.wafer**2 + sp.die**2 + sp.lane**2)
    np.testing.assert_allclose(
        z["ring_resonance_nm"][..., 0], dev.ring_resonance_nm / tot, rtol=1e-12, atol=1e-13
    )


# --------------------------------------------------------------------------- lane vs engine
@jax.jit
def _engine_and_lane(u, u_lane, sc):
    return variation.engine_deviations(sc, u), variation.lane_deviations(sc, u_lane)


@pytest.mark.parametrize("lane", [0, 6])
def test_lane_deviations_match_engine_lane(lane):
    sc = _corr_scenario()
    lay = variation.layout(sc)
    u = np.random.default_rng(11).standard_normal((64, lay.engine_dim))
    s2, p, q = 2 * lay.n_shared, len(lay.lane), len(lay.laser)
    laser = lane // lay.lanes_per_laser
    off_laser = s2 + lay.lanes * p
    u_lane = np.concatenate(
        [
            u[:, :s2],
            u[:, s2 + lane * p : s2 + (lane + 1) * p],
            u[:, off_laser + laser * q : off_laser + (laser + 1) * q],
        ],
        axis=-1,
    )
    assert u_lane.shape[-1] == lay.lane_dim
    eng, one = _engine_and_lane(u, u_lane, sc)
    # A lane on its own sits at the fiber array's centre: the engine's lane differs only by
    # the lever-arm terms of the array's roll (y offsets) and yaw (gaps) at its slots.
    pitch = sc.design.fiber_array.pitch_um
    tx, rx, las = (a[lane] * pitch for a in fiber_array.slot_offsets(8, 4, "grouped"))
    roll = np.asarray(eng.array_roll_mrad)[:, lane]
    yaw = np.asarray(eng.tilt_x_mrad)[:, lane]
    lever = {}
    for oy, gap, x in (
        ("offset_out_y_um", "gap_out_um", tx),
        ("offset_rx_y_um", "gap_rx_um", rx),
        ("offset_in_y_um", "gap_in_um", las),
    ):
        lever[oy] = 1e-3 * roll * x
        lever[gap] = -1e-3 * yaw * x
    for f in dataclasses.fields(Deviations):
        a = np.asarray(getattr(one, f.name))
        b = np.asarray(getattr(eng, f.name))[:, lane] - lever.get(f.name, 0.0)
        assert a.shape == (64,)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f.name)
    # and not some other lane's values
    assert not np.allclose(
        np.asarray(one.ring_resonance_nm), np.asarray(eng.ring_resonance_nm)[:, (lane + 1) % 8]
    )
