"""β-scale constraint pieces against their formulas (cpojax.optimize.constraint)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators.stats import norm_ppf
from cpojax.optimize.constraint import (
    PF_FLOOR,
    beta_gradient,
    dual_multiplier,
    lagrangian_grad,
    ls_multiplier,
    penalty_coefficient,
    reliability_index,
)


@pytest.mark.parametrize("pf", [0.3, 1e-2, 1e-5, 1e-9])
def test_reliability_index(pf):
    beta, pdf = reliability_index(jnp.asarray(pf), jnp.float64)
    assert float(beta) == pytest.approx(-norm_ppf(pf), rel=1e-12)
    assert float(pdf) == pytest.approx(math.exp(-0.5 * float(beta) ** 2) / math.sqrt(2 * math.pi))


def test_reliability_index_is_finite_at_zero_and_one():
    for dtype in (jnp.float32, jnp.float64):
        beta0, pdf0 = reliability_index(jnp.zeros((), dtype), dtype)
        assert float(beta0) == pytest.approx(-norm_ppf(PF_FLOOR), rel=1e-5)
        assert np.isfinite(float(pdf0)) and float(pdf0) > 0
        beta1, _ = reliability_index(jnp.ones((), dtype), dtype)
        assert np.isfinite(float(beta1)) and float(beta1) < 0


def test_beta_gradient_masks_and_zeroes_steps_without_failures():
    g = {"mean": jnp.asarray([1.0, -2.0]), "log_std": jnp.asarray([0.5, 0.5]), "design": None}
    mask = {"mean": jnp.asarray([1.0, 0.0]), "log_std": jnp.asarray([1.0, 1.0]), "design": None}
    pdf = jnp.asarray(0.25)
    d = beta_gradient(g, jnp.asarray(0.01), pdf, mask)
    np.testing.assert_array_equal(d["mean"], [-4.0, 0.0])
    np.testing.assert_array_equal(d["log_std"], [-2.0, -2.0])
    d0 = beta_gradient(g, jnp.asarray(0.0), jnp.asarray(1e-29), mask)
    np.testing.assert_array_equal(d0["mean"], [0.0, 0.0])
    np.testing.assert_array_equal(d0["log_std"], [0.0, 0.0])


def test_ls_multiplier_closed_form_and_guards():
    f = {"a": jnp.asarray([1.0, 2.0])}
    b = {"a": jnp.asarray([2.0, 0.0])}
    lam = jnp.asarray(0.0)
    # λ_LS = ⟨f, b⟩/‖b‖² = 2/4; averaged: 0 + 0.5·(0.5 − 0)
    assert float(ls_multiplier(f, b, lam, 0.5, jnp.float64)) == pytest.approx(0.25)
    assert float(ls_multiplier(f, b, lam, 1.0, jnp.float64)) == pytest.approx(0.5)
    # negative correlation clips at 0; zero ∇β keeps λ finite
    neg = {"a": jnp.asarray([-2.0, 0.0])}
    assert float(ls_multiplier(f, neg, jnp.asarray(1.0), 1.0, jnp.float64)) == 0.0
    zero = {"a": jnp.zeros(2)}
    assert float(ls_multiplier(f, zero, jnp.asarray(0.7), 1.0, jnp.float64)) == 0.0


def test_penalty_dual_and_lagrangian():
    lam, c = jnp.asarray(1.0), jnp.asarray(0.05)
    assert float(penalty_coefficient(lam, c, 10.0)) == pytest.approx(0.5)
    assert float(penalty_coefficient(lam, jnp.asarray(0.2), 10.0)) == 0.0
    assert float(dual_multiplier(lam, c, 2.0)) == pytest.approx(0.9)
    assert float(dual_multiplier(lam, jnp.asarray(1.0), 2.0)) == 0.0
    g = lagrangian_grad({"a": jnp.asarray([1.0])}, {"a": jnp.asarray([4.0])}, jnp.asarray(0.5))
    np.testing.assert_array_equal(g["a"], [-1.0])
