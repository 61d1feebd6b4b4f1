"""The "counter" generator of cpojax.rng: Threefry-2x32 bits → inverse-CDF normals.

Checked against JAX's own Threefry (bit for bit), for tile consistency (a kernel draws
its rows of a block by offset) and statistically (moments, Kolmogorov-Smirnov, tail
frequencies, correlation of neighbouring columns) with fixed seeds; tolerances are
K standard errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32
from scipy import stats

from cpojax import rng

K = 4.0


def test_threefry_is_bit_identical_to_jax():
    key = jax.random.key_data(jax.random.key(1234)).astype(jnp.uint32)
    x = jnp.arange(4096, dtype=jnp.uint32) * jnp.uint32(2654435761)
    ref = np.asarray(threefry_2x32(key, x))
    a, b = rng.threefry2x32(key[0], key[1], x[:2048], x[2048:])
    np.testing.assert_array_equal(np.concatenate([a, b]), ref)


def test_tiles_of_a_block_are_slices_of_the_block():
    k0, k1 = rng.key_words(jax.random.key(5))
    full = np.asarray(rng.counter_normals(k0, k1, 7, 0, rng.BLOCK, 37))
    for row0, rows in ((0, 256), (1000, 96), (4000, 96)):
        tile = np.asarray(rng.counter_normals(k0, k1, 7, row0, rows, 37))
        np.testing.assert_array_equal(tile, full[row0 : row0 + rows])
    via_api = np.asarray(rng.block_normals(jax.random.key(5), 7, 37, generator="counter"))
    np.testing.assert_array_equal(via_api, full)
    two = np.asarray(rng.normals(jax.random.key(5), 6, 2, 37, generator="counter"))
    np.testing.assert_array_equal(two[rng.BLOCK :], full)


def test_bits_to_normals_edges():
    bits = jnp.asarray([0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF], jnp.uint32)
    z = np.asarray(rng.normals_from_bits(bits))
    assert z[0] > 6.2 and z[2] < -6.2  # the far tails, finite
    assert abs(z[1]) < 1e-6 and abs(z[3]) < 1e-6  # q → 1/2 gives 0
    assert np.all(np.isfinite(z))


@pytest.mark.parametrize("seed", [0, 1])
def test_counter_normals_statistics(seed):
    z = np.asarray(rng.normals(jax.random.key(seed), 0, 16, 64, generator="counter"), np.float64)
    n = z.size
    assert abs(z.mean()) < K / math.sqrt(n)
    assert abs(z.var() - 1.0) < K * math.sqrt(2.0 / n)
    assert stats.kstest(z.ravel()[:200_000], "norm").pvalue > 1e-4
    for t in (2.0, 3.0, 4.0):
        p = math.erfc(t / math.sqrt(2.0))
        f = np.mean(np.abs(z) > t)
        assert abs(f - p) < K * math.sqrt(p * (1 - p) / n), (t, f, p)
    # neighbouring columns (the two words of one Threefry call) and rows are independent
    for a, b in ((z[:, 0], z[:, 1]), (z[:, 10], z[:, 11]), (z[:-1, 5], z[1:, 5])):
        r = np.corrcoef(a, b)[0, 1]
        assert abs(r) < K / math.sqrt(len(a)), r
