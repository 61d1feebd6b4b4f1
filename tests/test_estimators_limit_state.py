"""check_limit_state: one contract check for every estimator (mc and rare alike)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators import check_limit_state, estimate_failure
from cpojax.estimators.limit_state import PROBE_ROWS
from cpojax.rng import BLOCK

TABLE = np.arange(4.0, dtype=np.float32)


def ok_two_cols(u):
    return jnp.stack([3.0 - u[:, 0], 3.0 + u[:, -1]], axis=1)


# Each of these is written for more inputs than dim = 2 and, unchecked, runs: JAX clamps
# (or fills) an out-of-range index instead of raising.
OUT_OF_RANGE = {
    "getitem": lambda u: 3.0 - u[:, 5],
    "take": lambda u: 3.0 - jnp.take(u, 5, axis=1, mode="clip"),
    "negative": lambda u: 3.0 - u[:, -3],
    "vmap_row": lambda u: jax.vmap(lambda r: 3.0 - r[5])(u),
    "scan_columns": lambda u: jax.lax.scan(
        lambda c, i: (c + u[:, i], None), jnp.zeros_like(u[:, 0]), jnp.arange(4)
    )[0],
    "nested_jit": jax.jit(lambda u: 3.0 - u[:, 2]),
    "gather": lambda u: 3.0 - u[:, jnp.asarray([0, 5])].sum(axis=1),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_read_beyond_dim_is_refused(name):
    """Issue 15, item 20: g reading u[:, 5] with dim = 2 returned a number."""
    g = OUT_OF_RANGE[name]
    jax.block_until_ready(g(jnp.zeros((3, 2))))  # the defect: it runs
    with pytest.raises(ValueError, match=r"dim=2.* is out of bounds for axis 1 with size 2"):
        check_limit_state(g, 2, jnp.float32)


def test_message_names_dim_and_what_was_read():
    with pytest.raises(ValueError) as e:
        check_limit_state(OUT_OF_RANGE["getitem"], 2, jnp.float64)
    msg = str(e.value)
    assert "dim=2" in msg and f"({PROBE_ROWS}, 2)" in msg
    assert "index 5 is out of bounds for axis 1 with size 2" in msg


def test_same_check_for_mc_and_rare():
    g = OUT_OF_RANGE["getitem"]
    msgs = []
    for method, kw in (("mc", {"n": BLOCK}), ("form", {}), ("auto", {})):
        with pytest.raises(ValueError, match="out of bounds") as e:
            estimate_failure(g, dim=2, key=jax.random.key(0), method=method, **kw)
        msgs.append(str(e.value))
    assert len(set(msgs)) == 1


def test_internal_out_of_bounds_is_reported_too():
    def g(u):
        return jnp.asarray(TABLE)[jnp.asarray(7)] - u[:, 0]

    with pytest.raises(ValueError, match=r"array of shape \(4,\): index 7"):
        check_limit_state(g, 2, jnp.float32)


def test_valid_limit_states_pass():
    assert check_limit_state(ok_two_cols, 2, jnp.float32) == 2
    assert check_limit_state(ok_two_cols, 5, jnp.float64) == 2  # reading fewer is fine
    assert check_limit_state(lambda u: 1.0 - u[:, 1], 2, jnp.float32) == 1
    # Slices follow NumPy (clamped before JAX sees them): not an error.
    assert check_limit_state(lambda u: 1.0 - u[:, 1:6].sum(axis=1), 2, jnp.float32) == 1
    assert check_limit_state(ok_two_cols, np.int64(2), "float32") == 2


@pytest.mark.parametrize(
    ("g", "dim", "match"),
    [
        (lambda u: u[None], 3, r"f\[n\] or f\[n, k\].*shape \(1, 3, 3\)"),
        (lambda u: jnp.sum(u), 3, r"returned shape \(\)"),
        (lambda u: u[:, :0], 3, "at least one column"),
        (lambda u: u[:, 0] > 0, 3, "must return floats"),
        (lambda u: u[:, :3] - jnp.ones(3), 2, r"failed on .*dim=2 matches"),
        ("not a function", 3, "callable"),
    ],
)
def test_bad_limit_states(g, dim, match):
    with pytest.raises(ValueError, match=match):
        check_limit_state(g, dim, jnp.float32)


def test_bad_dim():
    for dim in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="dim must be an int >= 1"):
            check_limit_state(ok_two_cols, dim, jnp.float32)


def test_cached_per_function_and_unhashable_callables():
    traces = []

    def g(u):
        traces.append(u.shape)
        return 1.0 - u[:, 0]

    check_limit_state(g, 3, jnp.float32)
    n = len(traces)
    check_limit_state(g, 3, jnp.float32)
    assert len(traces) == n  # cached: not traced again

    class Model:  # a dataclass-like callable without __hash__
        __hash__ = None

        def __call__(self, u):
            return 1.0 - u[:, 4]

    with pytest.raises(ValueError, match="index 4 is out of bounds"):
        check_limit_state(Model(), 3, jnp.float32)
