"""Cost models (cpojax.cost): process cost items."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import cost, process_opt
from cpojax.cost import COST_KINDS, DEFAULT_COSTS, check_cost_table, item_cost
from cpojax.scenario import Scenario


def test_item_cost_formulas_by_hand():
    assert item_cost("inverse", 4.0, 0.5, 1.0) == 8.0  # halving the spread doubles it
    assert item_cost("inverse", 4.0, 1.0, 1.0) == 4.0
    assert item_cost("linear", 0.08, 50.0, 46.0) == pytest.approx(0.32)
    assert item_cost("linear", 0.08, 40.0, 46.0) == pytest.approx(-0.48)
    assert item_cost("free", 0.0, 7.0, 6.0) == 0.0


def test_item_cost_is_differentiable():
    d_inv = jax.grad(lambda v: item_cost("inverse", 3.0, v, 2.0))(jnp.asarray(0.5))
    assert float(d_inv) == pytest.approx(-3.0 * 2.0 / 0.25)
    d_lin = jax.grad(lambda v: item_cost("linear", 2.0, v, 1.0))(jnp.asarray(5.0))
    assert float(d_lin) == 2.0
    d_free = jax.grad(lambda v: item_cost("free", 9.0, v, 1.0))(jnp.asarray(5.0))
    assert float(d_free) == 0.0


def test_unknown_kind():
    with pytest.raises(ValueError, match="cost kind must be one of"):
        item_cost("cubic", 1.0, 1.0, 1.0)


def test_default_table_is_valid_and_names_scenario_values():
    assert check_cost_table(DEFAULT_COSTS) == DEFAULT_COSTS
    sc = Scenario.default()
    for key, (kind, c) in DEFAULT_COSTS.items():
        assert kind in COST_KINDS and c >= 0
        assert isinstance(sc.get(key), float), key
        if kind == "inverse":
            assert sc.get(key) > 0, key
    # every default free key of the process optimizer has a cost model
    assert set(process_opt.DEFAULT_FREE) <= set(DEFAULT_COSTS)
    # process_opt re-exports the same table (one home)
    assert process_opt.DEFAULT_COSTS is cost.DEFAULT_COSTS


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"k": ("cubic", 1.0)}, "cost kind for k must be inverse, linear or free"),
        ({"k": ("linear",)}, "cost item for k must be a pair"),
        ({"k": 3.0}, "cost item for k must be a pair"),
        ({"k": ("linear", "1")}, "cost coefficient for k must be a number"),
        ({"k": ("linear", True)}, "cost coefficient for k must be a number"),
    ],
)
def test_check_cost_table_names_the_key(table, match):
    with pytest.raises(ValueError, match=match):
        check_cost_table(table)


def test_check_cost_table_keeps_python_numbers_and_converts_numpy():
    out = check_cost_table({"a": ("linear", 1), "b": ("inverse", np.float32(2.5))})
    assert out["a"] == ("linear", 1) and type(out["a"][1]) is int
    assert out["b"] == ("inverse", 2.5) and type(out["b"][1]) is float
