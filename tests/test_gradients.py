"""Gradient estimators against exact gradients of closed-form failure probabilities.

Tolerances are K standard errors as reported by the estimator (K = 4: a false
alarm has probability < 1e-4 per compared entry for Gaussian errors), plus, for
the smoothed estimator, the smoothing bias computed exactly by 1-D quadrature.
Seeds are fixed, so these tests are deterministic.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators.gradients import (
    as_columns,
    failure_grad,
    failure_grad_core,
    pick_batches,
    smoothed_failure,
)
from cpojax.estimators.result import InvalidModelOutput

K = 4.0

# NumPy constants: eager jnp arithmetic in the tests would compile op by op.
A = np.array([1.0, -0.5, 2.0])
MEAN = np.array([0.1, 0.2, -0.3])
STD = np.array([1.0, 0.5, 0.7])


def linear(x, design):
    return design["b"] - x @ A


def _cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _pdf(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def linear_exact(mean, std, b):
    """g = b − a·x: β = (b − a·m)/s_g, s_g = ‖a∘s‖, Pf = Φ(−β), and

    ∂Pf/∂m = φ(β)·a/s_g,  ∂Pf/∂s = φ(β)·β·a²∘s/s_g²,  ∂Pf/∂b = −φ(β)/s_g.
    Returns (pf, d_mean, d_std, d_b) as NumPy values.
    """
    a, m, s = np.asarray(A), np.asarray(mean), np.asarray(std)
    s_g = float(np.sqrt(np.sum(a * a * s * s)))
    beta = (float(b) - float(a @ m)) / s_g
    ph = _pdf(beta)
    return _cdf(-beta), ph * a / s_g, ph * beta * a * a * s / s_g**2, -ph / s_g


def two_sided(x, design):
    """Failure where |x1| > L, as two columns (L − x1, L + x1)."""
    el = design["L"]
    return jnp.stack([el - x[:, 0], el + x[:, 0]], axis=1)


def two_sided_exact(mean, std, el):
    """Pf = Φ(z1) + Φ(z2), z1 = (−L − m1)/s1, z2 = (m1 − L)/s1 (independent of x2):

    ∂Pf/∂m1 = (φ(z2) − φ(z1))/s1,  ∂Pf/∂s1 = −(z1·φ(z1) + z2·φ(z2))/s1,
    ∂Pf/∂L = −(φ(z1) + φ(z2))/s1.  Returns (pf, d_mean, d_std, d_L).
    """
    m, s = float(mean[0]), float(std[0])
    z1, z2 = (-el - m) / s, (m - el) / s
    d_mean = np.array([(_pdf(z2) - _pdf(z1)) / s, 0.0])
    d_std = np.array([-(z1 * _pdf(z1) + z2 * _pdf(z2)) / s, 0.0])
    return _cdf(z1) + _cdf(z2), d_mean, d_std, -(_pdf(z1) + _pdf(z2)) / s


def _z(est, exact, se):
    return np.abs(np.asarray(est) - np.asarray(exact)) / np.asarray(se)


def test_lr_linear_matches_exact_gradients():
    b = jnp.asarray(3.0)
    pf, grads, info = failure_grad(
        linear, mean=MEAN, std=STD, design={"b": b}, key=jax.random.key(0), n=100_000, method="lr"
    )
    exact, g_mean, g_std, _ = linear_exact(MEAN, STD, b)
    assert _z(pf, exact, info.pf_se) < K
    assert np.all(_z(grads["mean"], g_mean, info.se["mean"]) < K)
    assert np.all(_z(grads["std"], g_std, info.se["std"]) < K)
    # The test has power: the exact gradients are many SE away from zero.
    assert np.all(np.abs(np.asarray(g_mean)) > 10 * np.asarray(info.se["mean"]))
    assert np.all(np.abs(np.asarray(g_std)[[0, 2]]) > 10 * np.asarray(info.se["std"])[[0, 2]])
    assert grads["design"] is None and info.se["design"] is None


def test_importance_sampling_at_rare_pf():
    b = jnp.asarray(9.0)  # β ≈ 5.2, Pf ≈ 1e-7: crude MC with n = 1e5 sees nothing
    s_g = float(np.sqrt(np.sum(A * A * STD * STD)))
    beta = (9.0 - float(A @ MEAN)) / s_g
    design_point = MEAN + beta * (A * STD * STD) / s_g  # x* = mean + β·σ∘α
    pf, grads, info = failure_grad(
        linear,
        mean=MEAN,
        std=STD,
        design={"b": b},
        key=jax.random.key(2),
        n=100_000,
        method="lr",
        proposal_mean=design_point,
        defensive=0.1,
    )
    exact, g_mean, g_std, _ = linear_exact(MEAN, STD, b)
    assert float(exact) < 1e-6
    assert float(info.pf_se) / float(exact) < 0.05
    assert _z(pf, exact, info.pf_se) < K
    assert np.all(_z(grads["mean"], g_mean, info.se["mean"]) < K)
    assert np.all(_z(grads["std"], g_std, info.se["std"]) < K)
    assert np.all(np.asarray(info.se["mean"]) < 0.1 * np.abs(np.asarray(g_mean)))
    # Cross-entropy shift lands beyond the design point along α (conditional mean).
    alpha = A * STD / s_g
    assert np.allclose(
        np.asarray(info.ce_shift) / np.linalg.norm(info.ce_shift),
        alpha * np.sign(alpha @ np.asarray(info.ce_shift)),
        atol=0.05,
    )


def _gauss_grid(mu, sig, m=200_001):
    t = np.linspace(mu - 12 * sig, mu + 12 * sig, m)
    dens = np.exp(-0.5 * ((t - mu) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    return t, dens, t[1] - t[0]


def _smoothed_linear(b, tau):
    """Exact smoothed Pf and d/db for g = b − a·x ~ N(μ_g, s_g²), by quadrature."""
    mu = b - float(A @ MEAN)
    sig = float(np.sqrt(np.sum(A * A * STD * STD)))
    t, dens, dt = _gauss_grid(mu, sig)
    kern = 1.0 / (1.0 + np.exp(t / tau))  # σ(−t/τ)
    pf_s = np.sum(kern * dens) * dt
    dpf_s_db = np.sum(kern * dens * (t - mu) / sig**2) * dt  # ∂N(t; μ, s)/∂μ
    return pf_s, dpf_s_db


def test_smoothing_bias_vanishes_as_tau_squared():
    b = 3.0
    exact, _, _, exact_db = linear_exact(MEAN, STD, b)
    taus = [0.4, 0.2, 0.1, 0.05]
    bias = np.array([_smoothed_linear(b, t)[0] - exact for t in taus])
    bias_db = np.array([_smoothed_linear(b, t)[1] - exact_db for t in taus])
    assert np.all(np.abs(np.diff(np.abs(bias))) > 0) and abs(bias[-1]) < 0.01 * exact
    # Second-order kernel: halving τ divides the bias by ≈ 4.
    assert np.allclose(bias[:-1] / bias[1:], 4.0, rtol=0.05)
    assert np.allclose(bias_db[:-1] / bias_db[1:], 4.0, rtol=0.1)
    # Leading term (π²/6)·τ²·f_g'(0), f_g the Gaussian density of g.
    mu = b - float(A @ MEAN)
    sig = float(np.sqrt(np.sum(A * A * STD * STD)))
    fprime0 = mu / sig**2 * np.exp(-0.5 * (mu / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    assert np.isclose(bias[-1], np.pi**2 / 6 * taus[-1] ** 2 * fprime0, rtol=0.02)


@pytest.mark.parametrize("tau", [0.15, 0.05])
def test_smooth_design_gradient_within_bias_plus_se(tau):
    b = 3.0
    _pf, grads, info = failure_grad(
        linear,
        mean=MEAN,
        std=STD,
        design={"b": jnp.asarray(b)},
        key=jax.random.key(3),
        n=100_000,
        method="both",
        tau=tau,
    )
    _, _, _, exact_db = linear_exact(MEAN, STD, b)
    pf_s, dpf_s = _smoothed_linear(b, tau)
    est, se = float(grads["design"]["b"]), float(info.se["design"]["b"])
    # Unbiased for the smoothed quantity ...
    assert abs(est - dpf_s) < K * se
    assert abs(float(info.pf_smooth) - pf_s) < K * float(info.pf_smooth_se)
    # ... hence within |bias| + K·SE of the true gradient.
    assert abs(est - exact_db) < abs(dpf_s - exact_db) + K * se
    assert se < 0.05 * abs(exact_db)
    assert np.allclose(np.asarray(info.tau), tau)


@pytest.mark.parametrize("combine", ["product", "softmin"])
def test_two_sided_lr_and_smoothed_multi_column(combine):
    """|x1| > L as two columns: LR mean/std gradients and smoothed dPf/dL."""
    mean, std = np.array([0.3, -1.0]), np.array([0.8, 2.0])
    el, tau = 1.5, 0.05
    pf, grads, info = failure_grad(
        two_sided,
        mean=mean,
        std=std,
        design={"L": jnp.asarray(el)},
        key=jax.random.key(4),
        n=100_000,
        method="both",
        tau=tau,
        combine=combine,
    )
    exact_pf, g_mean, g_std, exact = two_sided_exact(mean, std, el)
    assert _z(pf, exact_pf, info.pf_se) < K
    assert np.all(_z(grads["mean"], g_mean, info.se["mean"]) < K)
    assert np.all(_z(grads["std"][:1], g_std[:1], info.se["std"][:1]) < K)
    assert np.all(np.abs(np.asarray(grads["std"][1:])) < K * np.asarray(info.se["std"][1:]))
    assert abs(float(g_std[0])) > 10 * float(info.se["std"][0])

    def smoothed(el_):
        t, dens, dt = _gauss_grid(0.3, 0.8)
        z = np.stack([(el_ - t) / tau, (el_ + t) / tau])
        if combine == "product":
            fail = 1.0 - np.prod(1.0 / (1.0 + np.exp(-z)), axis=0)
        else:
            smin = -np.logaddexp(-z[0], -z[1])
            fail = 1.0 / (1.0 + np.exp(smin))
        return np.sum(fail * dens) * dt

    h = 1e-4
    d_smooth = (smoothed(el + h) - smoothed(el - h)) / (2 * h)
    est, se = float(grads["design"]["L"]), float(info.se["design"]["L"])
    assert abs(est - d_smooth) < K * se
    assert abs(est - exact) < abs(d_smooth - exact) + K * se


def test_jitted_once_per_shape_tau_is_traced():
    traces = []

    def ls(x, design):
        traces.append(1)
        return design - x[:, 0]

    kw = dict(mean=jnp.zeros(2), std=jnp.ones(2), design=jnp.asarray(1.0), n=4096)
    failure_grad(ls, key=jax.random.key(0), tau=0.1, **kw)
    n_first = len(traces)
    failure_grad(ls, key=jax.random.key(1), tau=0.05, **kw)
    failure_grad(ls, key=jax.random.key(2), tau=0.02, proposal_mean=jnp.ones(2), **kw)
    assert n_first > 0 and len(traces) == n_first


def test_invalid_model_output_raises():
    def bad(x, design):
        return jnp.where(x[:, 0] > 2.0, jnp.nan, 1.0 - x[:, 0])

    with pytest.raises(InvalidModelOutput, match="NaN/inf"):
        failure_grad(bad, mean=jnp.zeros(1), std=jnp.ones(1), key=jax.random.key(0), n=4096)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"std": jnp.array([1.0, -1.0])}, "std must be > 0"),
        ({"method": "exact"}, "method must be one of"),
        ({"tau": -0.1}, "tau must be a positive"),
        ({"defensive": 1.0}, r"defensive must be in \[0, 1\)"),
        ({"n": 1001}, "n=1001 has no divisor"),
        ({"combine": "max"}, "combine must be one of"),
        ({"proposal_mean": jnp.zeros(3)}, "proposal_mean must have shape"),
        ({"mean": jnp.zeros((2, 2))}, "mean must be a 1-D array"),
    ],
)
def test_bad_input_names_argument(kwargs, match):
    args = dict(mean=jnp.zeros(2), std=jnp.ones(2), key=jax.random.key(0), n=4096)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        failure_grad(lambda x, d: 1.0 - x[:, 0], **args)


# --------------------------------------------------------------------------- public helpers
def test_as_columns():
    assert as_columns(jnp.zeros(5)).shape == (5, 1)
    assert as_columns(jnp.zeros((5, 3))).shape == (5, 3)


def test_smoothed_failure_formulas():
    g = jnp.asarray([[2.0, 3.0], [40.0, 45.0], [-1.0, 5.0]])
    tau = jnp.asarray([1.0, 1.5])
    z = np.asarray(g) / np.asarray(tau)
    sig = 1.0 / (1.0 + np.exp(-z))
    got = np.asarray(smoothed_failure(g, tau, "product"))
    np.testing.assert_allclose(got[[0, 2]], (1.0 - sig.prod(axis=1))[[0, 2]], rtol=1e-12)
    # far from failure: 1 − Π σ(z_k) ≈ Σ exp(−z_k), kept to full relative precision
    assert got[1] == pytest.approx(math.exp(-40.0) + math.exp(-30.0), rel=1e-12)
    soft = np.asarray(smoothed_failure(g, tau, "softmin"))
    softmin = -np.log(np.exp(-z).sum(axis=1))
    np.testing.assert_allclose(soft, 1.0 / (1.0 + np.exp(softmin)), rtol=1e-12)


def test_pick_batches():
    assert pick_batches(4096, None) == 32
    assert pick_batches(100, None) == 25
    assert pick_batches(24, None) == 8
    assert pick_batches(24, 3) == 3
    with pytest.raises(ValueError, match="no divisor"):
        pick_batches(7, None)
    with pytest.raises(ValueError, match="n_batches must be an int >= 2 dividing n"):
        pick_batches(24, 5)


def test_failure_grad_core_is_the_body_of_failure_grad():
    design = {"b": jnp.asarray(2.0)}
    key = jax.random.key(3)
    pf, grads, info = failure_grad(
        linear, mean=MEAN, std=STD, design=design, key=key, n=1024, method="both"
    )
    pf2, grads2, info2 = jax.jit(
        failure_grad_core,
        static_argnames=("limit_state", "n", "method", "auto_tau", "combine", "n_batches"),
    )(
        linear,
        jnp.asarray(MEAN),
        jnp.asarray(STD),
        design,
        key,
        jnp.zeros(3),
        jnp.ones(()),
        jnp.asarray(0.05),
        jnp.asarray(0.0),
        n=1024,
        method="both",
        auto_tau=True,
        combine="product",
        n_batches=pick_batches(1024, None),
    )
    assert float(pf) == float(pf2)
    for a, b in zip(
        jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads2), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert int(info.n_fail) == int(info2.n_fail)
