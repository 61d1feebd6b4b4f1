"""Rare-event lane yield of the photonic model (cpojax.rare_yield) against crude Monte
Carlo. Seeds are fixed; tolerances are stated in standard errors (SE). The long
engine-level comparison at 1e-4 lives in benchmarks/bench_rare_photonic.py.
"""

from __future__ import annotations

import math

import jax
import pytest

from cpojax.rare_yield import estimate_yield_rare, scale_spreads
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield

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


@pytest.fixture(scope="module")
def rare_sc():
    """The default without the engine-level couplings, spreads × 0.9: lane failure
    ≈ 4e-3, rare enough for FORM/IS and still measurable by crude Monte Carlo on 65536
    engines (≈ 2300 failing lanes).

    The rare-event "lane" is one lane without its engine (the centre of the ring row,
    neighbours identical to it: ``model.lane_g``), while crude Monte Carlo counts every
    lane of whole engines (its place in the row, heater crosstalk, the rigid array's
    lever arms). The two measure the same population only when the engine couples no
    lanes: thermal coupling off and a translating fiber array. (With the couplings on,
    the centre lane fails ≈ 1.7e-3 against ≈ 2.6e-3 for the mean lane at × 0.9.)"""
    base = Scenario.default().replace(
        {"system.thermal_coupling": False, "system.fiber_array": "translation"}
    )
    return scale_spreads(base, 0.9)


@pytest.fixture(scope="module")
def rare_form(rare_sc):
    # FORM first: "auto" below reuses its compiled search kernel.
    with jax.numpy_rank_promotion("raise"):
        return estimate_yield_rare(rare_sc, method="form", levels=("lane",), seed=7)


@pytest.fixture(scope="module")
def rare_auto(rare_sc, rare_form):
    with jax.numpy_rank_promotion("raise"):
        return estimate_yield_rare(rare_sc, method="auto", levels=("lane",), seed=7)


@pytest.fixture(scope="module")
def rare_crude(rare_sc):
    with jax.numpy_rank_promotion("raise"):
        return estimate_yield(rare_sc, seed=8, n_engines=65_536)


# --------------------------------------------------------------------------- rare_yield.py (#4)
@pytest.mark.slow
def test_rare_lane_yield_auto_matches_crude_mc(rare_auto, rare_crude):
    """Auto (FORM → IS → subset) lane yield at ≈ 4e-3 failure vs crude Monte Carlo on
    65536 engines (524288 lanes): the two 95 % intervals overlap, and the point
    estimates differ by at most K = 4 combined SE (rare: pf·cov; crude: half width of
    its clustering-corrected Clopper-Pearson interval / 1.96)."""
    r, c = rare_auto, rare_crude
    assert r.reliable, r.lane_result.diagnostics.get("stages")
    assert r.lane_result.method in ("is", "subset", "auto")
    assert r.engine_result is None and math.isnan(r.engine[0])
    pf_c = 1.0 - c.lane[0]
    assert 5e-4 < pf_c < 1e-2, pf_c  # the scenario is in the intended regime
    (lo_r, hi_r), (lo_c, hi_c) = r.lane.ci, c.lane.ci
    assert lo_r <= r.lane[0] <= hi_r and lo_r < hi_r
    assert max(lo_r, lo_c) <= min(hi_r, hi_c), (r.lane, c.lane)
    pf_r = r.lane_result.pf
    se = math.hypot(pf_r * r.lane_result.cov, _ci_se(c.lane.ci))
    assert abs(pf_r - pf_c) <= K * se, (pf_r, pf_c, se)
    assert r.n_evals == r.lane_result.n_evals
    # modes and attribution at lane level (FORM design points, a first-order picture):
    # mode shares within 0.1 of crude Monte Carlo's (here thermal ≈ 0.66, modulator ≈ 0.25),
    # and the spread ranked first is the one with crude MC's largest excess z² in failures
    assert r.failure_modes and abs(sum(r.failure_modes.values()) - 1.0) < 1e-6
    for mode, share in c.failure_modes.items():
        assert abs(r.failure_modes[mode] - share) < 0.1, (r.failure_modes, c.failure_modes)
    top_c = max(c.attribution, key=lambda v: c.attribution[v]["excess_z2"])
    assert next(iter(r.attribution)) == top_c == "heater_efficiency_ln", r.attribution


@pytest.mark.slow
def test_rare_lane_yield_form_point(rare_form, rare_crude):
    """FORM: a point estimate, never 'reliable', degenerate interval; as a first-order
    approximation it is within a factor 3 of crude Monte Carlo here."""
    f = rare_form
    assert f.lane_result.method == "form" and f.method == "form"
    assert f.reliable is False and f.lane_result.reliable is False
    # FORM has no sampling error and no confidence interval: none is claimed
    assert f.lane.ci == (0.0, 1.0)
    pf_f, pf_c = 1.0 - f.lane[0], 1.0 - rare_crude.lane[0]
    assert pf_c / 3 < pf_f < 3 * pf_c, (pf_f, pf_c)


def test_rare_rejects_spares_and_unknown_method(rare_sc):
    with pytest.raises(ValueError, match="spare_lanes"):
        estimate_yield_rare(rare_sc.replace({"system.spare_lanes": 1}), method="form")
    with pytest.raises(ValueError, match="method"):
        estimate_yield_rare(rare_sc, method="mc")
    with pytest.raises(ValueError, match="method"):
        estimate_yield_rare(rare_sc, method="importance")
