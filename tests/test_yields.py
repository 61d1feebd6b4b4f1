"""Lane / engine / switch yield (cpojax.yields): hierarchy, reproducibility, breakdown.

The per-block function is compiled once per process for a scenario *structure*
(the scenario is a traced argument), so every test here reuses the default
structure and changes values only (Scenario.replace on non-static fields).
Statistical checks use fixed seeds; tolerances are K standard errors.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import jax
import pytest

from cpojax import rng
from cpojax.model import legacy_scenario
from cpojax.scenario import Spreads
from cpojax.sweep import yield_curve
from cpojax.yields import estimate_yield

K = 4.0  # tolerance in standard errors
# The yield engine's properties (hierarchy, reproducibility, attribution) are checked on the
# pre-physics-II model, whose failures are driven by the ring-resonance spread these tests
# use as a lever; the calibrated default's physics is tested in tests/test_physics2_*.py.
BASE = legacy_scenario()
SPREADS = [f.name for f in dataclasses.fields(Spreads)]
LASER_SPREADS = ("laser_power_db", "laser_wavelength_nm", "els_loss_db")


@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """Strict rank promotion, explicitly (variation.py once broadcast implicitly)."""
    with jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture(scope="module")
def default_16k():
    with jax.numpy_rank_promotion("raise"):
        return estimate_yield(BASE, seed=0, n_engines=16_384)


def _engine_vs_independent(res):
    """(engine yield − lane_yield^L) / SE, SE combining the engine binomial SE and the
    delta-method SE of lane_yield^L (lanes treated as independent, as under H0)."""
    lanes = res.n_lanes // res.n_engines
    y_l, y_e = res.lane[0], res.engine[0]
    se_e = math.sqrt(y_e * (1 - y_e) / res.n_engines)
    se_l = lanes * y_l ** (lanes - 1) * math.sqrt(y_l * (1 - y_l) / res.n_lanes)
    return (y_e - y_l**lanes) / math.hypot(se_e, se_l)


# --------------------------------------------------------------------------- hierarchy (issue #3)
def test_lane_level_only_engine_yield_is_lane_yield_power():
    """Only per-lane spreads (wafer = die = 0, per-laser spreads 0): lanes are i.i.d.,
    so engine yield = lane_yield^8 within K SE."""
    upd = {f"spread.{n}.{lvl}": 0.0 for n in SPREADS for lvl in ("wafer", "die")}
    upd.update({f"spread.{n}.lane": 0.0 for n in LASER_SPREADS})
    # Wider lane spreads so that a few % of lanes fail (the default lane spreads alone
    # fail none): thermal-lock failures from the ring, optical from the fibers.
    upd["spread.ring_resonance_nm.lane"] = 1.0
    upd["spread.fiber_offset_um.lane"] = 0.8
    sc = BASE.replace(upd)
    res = estimate_yield(sc, seed=1, n_engines=16_384)
    assert 0.9 < res.lane[0] < 0.995, res.lane  # informative regime
    assert res.engine[0] < 0.9
    t = _engine_vs_independent(res)
    assert abs(t) < K, (res.engine, res.lane[0] ** 8, t)
    _, lo, hi = res.engine
    # lane^8 also inside the (exact, 95 %) engine interval widened by K/1.96
    half = (hi - lo) / 2 * K / 1.96
    assert res.engine[0] - half < res.lane[0] ** 8 < res.engine[0] + half
    assert res.die_level_share == 0.0  # nothing engine-wide can fail a lane


def test_laser_sharing_correlates_lanes_even_without_die_spread():
    """Per-laser spreads are shared by the 4 lanes of a laser, so even with wafer =
    die = 0 lane failures cluster and engine yield > lane_yield^8."""
    upd = {f"spread.{n}.{lvl}": 0.0 for n in SPREADS for lvl in ("wafer", "die")}
    upd["spread.laser_wavelength_nm.lane"] = 1.0
    res = estimate_yield(BASE.replace(upd), seed=2, n_engines=16_384)
    assert res.lane[0] < 0.99
    assert _engine_vs_independent(res) > 5 * K


def test_die_level_spread_makes_engine_yield_exceed_lane_power(default_16k):
    """Default spreads (die + wafer levels): positively correlated lane failures, so
    engine yield > lane_yield^8 by many SE, and some failing engines are die-level."""
    res = default_16k
    t = _engine_vs_independent(res)
    assert t > 10 * K, (res.engine, res.lane[0] ** 8, t)
    assert res.engine.lo > res.lane[0] ** 8  # far outside the engine interval
    assert 0.0 < res.die_level_share < 1.0
    # yield_vs_lanes: first-i-lanes yield falls with i, above the independent curve
    yl, ind = res.yield_vs_lanes, res.independent_vs_lanes
    assert len(yl) == 8 and yl[-1] == pytest.approx(res.engine[0])
    assert all(a >= b for a, b in itertools.pairwise(yl))
    assert yl[0] == pytest.approx(ind[0], abs=K * math.sqrt(ind[0] * (1 - ind[0]) / 16_384))
    assert yl[-1] > ind[-1]
    # lane interval accounts for clustering: wider than a naive binomial interval
    _, lo, hi = res.lane
    naive = 2 * 1.96 * math.sqrt(res.lane[0] * (1 - res.lane[0]) / res.n_lanes)
    assert hi - lo > 1.5 * naive
    assert lo <= res.lane[0] <= hi


def test_switch_yield_is_engine_yield_power(default_16k):
    res = default_16k
    e = BASE.system.engines_per_switch
    assert res.switch[0] == pytest.approx(res.engine[0] ** e, rel=1e-12)
    assert res.switch.lo == pytest.approx(res.engine.lo**e, rel=1e-12)
    assert res.switch.hi == pytest.approx(res.engine.hi**e, rel=1e-12)
    assert res.switch.lo <= res.switch.value <= res.switch.hi
    d = res.to_dict()
    assert d["switch"] == {"yield": res.switch.value, "ci": [res.switch.lo, res.switch.hi]}
    json.dumps(d)  # JSON-friendly


# --------------------------------------------------------------------------- reproducibility
N3 = 3 * rng.BLOCK


def test_chunk_size_invariance_and_resume():
    sc = BASE
    a = estimate_yield(sc, seed=5, n_engines=N3, chunk_blocks=1)
    b = estimate_yield(sc, seed=5, n_engines=N3, chunk_blocks=2)  # last chunk runs past
    assert a.counts == b.counts
    assert a.engine == b.engine and a.lane == b.lane and a.attribution == b.attribution

    class Stop(Exception):
        pass

    saved = []

    def checkpoint(st):
        saved.append(json.loads(json.dumps(st)))  # must survive a JSON round trip
        raise Stop

    with pytest.raises(Stop):
        estimate_yield(sc, seed=5, n_engines=N3, chunk_blocks=1, checkpoint=checkpoint)
    assert len(saved) == 1 and saved[0]["next_block"] == 1 and saved[0]["n_blocks"] == 3
    c = estimate_yield(sc, seed=5, n_engines=N3, chunk_blocks=1, state=saved[0])
    assert c.counts == a.counts
    assert (c.lane, c.engine, c.switch) == (a.lane, a.engine, a.switch)
    assert c.failure_modes == a.failure_modes and c.die_level_share == a.die_level_share
    # A different seed gives different counts (the comparison above can fail).
    d = estimate_yield(sc, seed=6, n_engines=rng.BLOCK)
    first = estimate_yield(sc, seed=5, n_engines=rng.BLOCK)
    assert d.counts != first.counts

    # Mismatched resume state is refused.
    with pytest.raises(ValueError, match="resume"):
        estimate_yield(sc, seed=5, n_engines=2 * rng.BLOCK, state=saved[0])
    with pytest.raises(ValueError, match="resume"):
        estimate_yield(sc, seed=6, n_engines=N3, state=saved[0])


def test_yield_curve_monotone_and_common_random_numbers():
    sc = BASE.replace({"design.ring.heater_max_mw": 40.0})
    key = "design.ring.heater_max_mw"
    curve = yield_curve(sc, key, [40, 46, 60], seed=3, n_engines=4096)
    assert curve["values"] == [40.0, 46.0, 60.0] and curve["n_engines"] == 4096
    for level in ("lane", "engine", "switch"):
        y = curve[level]["yield"]
        assert y[0] <= y[1] <= y[2], (level, y)
        for v, (lo, hi) in zip(y, curve[level]["ci"], strict=True):
            assert lo <= v <= hi
    assert curve["engine"]["yield"][2] > curve["engine"]["yield"][0]  # heater matters here
    ref = estimate_yield(sc.replace({key: 46.0}), seed=3, n_engines=4096)
    assert round((1 - curve["engine"]["yield"][1]) * 4096) == ref.counts["engine_fail"]
    assert round((1 - curve["lane"]["yield"][1]) * 4096 * 8) == ref.counts["lane_fail"]


# --------------------------------------------------------------------------- failure breakdown
def test_modulator_dominated_failures():
    sc = BASE.replace({"design.ring.drive_vpp": 1.4})
    res = estimate_yield(sc, seed=0, n_engines=4096)
    fm = res.failure_modes
    assert max(fm, key=fm.get) == "modulator", fm
    assert fm["modulator"] > 1.5 * max(v for k, v in fm.items() if k != "modulator")
    assert res.lane_fail_fraction["modulator"] > 0.1
    assert set(fm) == {"optical", "thermal", "modulator", "power"}
    # fractions are consistent: share of failing lanes × lane failure rate
    p_fail = 1 - res.lane[0]
    for k in fm:
        assert res.lane_fail_fraction[k] == pytest.approx(fm[k] * p_fail, rel=1e-12)
    # Modulator (ER) failures are pushed by the ring's coupling (the default ring is
    # over-coupled, κ² 0.08 > round-trip loss ≈ 0.04, so stronger coupling lowers the
    # ER: mean z > 0) and by a weaker modulation efficiency (mean z < 0).
    att = res.attribution
    z2m = {n: a["excess_z2_modulator"] for n, a in att.items()}
    top = sorted(z2m, key=z2m.get, reverse=True)
    assert top[0] == "ring_coupling_ln", z2m
    assert "mod_efficiency_ln" in top[:3], z2m
    assert att["ring_coupling_ln"]["mean_z"] > 0 > att["mod_efficiency_ln"]["mean_z"]
    # spreads unrelated to the ER (dark current) show no excess among failing lanes
    assert abs(att["dark_current_ln"]["excess_z2"]) < 0.05


def test_attribution_points_at_the_huge_spread():
    sc = BASE.replace({"spread.ring_resonance_nm.lane": 2.0})
    res = estimate_yield(sc, seed=0, n_engines=4096)
    ex = {n: a["excess_z2"] for n, a in res.attribution.items()}
    assert max(ex, key=ex.get) == "ring_resonance_nm", ex
    assert ex["ring_resonance_nm"] > 5 * max(v for n, v in ex.items() if n != "ring_resonance_nm")
    assert res.failure_modes["thermal"] > 0.9


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_engines": 0}, "n_engines"),
        ({"n_engines": -4096}, "n_engines"),
        ({"n_engines": 4096.0}, "n_engines"),
        ({"n_engines": True}, "n_engines"),
        ({"chunk_blocks": 0}, "chunk_blocks"),
        ({"chunk_blocks": -1}, "chunk_blocks"),
        ({"seed": None}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    args = {"n_engines": 4096, **kwargs}
    with pytest.raises((ValueError, TypeError), match=name):
        estimate_yield(BASE, **args)


def test_yield_curve_bad_input():
    sc = BASE
    with pytest.raises(ValueError, match="non-empty"):
        yield_curve(sc, "design.ring.heater_max_mw", [])
    with pytest.raises(ValueError, match="heater_max_mw"):  # out of range, validated
        yield_curve(sc, "design.ring.heater_max_mw", [40.0, -1.0])
    with pytest.raises(ValueError, match="structural"):
        yield_curve(sc, "system.spare_lanes", [0, 1])
