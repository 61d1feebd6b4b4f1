"""Free-parameter masks, unconstrained coordinates and box bounds (cpojax.optimize.free)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.optimize.free import (
    free_mask,
    grad_to_unconstrained,
    moves_design,
    parse_bounds,
    project,
    to_constrained,
    to_unconstrained,
)

PARAMS = {
    "mean": jnp.zeros(3),
    "std": jnp.asarray([0.5, 1.0, 2.0]),
    "design": {"gap": jnp.asarray(1.0), "w": jnp.ones(2)},
}


def _np(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def test_round_trip_and_log_std():
    pu = to_unconstrained(PARAMS)
    assert set(pu) == {"mean", "log_std", "design"}
    np.testing.assert_array_equal(pu["log_std"], np.log(np.asarray(PARAMS["std"])))
    back = to_constrained(pu)
    np.testing.assert_allclose(back["std"], PARAMS["std"], rtol=1e-15)
    assert back["design"] is PARAMS["design"]


def test_grad_to_unconstrained_is_the_chain_rule():
    def f(p):
        return jnp.sum(p["mean"] ** 2) + jnp.sum(jnp.log1p(p["std"] ** 3)) + p["design"]["gap"]

    g_c = jax.grad(f)(PARAMS)
    g_u = jax.grad(lambda pu: f(to_constrained(pu)))(to_unconstrained(PARAMS))
    mine = grad_to_unconstrained(g_c, PARAMS)
    for a, b in zip(jax.tree_util.tree_leaves(mine), jax.tree_util.tree_leaves(g_u), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    ("free", "mean", "log_std", "gap", "w"),
    [
        (None, [1, 1, 1], [1, 1, 1], 1, [1, 1]),
        ("std", [0, 0, 0], [1, 1, 1], 0, [0, 0]),
        (["mean", "design"], [1, 1, 1], [0, 0, 0], 1, [1, 1]),
        ({"std": [0, 2]}, [0, 0, 0], [1, 0, 1], 0, [0, 0]),
        ({"mean": np.array([True, False, True])}, [1, 0, 1], [0, 0, 0], 0, [0, 0]),
        ({"design": {"gap": True, "w": False}}, [0, 0, 0], [0, 0, 0], 1, [0, 0]),
    ],
)
def test_free_mask_forms(free, mean, log_std, gap, w):
    m = _np(free_mask(free, PARAMS))
    np.testing.assert_array_equal(m["mean"], mean)
    np.testing.assert_array_equal(m["log_std"], log_std)
    np.testing.assert_array_equal(m["design"]["gap"], gap)
    np.testing.assert_array_equal(m["design"]["w"], w)
    assert moves_design(free_mask(free, PARAMS)) == bool(gap or any(w))


@pytest.mark.parametrize(
    ("free", "match"),
    [
        (["std", "sigma"], "free: unknown name"),
        ({"std": [0, 5]}, r"indices must be in \[0, 3\)"),
        ({"mean": np.array([True, False])}, r"bool mask must have shape \(3,\)"),
        ({"std": 0.5}, "must be a bool, a bool mask"),
        ({"design": {"nope": True}}, "prefix of the design pytree"),
        ({"std": False}, "selects no parameter"),
        (3, "free must be None, a name"),
    ],
)
def test_free_mask_errors(free, match):
    with pytest.raises(ValueError, match=match):
        free_mask(free, PARAMS)


def test_bounds_and_projection():
    lo_hi = parse_bounds({"std": (0.75, 1.5), "mean": (-1.0, [0.0, 1.0, 2.0])}, 3, jnp.float64)
    np.testing.assert_allclose(lo_hi["log_std"][0], np.log(0.75) * np.ones(3))
    pu = {"mean": jnp.asarray([-3.0, 1.5, 0.5]), "log_std": jnp.log(PARAMS["std"]), "design": None}
    out = project(pu, lo_hi)
    np.testing.assert_array_equal(out["mean"], [-1.0, 1.0, 0.5])
    np.testing.assert_allclose(np.exp(out["log_std"]), [0.75, 1.0, 1.5], rtol=1e-15)
    assert parse_bounds(None, 3, jnp.float64) == {}
    with pytest.raises(ValueError, match="bounds: unknown name"):
        parse_bounds({"design": (0, 1)}, 3, jnp.float64)
    with pytest.raises(ValueError, match=r"bounds\['std'\]"):
        parse_bounds({"std": (0.0, 1.0)}, 3, jnp.float64)
    with pytest.raises(ValueError, match=r"bounds\['mean'\]"):
        parse_bounds({"mean": (1.0, 0.0)}, 3, jnp.float64)
