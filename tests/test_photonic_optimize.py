"""The photonic process optimizer (cpojax.process_opt) on short runs: one compilation,
a saveable scenario, costs, and a verification that accounts for lane clustering.
"""

from __future__ import annotations

import jax
import pytest

from cpojax.cost import DEFAULT_COSTS
from cpojax.process_opt import optimize_process
from cpojax.scenario import Scenario, ScenarioError
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


OPT_FREE = [RING_DIE, BIAS]


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


# --------------------------------------------------------------------------- process_opt.py (#5)
@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
