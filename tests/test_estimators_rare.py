"""Rare-event estimators: the shared test problems and what every method shares
(argument checks, invalid output, the limit-state check, compilation reuse).

Per algorithm: test_estimators_rare_form.py, _is.py, _subset.py, _auto.py import the
problems below. Each statistical test there runs one problem with 10 fixed seeds and
asserts that the 95 % interval covers the exact value in at least 8 of them
(P[≤ 7 of 10] = 1.2 % for a true 95 % interval) and that the median relative error
meets the cov target.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators import InvalidModelOutput, estimate_failure
from cpojax.estimators.rare import estimate_rare, form, importance
from cpojax.estimators.stats import norm_sf

SEEDS = range(10)

# ---------------------------------------------------------------- problems (module level:
# the limit state is a static jit argument, so one object per problem compiles once)

BETA = 4.753  # Φ(−β) ≈ 1.0e-6
PF_LIN = norm_sf(BETA)


def linear(u):
    """g = β − a·u with a = (1, ..., 1)/√dim."""
    a = jnp.full((u.shape[1],), 1.0 / math.sqrt(u.shape[1]), u.dtype)
    return BETA - u @ a


B1, B2 = 3.5, 4.5
PF_UNION = norm_sf(B1) + norm_sf(B2) - norm_sf(B1) * norm_sf(B2)


def union(u):
    """Two failure regions of very different size in two columns."""
    return jnp.stack([B1 - u[:, 0], B2 + u[:, 1]], axis=1)


R2 = 40.0  # P[χ²_10 > 40] = e^{-20} Σ_{k<5} 20^k/k! ≈ 1.7e-5
PF_CHI2 = math.exp(-R2 / 2) * sum((R2 / 2) ** k / math.factorial(k) for k in range(5))


def sphere(u):
    """Failure outside a sphere: every point on it is a design point, FORM is wrong."""
    return R2 - jnp.sum(u * u, axis=1)


C_EXP = math.log(1e6)  # P[X > c] = e^{-c} = 1e-6 for X ~ Exp(1)
PF_EXP = math.exp(-C_EXP)


def exponential(u):
    """x = −ln(1 − Φ(u₁)) ~ Exp(1), by the (stable) transform x = −log Φ(−u₁)."""
    return C_EXP + jax.scipy.special.log_ndtr(-u[:, 0])


def nan_model(u):
    return jnp.where(u[:, 0] > 1.0, jnp.nan, 3.0 - u[:, 0])


def reads_beyond_dim(u):
    """Written for 6 inputs: with dim = 2 JAX would clamp u[:, 5] to u[:, 1]."""
    return BETA - u[:, 5]


# ---------------------------------------------------------------- helpers


def runs(f, dim, method, **kw):
    return [estimate_failure(f, dim=dim, key=jax.random.key(s), method=method, **kw) for s in SEEDS]


def check(results, exact, max_median_rel_err, min_cover=8, min_reliable=9):
    pf = np.array([r.pf for r in results])
    cover = sum(r.ci[0] <= exact <= r.ci[1] for r in results)
    rel = np.median(np.abs(pf / exact - 1.0))
    n_rel = sum(r.reliable for r in results)
    msg = (
        f"pf/exact={np.round(pf / exact, 3)}, cover={cover}/{len(results)}, "
        f"median rel err={rel:.3f}, reliable={n_rel}, n_evals={[r.n_evals for r in results]}"
    )
    assert cover >= min_cover, msg
    assert rel <= max_median_rel_err, msg
    assert n_rel >= min_reliable, msg
    return msg


# ---------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("method", ["form", "is", "subset", "auto"])
def test_nan_output_raises(method):
    with pytest.raises(InvalidModelOutput, match="NaN or inf"):
        estimate_failure(nan_model, dim=3, key=jax.random.key(0), method=method)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_cov": 0.0}, "target_cov"),
        ({"max_evals": -5}, "max_evals"),
        ({"n_starts": 0}, "n_starts"),
        ({"n_batch": 2.5}, "n_batch"),
        ({"p0": 0.7}, "p0"),
        ({"n_per_level": 1005}, "n_per_level"),
        ({"dtype": jnp.int32}, "dtype"),
        ({"bogus": 1}, "unknown"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_failure(linear, dim=3, key=jax.random.key(0), method="auto", **kwargs)


def test_bad_limit_state_shape():
    with pytest.raises(ValueError, match="shape"):
        estimate_failure(lambda u: u[None], dim=3, key=jax.random.key(0), method="form")
    with pytest.raises(ValueError, match="method"):
        estimate_rare(linear, dim=3, key=jax.random.key(0), method="mc")


@pytest.mark.parametrize("method", ["form", "is", "subset", "auto"])
def test_read_beyond_dim_is_refused(method):
    """Issue 15, item 20: a limit state reading u[:, 5] with dim = 2 ran and returned a
    number (JAX clamps the index to u[:, 1]); every method now refuses it."""
    u = jnp.asarray([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(reads_beyond_dim(u), BETA - u[:, 1])  # the silent clamp
    with pytest.raises(ValueError, match=r"dim=2.*index 5 is out of bounds for axis 1"):
        estimate_failure(reads_beyond_dim, dim=2, key=jax.random.key(0), method=method)


def test_numpy_integer_dim_accepted():
    r = estimate_failure(linear, dim=np.int64(10), key=jax.random.key(0), method="form")
    assert r.pf == pytest.approx(PF_LIN, rel=1e-2)


def test_no_recompilation_across_seeds():
    estimate_failure(linear, dim=10, key=jax.random.key(100), method="auto")
    sizes = (form._form_search._cache_size(), importance._is_batch._cache_size())
    estimate_failure(linear, dim=10, key=jax.random.key(101), method="auto")
    assert (form._form_search._cache_size(), importance._is_batch._cache_size()) == sizes
