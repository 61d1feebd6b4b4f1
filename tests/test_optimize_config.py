"""YieldOptConfig: one frozen, validated settings object (cpojax.optimize.config)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cpojax.optimize import YieldOptConfig, make_yield_step, reach_yield

C = np.array([1.0, 8.0, 27.0])


def linear(x, design):
    return 10.0 - jnp.sum(x, axis=1)


def cost(p):
    return jnp.sum(C / p["std"])


P0 = {"mean": np.zeros(3), "std": np.ones(3)}


def test_defaults_are_the_documented_ones():
    cfg = YieldOptConfig()
    assert (cfg.steps, cfg.n_per_step, cfg.method, cfg.tau, cfg.tau_rel) == (
        300,
        4096,
        "both",
        None,
        0.05,
    )
    assert (cfg.combine, cfg.penalty, cfg.multiplier, cfg.multiplier_ema) == (
        "product",
        10.0,
        "ls",
        0.2,
    )
    assert (cfg.dual_lr, cfg.importance, cfg.defensive, cfg.bounds) == (None, True, 0.1, None)
    assert cfg.optimizer is None and cfg.sampler is None and cfg.verify_chunk == 2**18
    assert cfg.eta() == pytest.approx(1.0)
    assert YieldOptConfig(dual_lr=0.3).eta() == 0.3


def test_frozen_and_replace_checks_again():
    cfg = YieldOptConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 5  # type: ignore[misc]
    assert cfg.replace(steps=7).steps == 7 and cfg.steps == 300
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        cfg.replace(steps=0)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        dataclasses.replace(cfg, steps=-1)
    with pytest.raises(TypeError, match=r"unknown optimiser setting\(s\) \['stepz'\]"):
        cfg.replace(stepz=3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"steps": 2.0}, "steps must be an int >= 1"),
        ({"steps": True}, "steps must be an int >= 1"),
        ({"n_per_step": 1}, "n_per_step must be an int >= 2"),
        ({"method": "pathwise"}, "method must be one of"),
        ({"combine": "max"}, "combine must be one of"),
        ({"multiplier": "newton"}, "multiplier must be 'ls' or 'dual'"),
        ({"tau_rel": 0.0}, "tau_rel must be a positive float"),
        ({"tau_rel": float("inf")}, "tau_rel must be a positive float"),
        ({"penalty": -1.0}, "penalty must be > 0"),
        ({"multiplier_ema": 0.0}, r"multiplier_ema must be in \(0, 1\]"),
        ({"multiplier_ema": 1.5}, r"multiplier_ema must be in \(0, 1\]"),
        ({"dual_lr": -0.1}, "dual_lr must be >= 0"),
        ({"defensive": 1.0}, r"defensive must be in \[0, 1\)"),
        ({"defensive": float("nan")}, r"defensive must be in \[0, 1\)"),
        ({"importance": "yes"}, "importance must be a bool"),
        ({"tau": -1.0}, "tau must be a positive finite scalar"),
        ({"optimizer": "adam"}, "optimizer must be an optax GradientTransformation"),
        ({"sampler": 3}, "sampler must be callable"),
        ({"bounds": [(0, 1)]}, "bounds must be None or a dict"),
        ({"verify_chunk": 0}, "verify_chunk must be an int >= 1"),
    ],
)
def test_bad_setting_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        YieldOptConfig(**kwargs)


def test_numpy_and_jax_scalars_accepted():
    cfg = YieldOptConfig(
        steps=np.int64(5),
        n_per_step=jnp.asarray(256),
        penalty=np.float32(4.0),
        tau_rel=np.float64(0.1),
        importance=np.bool_(False),
    )
    assert type(cfg.steps) is int and cfg.steps == 5
    assert type(cfg.n_per_step) is int and cfg.n_per_step == 256
    assert type(cfg.penalty) is float and cfg.penalty == 4.0
    assert cfg.importance is False


def test_keyword_overrides_equal_config():
    """Old-style keyword arguments are fields of the config applied by replace."""
    common = dict(cost=cost, target_yield=0.9, key=jax.random.key(2), free="std", n_verify=4096)
    a = reach_yield(linear, P0, steps=6, n_per_step=512, multiplier="dual", method="lr", **common)
    cfg = YieldOptConfig(steps=6, n_per_step=512, multiplier="dual", method="lr")
    b = reach_yield(linear, P0, config=cfg, **common)
    # overrides win over the config's fields
    c = reach_yield(
        linear,
        P0,
        config=YieldOptConfig(steps=99, n_per_step=512, method="lr"),
        steps=6,
        multiplier="dual",
        **common,
    )
    for r in (b, c):
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], r.history[k])
        np.testing.assert_array_equal(a.params["std"], r.params["std"])
        assert a.verification == r.verification


def test_config_of_another_type_and_unknown_override():
    with pytest.raises(TypeError, match="config must be a YieldOptConfig"):
        make_yield_step(
            linear, P0, cost=cost, target_yield=0.9, key=jax.random.key(0), config={"steps": 3}
        )
    with pytest.raises(TypeError, match="unknown optimiser setting"):
        reach_yield(linear, P0, cost=cost, target_yield=0.9, key=jax.random.key(0), n_step=3)


def test_custom_optimizer_accepted():
    cfg = YieldOptConfig(optimizer=optax.sgd(1e-3), steps=2, n_per_step=256, method="lr")
    st = make_yield_step(
        linear, P0, cost=cost, target_yield=0.9, key=jax.random.key(0), free="std", config=cfg
    )
    _, info = st.step(st.state, jnp.asarray(0, jnp.int32))
    assert np.isfinite(float(info.beta))
