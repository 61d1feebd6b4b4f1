"""optimize_process at the API level: argument errors (issue 15, items 12–14) and names.

The argument checks run before any model is built, so these tests are fast; the
one end-to-end run is marked slow.
"""

import json
import math

import numpy as np
import pytest

from cpojax.levels import LevelYield
from cpojax.process_opt import ProcessOptResult, optimize_process
from cpojax.scenario import Scenario, ScenarioError

BIAS = "design.ring.bias_nm"
RING_DIE = "spread.ring_resonance_nm.die"


@pytest.fixture(scope="module")
def sc():
    return Scenario.default()


def _run(sc, **kw):
    args = {"target_yield": 0.95, "level": "lane", "free": [BIAS], "steps": 5}
    args.update(kw)
    return optimize_process(sc, **args)


def test_unknown_free_key_says_unknown_and_suggests(sc):
    with pytest.raises(ScenarioError, match=r"unknown parameter 'qqq\.zzz'") as err:
        _run(sc, free=["qqq.zzz"])
    assert "costs=" not in str(err.value)  # not a cost problem: no Python-only remedy
    with pytest.raises(ScenarioError, match=r"did you mean design\.ring\.bias_nm"):
        _run(sc, free=["design.ring.bias_nmm"])
    with pytest.raises(ScenarioError, match=r"unknown parameter 'qqq'"):
        _run(sc, free="qqq")  # a single key as a string


def test_section_or_structural_key_refused(sc):
    with pytest.raises(ScenarioError, match="section, not a value"):
        _run(sc, free=["design.ring"])
    with pytest.raises(ScenarioError, match="structural"):
        _run(
            sc,
            free=["system.lanes_per_engine"],
            costs={"system.lanes_per_engine": ("linear", 1.0)},
        )


def test_key_without_cost_model_says_how_to_add_one(sc):
    with pytest.raises(
        ScenarioError, match=r"no cost model for design\.receiver\.penalty_db"
    ) as err:
        _run(sc, free=["design.receiver.penalty_db"])
    msg = str(err.value)
    assert BIAS in msg and RING_DIE in msg  # the keys that have one
    assert "costs={'design.receiver.penalty_db'" in msg
    assert "command line" in msg


def test_duplicate_free_key_refused(sc):
    with pytest.raises(ValueError, match=r"design\.ring\.bias_nm more than once"):
        _run(sc, free=[BIAS, RING_DIE, BIAS])


@pytest.mark.parametrize("steps", [0, -3, 2.5, "3", None, True])
def test_steps_named(sc, steps):
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        _run(sc, steps=steps)


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.1, math.nan, "0.9", np.float64(1.0)])
def test_target_yield_named(sc, target):
    with pytest.raises(ValueError, match=r"target_yield must be in \(0, 1\)"):
        _run(sc, target_yield=target)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"level": "die"}, ValueError, "level must be lane, engine or switch"),
        ({"n_per_step": 0}, ValueError, "n_per_step must be an int"),
        ({"n_verify": 0}, ValueError, "n_verify must be an int"),
        ({"aim_margin": 1.0}, ValueError, r"aim_margin must be in \[0, 1\)"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"cosine_alpha": 2.0}, ValueError, r"cosine_alpha must be in \[0, 1\]"),
        ({"importance": "yes"}, ValueError, "importance must be True, False or None"),
        ({"free": []}, ValueError, "free must name at least one"),
        ({"costs": {BIAS: ("cubic", 1.0)}}, ValueError, r"cost kind for design\.ring\.bias_nm"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_other_arguments_named(sc, kw, exc, match):
    with pytest.raises(exc, match=match):
        _run(sc, **kw)


def test_scenario_type(sc):
    with pytest.raises(TypeError, match="scenario must be a cpojax Scenario"):
        optimize_process(sc.to_dict(), target_yield=0.95)


def test_numpy_scalars_pass_the_checks(sc):
    """NumPy numbers get past every numeric check (the free key then fails)."""
    with pytest.raises(ScenarioError, match="unknown parameter"):
        _run(
            sc,
            target_yield=np.float32(0.95),
            steps=np.int64(5),
            n_per_step=np.int32(1024),
            n_verify=np.int64(65_536),
            seed=np.uint32(3),
            aim_margin=np.float64(0.1),
            learning_rate=np.float32(0.05),
            free=["qqq.zzz"],
        )


@pytest.mark.slow
def test_numpy_scalars_give_the_python_result(sc):
    """End to end: NumPy arguments give the same JSON as Python ones; result names."""
    kw = {"level": "lane", "free": [RING_DIE, BIAS], "n_verify": 4096}
    a = optimize_process(sc, target_yield=0.95, steps=3, n_per_step=256, seed=1, **kw)
    b = optimize_process(
        sc,
        target_yield=np.float64(0.95),
        steps=np.int64(3),
        n_per_step=np.int32(256),
        seed=np.int64(1),
        **kw,
    )
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert isinstance(a, ProcessOptResult) and isinstance(a.verification, LevelYield)
    d = a.to_dict()
    assert d["verified_yield"] == a.verification.value
    assert d["verified_ci"] == [a.verification.lo, a.verification.hi]
    assert d["verified"] is a.reached and isinstance(d["verified"], bool)
    assert a.reached == (a.verification.lo >= 0.95)
    assert (a.verified, a.verified_yield, a.verified_ci) == (
        a.reached,
        a.verification.value,
        a.verification.ci,
    )
    assert list(d) == [
        "level",
        "target_yield",
        "rows",
        "cost_before",
        "cost_after",
        "verified_yield",
        "verified_ci",
        "verified",
        "n_verify",
        "n_compiles",
        "history",
    ]


# --------------------------------------------------------------------------- cost per good switch
COST = "cost-per-good-switch"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"objective": "money"}, "objective must be 'yield' or 'cost-per-good-switch'"),
        ({"objective": COST, "target_yield": 0.9}, "target_yield applies to objective 'yield'"),
        ({"objective": COST, "level": "lane"}, "level applies to objective 'yield' only"),
        ({"objective": COST, "aim_margin": 0.1}, "aim_margin and importance apply"),
        ({"objective": COST, "importance": True}, "aim_margin and importance apply"),
        ({"objective": COST, "steps": 0}, "steps must be an int >= 1"),
        ({"objective": COST, "free": ["qqq.zzz"]}, "unknown parameter"),
    ],
)
def test_cost_objective_arguments_named(sc, kw, match):
    with pytest.raises((ValueError, ScenarioError), match=match):
        optimize_process(sc, **{"free": [BIAS], **kw})


def test_yield_objective_still_needs_a_target(sc):
    with pytest.raises(ValueError, match=r"target_yield must be in \(0, 1\), got None"):
        optimize_process(sc, free=[BIAS])


def test_cli_objective_arguments(capsys):
    from cpojax.cli import main

    for argv, needle in (
        (["optimize"], "--target-yield is required"),
        (["optimize", "--objective", COST, "--target-yield", "0.9"], "--target-yield applies"),
        (["optimize", "--objective", COST, "--level", "switch"], "--level applies"),
        (["optimize", "--objective", COST, "--steps", "0"], "--steps"),
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, (argv, err)


@pytest.mark.slow
def test_cost_objective_lowers_the_cost_per_good_switch(sc):
    """End to end, short: the centring knobs alone (ring bias, heater) already lower the
    verified cost per good switch; the result is consistent with cpojax.cost."""
    from cpojax.cost import cpo_capex_usd

    res = optimize_process(
        sc,
        objective=COST,
        free=[BIAS, "design.ring.heater_max_mw", RING_DIE],
        steps=40,
        n_per_step=1024,
        n_verify=16_384,
        seed=2,
    )
    d = res.to_dict()
    assert d["objective"] == COST and d["target_yield"] is None
    sw = d["cost_per_good_switch"]
    b, a = sw["before"], sw["after"]
    assert a["usd"] < b["usd"] and res.reached == sw["lowered"] == d["verified"]
    assert a["engine_yield"]["yield"] > b["engine_yield"]["yield"]
    # the cost interval is the yield interval mapped through the monotone cost
    lo, hi = a["engine_yield"]["ci"]
    c = res.scenario.cost
    assert a["ci_usd"][0] == pytest.approx(
        float(cpo_capex_usd(engine_yield=hi, cost=c, engines_per_switch=72))
    )
    assert a["ci_usd"][1] == pytest.approx(
        float(cpo_capex_usd(engine_yield=lo, cost=c, engines_per_switch=72))
    )
    # the process cost change is carried into the optimized scenario's engine cost
    assert c.engine_usd == pytest.approx(450.0 + sw["process_usd_per_engine"])
    assert sw["process_usd_per_engine"] == pytest.approx(d["cost_after"] - d["cost_before"])
    assert a["engine_usd"] == c.engine_usd
    # saveable, and the history has one entry per step
    assert Scenario.from_toml(res.scenario.to_toml()) == res.scenario
    assert {len(v) for v in res.history.values()} == {40}
    assert res.n_compiles == 1
    json.dumps(d, allow_nan=False)
