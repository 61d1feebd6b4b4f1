"""Verification by crude Monte Carlo (cpojax.optimize.verify).

Problem: g = 10 − Σ x_i, x ~ N(0, diag(σ²)), σ = (1.5, 2, 2.5): β = 10/‖σ‖ =
2.828, Pf = Φ(−β) = 2.339e-3. The pinned counts are those of the implementation
before the optimizer became a package (its own streaming loop): moving the
verification onto ``stream_counts`` kept the random stream and every count.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson
from cpojax.levels import LevelYield
from cpojax.optimize import gaussian_sampler, verify_yield
from cpojax.optimize.verify import verified_level
from cpojax.rng import BLOCK

B = 10.0
P = {"mean": np.zeros(3), "std": np.array([1.5, 2.0, 2.5]), "design": None}
PF_EXACT = 0.5 * math.erfc(B / math.sqrt(12.5) / math.sqrt(2.0))


def linear(x, design):
    return B - jnp.sum(x, axis=1)


@pytest.mark.parametrize(
    ("n", "k_fail"), [(1, 0), (4095, 9), (4096, 9), (100_003, 234), (1_000_000, 2378)]
)
def test_counts_pinned_and_independent_of_chunk(n, k_fail):
    for chunk in (BLOCK, 3 * BLOCK + 1, 2**18):
        assert verify_yield(linear, P, key=jax.random.key(11), n_verify=n, chunk=chunk) == (
            k_fail,
            n,
        )


def test_block_rule_and_partial_last_block():
    """Row i is row i % BLOCK of the block drawn from fold_in(key, i // BLOCK)."""
    key, n = jax.random.key(5), 2 * BLOCK + 777
    rows = [np.asarray(gaussian_sampler(jax.random.fold_in(key, b), P, BLOCK)) for b in range(3)]
    x = np.concatenate(rows)[:n]
    expected = int(np.sum(B - x.sum(axis=1) < 0))
    assert verify_yield(linear, P, key=key, n_verify=n, chunk=BLOCK) == (expected, n)
    # rows past n_verify in the last block are not counted
    k_full, _ = verify_yield(linear, P, key=key, n_verify=3 * BLOCK)
    assert k_full == int(np.sum(B - np.concatenate(rows).sum(axis=1) < 0))


def test_float32_and_custom_sampler_pinned():
    p32 = {
        "mean": jnp.zeros(3, jnp.float32),
        "std": jnp.asarray([2.0, 2.5, 3.0], jnp.float32),
        "design": None,
    }

    def linear32(x, design):
        return jnp.asarray(B, x.dtype) - jnp.sum(x, axis=1)

    got = verify_yield(linear32, p32, key=jax.random.key(12), n_verify=2_000_000)
    assert got == (22692, 2_000_000)
    got = verify_yield(
        linear, P, key=jax.random.key(13), n_verify=123_457, sampler=gaussian_sampler
    )
    assert got == (311, 123_457)


def test_verified_interval_covers_exact_yield():
    k, n = verify_yield(linear, P, key=jax.random.key(11), n_verify=1_000_000)
    lv = verified_level(k, n)
    assert isinstance(lv, LevelYield)
    lo, hi = clopper_pearson(k, n)
    assert lv == (1.0 - k / n, 1.0 - hi, 1.0 - lo)
    assert lv.lo <= 1.0 - PF_EXACT <= lv.hi


def test_invalid_rows_raise():
    def nan_tail(x, design):
        return jnp.where(x[:, 0] > 2.0, jnp.nan, B - jnp.sum(x, axis=1))

    with pytest.raises(InvalidModelOutput, match="verification: limit_state returned NaN/inf"):
        verify_yield(nan_tail, P, key=jax.random.key(0), n_verify=10_000)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_verify": 0}, "n_verify must be an int"),
        ({"n_verify": 1.5}, "n_verify must be an int"),
        ({"n_verify": True}, "n_verify must be an int"),
        ({"n_verify": 2**32}, "n_verify must be an int"),
        ({"chunk": 0}, "chunk must be an int"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"key": jax.random.key(0), "n_verify": 100}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        verify_yield(linear, P, **args)


def test_numpy_integer_n_verify():
    assert verify_yield(linear, P, key=jax.random.key(11), n_verify=np.int64(4095)) == (9, 4095)
