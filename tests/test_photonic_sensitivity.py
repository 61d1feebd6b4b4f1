"""Sensitivities of the photonic yield (cpojax.sensitivity) against a common-random-number
finite difference of crude Monte Carlo, and the `cpojax sensitivity` command.
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from cpojax.cli import main
from cpojax.model import legacy_scenario
from cpojax.scenario import numeric_keys
from cpojax.sensitivity import sensitivity
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
    # The former model (physics-II effects off): its lane yield ≈ 0.95 is set by the
    # heater range and the ring-resonance spread, the two levers checked here.
    return legacy_scenario()


SENS_KEYS = [HEATER, BIAS, RING_DIE]
FD_H = 2.0  # mW, central finite-difference step on design.ring.heater_max_mw (46 mW)
FD_SEEDS = (101, 102, 103, 104)  # 4 independent replicates × 4096 engines = 16384 per side


@pytest.fixture(scope="module")
def sens(default_sc):
    with jax.numpy_rank_promotion("raise"):
        return sensitivity(default_sc, level="lane", keys=SENS_KEYS, n=4096, seed=0)


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


# --------------------------------------------------------------------------- sensitivity.py (#5)
@pytest.mark.slow
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


# --------------------------------------------------------------------------- CLI
@pytest.mark.slow
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
