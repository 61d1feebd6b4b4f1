"""reach_yield against the analytic optimum of a linear limit state.

Problem: g = b − Σ x_i, x_i ~ N(0, σ_i²), cost Σ c_i/σ_i, constraint Pf ≤ 1 − Y,
i.e. β = b/‖σ‖ ≥ β_t = Φ⁻¹(Y). With the active constraint ‖σ‖² = (b/β_t)² and a
multiplier ν, stationarity of Σ c_i/σ_i + ν(Σ σ_i² − S²) gives c_i/σ_i² = 2νσ_i,
so σ_i ∝ c_i^{1/3} and σ* = S·c^{1/3}/‖c^{1/3}‖, S = b/β_t. On the β scale the
KKT condition ∇f = λ∇β with ∂β/∂log σ_i = −β σ_i²/S² gives λ* = f*/β_t.
Fixed seeds; tolerances are stated per assertion.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import norm_ppf
from cpojax.levels import LevelYield
from cpojax.optimize import (
    HISTORY_KEYS,
    YieldOptConfig,
    YieldOptInfo,
    YieldOptResult,
    YieldOptState,
    YieldStep,
    gaussian_sampler,
    make_yield_step,
    reach_yield,
)

C = np.array([1.0, 8.0, 27.0])
B = 10.0


def linear(x, design):
    return B - jnp.sum(x, axis=1)


def cost(p):
    return jnp.sum(C / p["std"])


def optimum(target_yield, fixed=None):
    """σ* ∝ c^{1/3} on the sphere ‖σ‖ = b/β_t (entries in `fixed` held at their value)."""
    s2 = (B / norm_ppf(target_yield)) ** 2
    r = np.cbrt(C)
    free = np.ones(3, bool)
    if fixed:
        for i, v in fixed.items():
            free[i] = False
            s2 -= v**2
    sig = np.zeros(3)
    sig[free] = np.sqrt(s2) * r[free] / np.linalg.norm(r[free])
    for i, v in (fixed or {}).items():
        sig[i] = v
    return sig


P0 = {"mean": np.zeros(3), "std": np.ones(3)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "n_verify", "multiplier"),
    [(0.99, 200_000, "ls"), (0.99999, 4_000_000, "ls"), (0.99, 200_000, "dual")],
)
def test_reaches_analytic_optimum_and_verifies(target, n_verify, multiplier):
    res = reach_yield(
        linear,
        P0,
        cost=cost,
        target_yield=target,
        key=jax.random.key(7),
        free="std",
        steps=250,
        n_per_step=4096,
        n_verify=n_verify,
        multiplier=multiplier,
    )
    sig = optimum(target)
    rel = np.asarray(res.params["std"]) / sig - 1.0
    assert np.all(np.abs(rel) < 0.04), rel  # each σ_i within 4 % of σ*_i
    f_star = float(np.sum(C / sig))
    assert abs(float(cost(res.params)) / f_star - 1.0) < 0.01
    # Recompilation guard: the step was traced (hence compiled) exactly once.
    assert res.n_compiles == 1
    # History: β settles at β_t, the multiplier near λ* = f*/β_t.
    beta_t = norm_ppf(target)
    h = res.history
    assert len(h["beta"]) == 250 and set(h) >= {"yield", "beta", "cost", "multiplier"}
    assert abs(np.mean(h["beta"][-50:]) - beta_t) < 0.05
    assert abs(np.mean(h["multiplier"][-100:]) / (f_star / beta_t) - 1.0) < 0.35
    # Verified on fresh samples: the failure rate is neither above 1.5× nor below
    # 0.5× the target's (Clopper-Pearson 95 % bounds).
    pf_t = 1.0 - target
    y, lo, hi = res.verification
    assert lo <= y <= hi
    assert lo >= target - 0.5 * pf_t
    assert lo <= target + 0.5 * pf_t
    assert res.n_verify == n_verify


def test_design_parameter_smoothed_gradient():
    """g = d − Σx with σ fixed, cost d: optimum d* = β_t·‖σ‖ (smoothed pathwise path)."""

    def ls(x, design):
        return design["d"] - jnp.sum(x, axis=1)

    p0 = {"mean": np.zeros(3), "std": np.array([1.0, 2.0, 2.0]), "design": {"d": jnp.asarray(3.0)}}
    res = reach_yield(
        ls,
        p0,
        cost=lambda p: p["design"]["d"],
        target_yield=0.99,
        key=jax.random.key(3),
        free="design",
        steps=200,
        n_per_step=4096,
        n_verify=100_000,
        optimizer=optax.adam(optax.cosine_decay_schedule(0.1, 200, alpha=0.01)),
    )
    d_star = norm_ppf(0.99) * 3.0
    assert abs(float(res.params["design"]["d"]) / d_star - 1.0) < 0.01
    assert np.array_equal(np.asarray(res.params["std"]), p0["std"])
    assert res.n_compiles == 1 and res.verification.lo >= 0.99 - 0.005


def test_sampler_override_and_index_mask():
    """Custom sampler (pathwise smoothed gradients) and free={"std": [0, 2]}."""
    res = reach_yield(
        linear,
        P0,
        cost=cost,
        target_yield=0.99,
        key=jax.random.key(5),
        free={"std": [0, 2]},
        sampler=gaussian_sampler,
        steps=250,
        n_per_step=8192,
        n_verify=100_000,
    )
    sig = optimum(0.99, fixed={1: 1.0})
    got = np.asarray(res.params["std"])
    assert got[1] == 1.0
    assert np.all(np.abs(got / sig - 1.0) < 0.05), got / sig
    assert res.n_compiles == 1


def test_recompilation_guard_detects_retrace():
    """The trace counter is a real guard: a dtype change of the step index retraces."""
    state, step, _, traces = make_yield_step(
        linear,
        P0,
        cost=cost,
        target_yield=0.9,
        key=jax.random.key(0),
        free="std",
        steps=2,
        n_per_step=256,
        method="lr",
    )
    state, _ = step(state, jnp.asarray(0, jnp.int32))
    state, _ = step(state, jnp.asarray(1, jnp.int32))
    assert traces() == 1
    step(state, jnp.asarray(2, jnp.int64))
    assert traces() == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_yield": 1.0}, r"target_yield must be in \(0, 1\)"),
        ({"target_yield": 0.0}, r"target_yield must be in \(0, 1\)"),
        ({"free": ["std", "sigma"]}, "free: unknown name"),
        ({"free": {"std": [0, 5]}}, r"indices must be in \[0, 3\)"),
        ({"params0": {"mean": np.zeros(3), "std": -np.ones(3)}}, "std must be > 0"),
        ({"bounds": {"std": (0.0, 1.0)}}, "bounds"),
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"steps": 2.0}, "steps must be an int >= 1"),
        ({"target_yield": np.float64(1.0)}, r"target_yield must be in \(0, 1\)"),
        ({"target_yield": "0.9"}, r"target_yield must be in \(0, 1\)"),
        ({"n_verify": 0}, "n_verify must be an int"),
    ],
)
def test_bad_input_names_argument(kwargs, match):
    args = dict(cost=cost, target_yield=0.99, key=jax.random.key(0), free="std", steps=5)
    params0 = kwargs.pop("params0", P0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        reach_yield(linear, params0, **args)


def test_step_is_state_info_and_result_names():
    """``state, info = step(state, s)``; the result carries the verified LevelYield."""
    built = make_yield_step(
        linear,
        P0,
        cost=cost,
        target_yield=0.99,
        key=jax.random.key(1),
        free="std",
        config=YieldOptConfig(steps=3, n_per_step=1024),
    )
    assert isinstance(built, YieldStep) and isinstance(built.state, YieldOptState)
    state, info = built.step(built.state, jnp.asarray(0, jnp.int32))
    assert isinstance(state, YieldOptState) and isinstance(info, YieldOptInfo)
    assert info.yield_.shape == () and info.tau.shape == (1,) and int(info.n_invalid) == 0
    assert float(info.yield_) == pytest.approx(1.0 - 0.5 * math.erfc(B / math.sqrt(6.0)), abs=0.02)
    assert set(built.unpack(state.params_u)) == {"mean", "std", "design"}

    res = reach_yield(
        linear,
        P0,
        cost=cost,
        target_yield=0.99,
        key=jax.random.key(1),
        free="std",
        config=YieldOptConfig(steps=3, n_per_step=1024),
        n_verify=20_000,
    )
    assert isinstance(res, YieldOptResult)
    assert tuple(res.history) == HISTORY_KEYS[:-1]  # n_invalid is checked, not kept
    assert all(len(v) == 3 for v in res.history.values())
    assert isinstance(res.verification, LevelYield)
    assert res.verification.value == 1.0 - res.n_verify_fail / res.n_verify
    assert res.reached == (res.verification.lo >= 0.99)
    # earlier names, kept
    assert res.verified is res.reached
    assert res.verified_yield == res.verification.value
    assert res.verified_ci == res.verification.ci


def test_invalid_model_output_during_optimisation():
    def nan_tail(x, design):
        return jnp.where(x[:, 0] > 2.5, jnp.nan, B - jnp.sum(x, axis=1))

    with pytest.raises(InvalidModelOutput, match="during optimisation"):
        reach_yield(
            nan_tail,
            P0,
            cost=cost,
            target_yield=0.9,
            key=jax.random.key(0),
            free="std",
            steps=2,
            n_per_step=256,
            method="lr",
        )


def test_numpy_scalars_accepted():
    res = reach_yield(
        linear,
        P0,
        cost=cost,
        target_yield=np.float32(0.9),
        key=jax.random.key(0),
        free="std",
        steps=np.int64(2),
        n_per_step=np.int32(256),
        method="lr",
        n_verify=np.int64(5000),
    )
    assert res.target_yield == float(np.float32(0.9)) and res.n_verify == 5000
