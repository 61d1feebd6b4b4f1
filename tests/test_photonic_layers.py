"""Photonic layers on top of the yield model: dotted-key parameters (params.py),
rare-event lane yield (rare_yield.py, issue #4), sensitivities (sensitivity.py,
issue #5), the process optimizer (process_opt.py, issue #5) and their CLI commands.

Every expensive object (rare-event run, crude Monte Carlo run, sensitivity, optimizer
run) is computed once per module by a fixture and shared by the tests that check it;
everything works at lane level except where the engine level is the point. Seeds are
fixed; statistical tolerances are stated in standard errors (SE) next to each check.
The long engine-level rare-event comparison at 1e-4 lives in
benchmarks/bench_rare_photonic.py and is not repeated here.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.cli import main
from cpojax.process_opt import DEFAULT_COSTS, optimize_process
from cpojax.rare_yield import estimate_yield_rare, scale_spreads
from cpojax.scenario import Scenario, ScenarioError, get_values, numeric_keys, with_values
from cpojax.sensitivity import sensitivity
from cpojax.yields import estimate_yield

K = 4.0  # statistical tolerance, in standard errors
Z95 = 1.959963984540054

HEATER = "design.ring.heater_max_mw"
BIAS = "design.ring.bias_nm"
RING_DIE = "spread.ring_resonance_nm.die"
SENS_KEYS = [HEATER, BIAS, RING_DIE]
OPT_FREE = [RING_DIE, BIAS]


@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """Strict rank promotion, explicitly (variation.py once broadcast implicitly)."""
    with jax.numpy_rank_promotion("raise"):
        yield


def _ci_se(ci) -> float:
    """Standard error implied by a two-sided 95 % interval (half width / 1.96)."""
    return (ci[1] - ci[0]) / (2.0 * Z95)


# --------------------------------------------------------------------------- shared runs
@pytest.fixture(scope="module")
def default_sc():
    return Scenario.default()


@pytest.fixture(scope="module")
def rare_sc():
    """Spreads × 0.6: lane failure ≈ 2e-3, rare enough for FORM/IS and still
    measurable by crude Monte Carlo on 65536 engines (≈ 1200 failing lanes)."""
    return scale_spreads(Scenario.default(), 0.6)


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


@pytest.fixture(scope="module")
def sens(default_sc):
    with jax.numpy_rank_promotion("raise"):
        return sensitivity(default_sc, level="lane", keys=SENS_KEYS, n=4096, seed=0)


FD_H = 2.0  # mW, central finite-difference step on design.ring.heater_max_mw (46 mW)
FD_SEEDS = (101, 102, 103, 104)  # 4 independent replicates × 4096 engines = 16384 per side


@pytest.fixture(scope="module")
def heater_fd(default_sc):
    """Central finite difference of crude lane yield wrt heater_max_mw with common
    random numbers (the same seed on both sides), in 4 independent replicates.

    Returns (fd, se): fd = d(lane yield)/d(heater_max_mw) pooled over replicates;
    se = the larger of (a) the between-replicate standard error and (b) the
    discordant-lane bound: with common random numbers a lane that fails at v + h
    also fails at v − h (more heater range only helps, checked per limit state
    below), so the paired difference counts d = k₋ − k₊ discordant lanes, whose
    variance is ≤ d·deff (Poisson, inflated by the engine-clustering design effect
    deff of the −h run)."""
    v = float(default_sc.get(HEATER))
    sc_p = default_sc.replace({HEATER: v + FD_H})
    sc_m = default_sc.replace({HEATER: v - FD_H})
    diffs, disc, n_tot, deffs = [], 0, 0, []
    with jax.numpy_rank_promotion("raise"):
        for s in FD_SEEDS:
            rp = estimate_yield(sc_p, seed=s, n_engines=4096)
            rm = estimate_yield(sc_m, seed=s, n_engines=4096)
            kp, km, n = int(rp.counts["lane_fail"]), int(rm.counts["lane_fail"]), rp.n_lanes
            # monotone coupling: no limit state fails more often with more heater range
            assert all(
                a <= b
                for a, b in zip(rp.counts["state_fail"], rm.counts["state_fail"], strict=True)
            )
            diffs.append((km - kp) / n / (2 * FD_H))
            disc += km - kp
            n_tot += n
            # design effect from the −h run's interval width vs the binomial one
            p = km / n
            deffs.append((_ci_se(rm.lane.ci) ** 2) / (p * (1 - p) / n))
    diffs = np.asarray(diffs)
    fd = float(diffs.mean())
    se_rep = float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
    se_disc = math.sqrt(disc * max(1.0, max(deffs))) / n_tot / (2 * FD_H)
    return fd, max(se_rep, se_disc), diffs


@pytest.fixture(scope="module")
def opt(default_sc):
    with jax.numpy_rank_promotion("raise"):
        return optimize_process(
            default_sc,
            target_yield=0.95,
            level="lane",
            free=OPT_FREE,
            steps=60,
            n_per_step=1024,
            n_verify=65_536,
        )


# --------------------------------------------------------------------------- params.py
def test_numeric_keys_design_and_spreads_only(default_sc):
    keys = numeric_keys(default_sc)
    assert BIAS in keys and "spread.fiber_offset_um.die" in keys and HEATER in keys
    assert all(k.startswith(("design.", "spread.")) for k in keys)
    assert len(keys) == len(set(keys))
    # structural values are pytree aux data, not leaves: never listed, whatever the prefix
    assert "system.lanes_per_engine" not in keys
    assert numeric_keys(default_sc, prefixes=("system.",)) == []
    assert numeric_keys(default_sc, prefixes=("window.",)) == [
        "window.engine_temp_min_c",
        "window.engine_temp_max_c",
        "window.laser_temp_min_c",
        "window.laser_temp_max_c",
    ]


def test_with_values_round_trip_and_replaces_leaves(default_sc):
    keys = [BIAS, "spread.fiber_offset_um.die", HEATER]
    vals = get_values(default_sc, keys)
    assert all(v.dtype == jnp.float32 and v.shape == () for v in vals.values())
    assert float(vals[BIAS]) == pytest.approx(default_sc.get(BIAS))
    # identity round trip
    same = with_values(default_sc, vals)
    for k in keys:
        assert float(get_values(same, [k])[k]) == pytest.approx(float(vals[k]))
    # replace two leaves: those change, every other leaf is untouched
    new = with_values(default_sc, {BIAS: jnp.float32(6.5), "spread.fiber_offset_um.die": 0.25})
    got = get_values(new, keys, dtype=jnp.float64)
    assert float(got[BIAS]) == 6.5
    assert float(got["spread.fiber_offset_um.die"]) == 0.25
    assert float(got[HEATER]) == default_sc.get(HEATER)
    for k in numeric_keys(default_sc):
        if k not in (BIAS, "spread.fiber_offset_um.die"):
            assert float(new.get(k)) == float(default_sc.get(k)), k
    assert new.system == default_sc.system
    # traceable: with_values inside jit, gradient flows to the replaced leaf
    f = jax.jit(jax.grad(lambda b: 3.0 * with_values(default_sc, {BIAS: b}).design.ring.bias_nm))
    assert float(f(jnp.float32(6.0))) == 3.0


def test_params_unknown_key_named(default_sc):
    with pytest.raises(ScenarioError, match=r"design\.ring\.bias_nmm"):
        get_values(default_sc, ["design.ring.bias_nmm"])
    with pytest.raises(ScenarioError, match=r"spread\.nope\.die"):
        with_values(default_sc, {"spread.nope.die": 1.0})


def test_params_static_key_rejected(default_sc):
    with pytest.raises(ScenarioError, match="static"):
        get_values(default_sc, ["system.lanes_per_engine"])
    with pytest.raises(ScenarioError, match=r"system\.lanes_per_engine"):
        with_values(default_sc, {"system.lanes_per_engine": 4})


# --------------------------------------------------------------------------- rare_yield.py (#4)
def test_rare_lane_yield_auto_matches_crude_mc(rare_auto, rare_crude):
    """Auto (FORM → IS → subset) lane yield at ≈ 2e-3 failure vs crude Monte Carlo on
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
    # attribution and modes at lane level: the ring resonance spread dominates thermal fails
    assert r.failure_modes and abs(sum(r.failure_modes.values()) - 1.0) < 1e-6
    assert next(iter(r.attribution)) == "ring_resonance_nm"


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


# --------------------------------------------------------------------------- sensitivity.py (#5)
def test_sensitivity_heater_gradient_matches_crn_finite_difference(sens, heater_fd):
    """Smoothed pathwise d(lane yield)/d(heater_max_mw) (n = 4096 lanes) vs a central
    finite difference of crude Monte Carlo with common random numbers (h = 2 mW,
    16384 engines = 131072 lanes per side). Tolerance: a bias allowance of 15 % of
    |FD| (smoothing at τ = 0.05·std(g) is O(τ²) biased; the FD has O(h²) curvature
    bias) + K = 4 combined SE (measured: smoothed 0.00248 ± 0.00072, FD 0.00328 ±
    0.00017 per mW)."""
    fd, se_fd, _ = heater_fd
    row = next(r for r in sens.rows if r["key"] == HEATER)
    se = math.hypot(row["grad_se"], se_fd)
    assert fd > K * se_fd, (fd, se_fd)  # more heater range → more lanes lock
    assert abs(row["grad"] - fd) <= 0.15 * abs(fd) + K * se, (row["grad"], fd, se)
    assert row["grad"] > 0


def test_sensitivity_rows_signs_and_order(sens, default_sc):
    assert sens.level == "lane" and sens.n == 4096
    assert [r["key"] for r in sens.rows] != [] and {r["key"] for r in sens.rows} == set(SENS_KEYS)
    el = [abs(r["elasticity"]) for r in sens.rows]
    assert el == sorted(el, reverse=True)
    for r in sens.rows:
        assert r["value"] == pytest.approx(float(default_sc.get(r["key"])), rel=1e-6)
        assert r["elasticity"] == pytest.approx(r["value"] * r["grad"], rel=1e-9)
        assert r["elasticity_se"] == pytest.approx(abs(r["value"]) * r["grad_se"], rel=1e-9)
        assert r["grad_se"] > 0
    # a wider die-level ring spread costs yield: negative gradient, > K SE from 0
    die = next(r for r in sens.rows if r["key"] == RING_DIE)
    assert die["grad"] < -K * die["grad_se"], die
    # smoothed yield is a probability close to the crude default lane yield (≈ 0.95)
    assert 0.9 < sens.yield_smoothed < 0.99
    assert 0.0 < sens.pf < 0.1


def test_sensitivity_rejects_switch_level(default_sc):
    with pytest.raises(ValueError, match="level"):
        sensitivity(default_sc, level="switch", keys=[BIAS], n=64)


# --------------------------------------------------------------------------- process_opt.py (#5)
def test_optimize_process_short_run(opt, default_sc):
    """Lane target 0.95, 60 steps × 1024 lanes: one compilation of the step, a
    saveable scenario, and the crude verification (65536 lanes on a seed the optimizer
    never saw) has a 95 % lower bound ≥ target − 0.01 = 0.94."""
    assert opt.n_compiles == 1
    assert opt.level == "lane" and opt.n_verify == 65_536
    assert len(opt.history["yield"]) == 60
    # saveable: TOML round trip gives the same scenario
    back = Scenario.from_toml(opt.scenario.to_toml())
    assert back == opt.scenario
    # the scenario carries the optimized values, everything else unchanged
    rows = {r["key"]: r for r in opt.rows}
    assert set(rows) == set(OPT_FREE)
    for k in OPT_FREE:
        assert float(opt.scenario.get(k)) == pytest.approx(rows[k]["after"], rel=1e-6)
        assert rows[k]["before"] == pytest.approx(float(default_sc.get(k)), rel=1e-6)
    assert opt.scenario.replace({k: default_sc.get(k) for k in OPT_FREE}) == default_sc
    # verified interval
    lo, hi = opt.verified_ci
    assert 0.0 <= lo <= opt.verified_yield <= hi <= 1.0 and lo < hi
    assert lo >= 0.95 - 0.01, (opt.verified_yield, opt.verified_ci)
    assert opt.verified == (lo >= 0.95)


def test_optimize_process_costs(opt):
    rows = {r["key"]: r for r in opt.rows}
    r = rows[RING_DIE]
    kind, c = DEFAULT_COSTS[RING_DIE]
    assert (r["cost_kind"], r["coef"]) == (kind, c) == ("inverse", 4.0)
    assert r["cost_before"] == pytest.approx(c)
    assert r["cost_after"] == pytest.approx(c * r["before"] / r["after"], rel=1e-9)
    b = rows[BIAS]
    assert b["cost_kind"] == "free" and b["cost_before"] == b["cost_after"] == 0.0
    assert opt.cost_before == pytest.approx(sum(x["cost_before"] for x in opt.rows))
    assert opt.cost_after == pytest.approx(sum(x["cost_after"] for x in opt.rows))
    # starting at ≈ the target with a free bias knob, the optimizer does not pay more
    assert opt.cost_after <= opt.cost_before + 1e-9


def test_optimize_process_lane_verification_accounts_for_clustering(opt):
    # the verification run itself, repeated: same scenario, seed and size
    ref = estimate_yield(opt.scenario, seed=0 + 1_000_003, n_engines=65_536 // 8)
    assert opt.verified_yield == pytest.approx(ref.lane[0], abs=1e-12)
    w_opt = opt.verified_ci[1] - opt.verified_ci[0]
    w_ref = ref.lane.ci[1] - ref.lane.ci[0]
    assert w_opt >= 0.95 * w_ref, (opt.verified_ci, ref.lane.ci)


def test_optimize_process_argument_errors(default_sc):
    with pytest.raises(ScenarioError, match="bias_nmm"):
        optimize_process(default_sc, target_yield=0.95, level="lane", free=["design.ring.bias_nmm"])
    with pytest.raises(ScenarioError, match="cost"):
        optimize_process(
            default_sc, target_yield=0.95, level="lane", free=["design.receiver.penalty_db"]
        )
    with pytest.raises(ValueError, match="target_yield"):
        optimize_process(default_sc, target_yield=1.5, level="lane", free=[BIAS])


# --------------------------------------------------------------------------- CLI
def test_cli_sensitivity_lane_json(capsys, monkeypatch, default_sc):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")
    code = main(["sensitivity", "--level", "lane", "--samples", "1024", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    d = json.loads(out)
    assert d["level"] == "lane" and d["n"] == 1024
    assert {r["key"] for r in d["rows"]} == set(numeric_keys(default_sc))
    el = [abs(r["elasticity"]) for r in d["rows"]]
    assert el == sorted(el, reverse=True)
    assert all(math.isfinite(r["grad"]) and math.isfinite(r["grad_se"]) for r in d["rows"])


def test_cli_sensitivity_bad_level(capsys, monkeypatch):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")
    with pytest.raises(SystemExit) as e:
        main(["sensitivity", "--level", "switch", "--json"])
    assert e.value.code == 2
