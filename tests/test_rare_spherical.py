"""The vMF × log-normal cross-entropy sampler (cpojax.estimators.rare.spherical)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from cpojax.estimators.rare import benchmarks as bm
from cpojax.estimators.rare.common import parse_options
from cpojax.estimators.rare.spherical import (
    Mixture,
    _sample_vmf,
    _vmfn_batch,
    init_mixture,
    log_norm_const,
    run_spherical,
    spread_out,
)

OPTS = parse_options({})


def _zero(u):
    return jnp.ones(u.shape[0], u.dtype)  # never fails: the batch returns the weights only


@pytest.mark.parametrize("dim", [2, 3, 10])
@pytest.mark.parametrize("kappa", [0.0, 1.0, 30.0])
def test_vmf_normaliser(dim, kappa):
    """exp(log C + κ(μ·θ − 1)) integrates to 1 over the sphere: check against the
    closed forms in 2-D (von Mises: 1/(2π I₀(κ))) and 3-D (κ/(4π sinh κ))."""
    lc = log_norm_const(kappa, dim)
    if dim == 2:
        ref = -math.log(2 * math.pi * special.i0e(kappa)) if kappa else -math.log(2 * math.pi)
        assert lc == pytest.approx(ref, rel=1e-12)
    elif dim == 3:
        ref = (
            math.log(kappa / (2 * math.pi * (1 - math.exp(-2 * kappa))))
            if kappa
            else -math.log(4 * math.pi)
        )
        assert lc == pytest.approx(ref, rel=1e-10)
    else:
        assert math.isfinite(lc)


@pytest.mark.parametrize(
    ("dim", "kappa"),
    [(2, 5.0), pytest.param(10, 20.0, marks=pytest.mark.slow), (50, 200.0)],
)
def test_vmf_samples_mean_resultant(dim, kappa):
    """Wood's sampler: E[μ·θ] = I_{d/2}(κ)/I_{d/2−1}(κ)."""
    n = 20_000
    mu = jnp.zeros((n, dim)).at[:, 0].set(1.0)
    th = np.asarray(_sample_vmf(jax.random.key(0), mu, jnp.full(n, kappa)))
    np.testing.assert_allclose(np.linalg.norm(th, axis=1), 1.0, atol=1e-5)
    ref = special.ive(dim / 2, kappa) / special.ive(dim / 2 - 1, kappa)
    assert np.mean(th[:, 0]) == pytest.approx(ref, abs=4 * np.std(th[:, 0]) / math.sqrt(n))


@pytest.mark.parametrize("dim", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_weights_have_mean_one(dim):
    """E_q[φ/q] = 1 for any proposal q: checks the whole log-density of the mixture
    (vMF normaliser, log-normal radius, Jacobian r^(d−1), defensive share)."""
    e = np.zeros(dim)
    e[0] = 1.0
    mix = Mixture(
        [e, -e, np.roll(e, 1)],
        [0.0, 8.0, 40.0],
        [np.log(3.0), np.log(4.0), 1.0],
        [0.2, 0.1, 0.3],
        [0.3, 0.3, 0.4],
    )
    w = []
    for i in range(20):
        out = _vmfn_batch(_zero, jax.random.key(i), *mix.device_args(jnp.float64), n=2000)
        w.append(np.exp(np.asarray(out["logw"])))
    w = np.concatenate(w)
    assert np.mean(w) == pytest.approx(1.0, abs=4 * np.std(w) / math.sqrt(w.size))
    assert np.max(w) <= 1 / 0.05 + 1e-9  # the defensive share bounds every weight


def test_spread_out():
    pts = [(np.array([1.0, 0.0]), 1.0, 0), (np.array([1.0, 0.1]), 1.0, 0)]
    pts.append((np.array([0.0, 1.0]), 1.0, 0))
    assert len(spread_out(pts, 8)) == 2 and len(spread_out(pts, 1)) == 1


@pytest.mark.slow
def test_hypersphere_from_the_probe_radius():
    p = bm.by_name("sphere6_1e-4")
    res = [
        run_spherical(
            p.limit_state, jax.random.key(s), init_mixture([], 6, radius=5.3), 1, 20_000, OPTS
        )
        for s in range(5)
    ]
    assert all(r.reliable and r.ci[0] <= p.pf <= r.ci[1] for r in res)
    assert max(r.n_evals for r in res) <= 2000
