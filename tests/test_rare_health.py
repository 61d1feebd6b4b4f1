"""Health checks and planned stopping (cpojax.estimators.rare.health); the subset
interval's Student-t factor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from cpojax.estimators.rare import subset
from cpojax.estimators.rare.common import parse_options
from cpojax.estimators.rare.health import (
    CI_COV_FACTOR,
    Stopper,
    is_ci,
    pareto_k,
    weight_stats,
)


def test_pareto_k_separates_bounded_from_heavy_tails():
    rng = np.random.default_rng(0)
    assert pareto_k(rng.uniform(size=4000)) < 0
    assert pareto_k(rng.pareto(1.0, size=4000) + 1) > 0.7  # infinite mean: k = 1
    assert 0.3 < pareto_k(rng.pareto(2.5, size=4000) + 1) < 0.55  # k = 0.4


def test_weight_stats_and_interval():
    w = np.r_[np.full(50, 2e-6), np.zeros(950)]
    s = weight_stats(w, 2)
    assert s["pf"] == pytest.approx(1e-7) and s["n_fail"] == 50
    assert s["ess"] == pytest.approx(50) and s["max_share"] == pytest.approx(0.02)
    lo, hi = is_ci(1e-6, 0.1)
    sd = np.sqrt(np.log1p((CI_COV_FACTOR * 0.1) ** 2))
    assert lo == pytest.approx(1e-6 * np.exp(-1.959963984540054 * sd))
    assert hi == pytest.approx(1e-6 * np.exp(1.959963984540054 * sd))


def test_stopper_checks_only_at_planned_sizes():
    opts = parse_options({"target_cov": 0.1})
    st = Stopper(opts, pilot=2, margin=0.95)
    base = {"n_fail": 100, "pf": 1e-6, "ess": 100.0, "max_share": 0.01}
    assert not st.done({**base, "cov": 0.05}, 100, 1)  # within the pilot
    assert not st.done({**base, "cov": 0.2}, 200, 2)  # plan: 0.2²·200/0.095² ≈ 887
    assert st.n_plan == 887
    assert not st.done({**base, "cov": 0.09}, 500, 5)  # before the plan: no check
    assert st.done({**base, "cov": 0.099}, 900, 9)  # at the plan: cov ≤ target
    assert not Stopper(opts, 2, 0.95).done({**base, "cov": 0.05, "ess": 10.0}, 200, 2)


def test_subset_t_quantile_is_scipy():
    for nu in (2, 4, 9, 30):
        assert subset._t975(nu) == pytest.approx(special.stdtrit(nu, 0.975), rel=1e-14)
    assert subset._t975(4) == pytest.approx(2.7764451051977987, rel=1e-12)


def test_subset_pool_uses_spread_from_min_runs():
    def run(pf, di=0.3, ds=0.6):
        return {"pf": pf, "delta": ds, "delta_indep": di}

    few = [run(1.0), run(1.2)]
    pf, cov = subset._subset_pool(few)
    assert pf == pytest.approx(1.1) and cov == pytest.approx(0.6 / np.sqrt(2))
    runs = [run(x) for x in (0.5, 1.5, 0.8, 1.2, 1.0)]
    pf, cov = subset._subset_pool(runs)
    emp = np.std([0.5, 1.5, 0.8, 1.2, 1.0], ddof=1) / np.sqrt(5) / 1.0
    assert cov == pytest.approx(
        max(0.3 / np.sqrt(5), emp * special.stdtrit(4, 0.975) / 1.96), rel=1e-3
    )
