"""Reproducibility across device counts: the same seed gives the same counts on 1 or 4
devices (conftest forces 4 CPU devices), because block b always draws from fold_in(key, b)."""

import jax
import jax.numpy as jnp
import pytest

from cpojax.estimators.mc import estimate_mc
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield


def _hyperplane(u):
    return 3.0 - jnp.sum(u, axis=1) / jnp.sqrt(jnp.asarray(u.shape[1], u.dtype))


def test_mc_bit_identical_on_four_devices():
    assert len(jax.devices()) >= 4
    key = jax.random.key(3)
    one = estimate_mc(_hyperplane, dim=10, key=key, n=8 * 4096, chunk_blocks=1)
    four = estimate_mc(_hyperplane, dim=10, key=key, n=8 * 4096, chunk_blocks=4, devices=4)
    assert one.n_fail == four.n_fail and one.n_evals == four.n_evals
    assert one.n_fail > 0


def test_yield_bit_identical_on_four_devices():
    sc = Scenario.default()
    one = estimate_yield(sc, seed=5, n_engines=4 * 4096, chunk_blocks=1)
    four = estimate_yield(sc, seed=5, n_engines=4 * 4096, chunk_blocks=4, devices=4)
    assert one.counts == four.counts
    assert one.engine == four.engine


def test_chunk_must_divide_over_devices():
    with pytest.raises(ValueError, match="multiple of the device count"):
        estimate_mc(_hyperplane, dim=10, key=jax.random.key(0), n=4096, chunk_blocks=3, devices=2)
