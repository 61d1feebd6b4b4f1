"""`cpojax breakeven` and cpojax.cost.analyse_breakeven: JSON keys, nulls with reasons,
the yield entering the cost, the engine power from the physics, CLI conventions."""

import json
import math
from types import SimpleNamespace

import pytest

from cpojax import cost as C
from cpojax.cli import main
from cpojax.levels import LevelYield
from cpojax.scenario import Scenario


@pytest.fixture(scope="module")
def sc():
    return Scenario.default()


@pytest.fixture(scope="module")
def given(sc):
    """A report at a given engine yield (no yield simulation; the power still runs)."""
    return C.analyse_breakeven(sc, engine_yield=0.9, power_engines=512)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keys_of_the_issue(given):
    d = json.loads(json.dumps(given.to_dict()))
    assert d["engine_yield"] == 0.9 and d["engine_yield_ci"] == [0.9, 0.9]
    for path in (
        "cpo.cost_per_good_switch_usd",
        "pluggable.cost_per_switch_usd",
        "breakeven.engine_yield_capex",
        "breakeven.engine_yield_tco",
    ):
        node = d
        for part in path.split("."):
            node = node[part]
        assert isinstance(node, float), path
    assert d["breakeven"]["engine_yield_capex_reason"] is None
    assert d["cpo"]["cost_per_good_switch_usd"] == pytest.approx(
        float(
            C.cpo_capex_usd(engine_yield=0.9, cost=Scenario.default().cost, engines_per_switch=72)
        )
    )
    assert d["capacity_tbps"] == 115.2
    assert d["cpo"]["cost_per_tbps_usd"] == pytest.approx(
        d["cpo"]["cost_per_good_switch_usd"] / 115.2
    )
    assert d["other_policy"]["failure_policy"] == "rework"
    assert d["assumptions"] and all(isinstance(a, str) for a in d["assumptions"])
    assert d["cost_parameters"]["failure_policy"] == "scrap"
    assert len(d["curves"]["engine_yield"]) == len(d["curves"]["cpo_capex_usd"])


def test_breakeven_consistent_with_the_position(given):
    d = given.to_dict()
    b = d["breakeven"]["engine_yield_capex"]
    assert b > 0.9  # the default scrap flow needs ≈ 0.94
    assert "below the capital breakeven" in d["breakeven"]["position_capex"]
    assert d["breakeven"]["cpo_saving_capex_usd"] < 0
    # the TCO breakeven is lower: CPO saves energy
    assert d["breakeven"]["engine_yield_tco"] < b


def test_no_crossing_is_null_with_a_reason(sc):
    cheap = sc.replace({"cost.pluggable_module_usd": 100.0})
    d = C.analyse_breakeven(cheap, engine_yield=0.95, power_engines=512).to_dict()
    be = d["breakeven"]
    assert be["engine_yield_capex"] is None and be["engine_yield_tco"] is None
    assert "even at engine yield 1" in be["engine_yield_capex_reason"]
    assert "no breakeven" in be["position_capex"]
    json.dumps(d, allow_nan=False)


def test_power_from_the_physics(sc, given):
    """Engine power = mean over engines of Σ_lanes mean_corners(lane power)."""
    p = given.power
    # 8 lanes × (driver 150 + TIA 120 + 3 pJ/bit · 200 Gb/s) mW = 6.96 W without laser and heater
    assert 7.0 < p.mean_w < 9.0
    assert p.se_w < 0.01 * p.mean_w
    more = C.engine_power_w(sc.replace({"design.power.driver_mw": 250.0}), n_engines=512)
    assert more.mean_w - p.mean_w == pytest.approx(8 * 0.1, rel=1e-5)


def test_yield_entering_the_cost_multiplies_a_functional_factor():
    par = LevelYield(0.9, 0.89, 0.91)
    y, what = C.cost_engine_yield(SimpleNamespace(engine=par))
    assert y == par and "parametric" in what and C.functional_factor(SimpleNamespace()) is None
    for fun in (
        LevelYield(0.5, 0.4, 0.6),
        (0.5, 0.4, 0.6),
        SimpleNamespace(engine=(0.5, 0.4, 0.6)),
        {"engine": {"yield": 0.5, "ci": [0.4, 0.6]}},
    ):
        y, what = C.cost_engine_yield(SimpleNamespace(engine=par, functional=fun))
        assert y == pytest.approx((0.45, 0.356, 0.546)) and "functional" in what
    y, _ = C.cost_engine_yield(SimpleNamespace(engine=par, functional=0.5))
    assert y == pytest.approx((0.45, 0.445, 0.455))
    # the yield engine's form: factors and their product, empty when switched off
    factors = {"pic": 0.9, "eic": 0.99, "engine": 0.5}
    y, what = C.cost_engine_yield(SimpleNamespace(engine=par, functional=factors))
    assert y == pytest.approx((0.45, 0.445, 0.455)) and "functional" in what
    for off in ({}, None):
        y, what = C.cost_engine_yield(SimpleNamespace(engine=par, functional=off))
        assert y == par and "no functional" in what


def test_analyse_arguments(sc):
    with pytest.raises(ValueError, match=r"engine_yield must be a number in \(0, 1\]"):
        C.analyse_breakeven(sc, engine_yield=1.5)
    with pytest.raises(TypeError, match="scenario must be a cpojax Scenario"):
        C.analyse_breakeven({}, engine_yield=0.9)
    with pytest.raises(ValueError, match="n_engines"):
        C.analyse_breakeven(sc, n_engines=0)


def test_cli_json(capsys):
    code, out, err = _run(capsys, "breakeven", "--engine-yield", "0.97", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["engine_yield"] == 0.97
    assert d["cpo"]["cost_per_good_switch_usd"] < d["pluggable"]["cost_per_switch_usd"]
    assert "above the capital breakeven" in d["breakeven"]["position_capex"]


def test_cli_text_lists_breakeven_position_and_assumptions(capsys):
    code, out, _ = _run(capsys, "breakeven", "--engine-yield", "0.9", "--set", "cost.pue=1.1")
    assert code == 0
    assert "breakeven engine yield: capital 0.94" in out
    assert "scenario: below the capital breakeven" in out
    assert "assumptions:" in out and "PUE 1.1" in out
    assert "per Tb/s" in out and "with failure policy rework instead" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--engine-yield", "1.5"], "--engine-yield"),
        (["--engine-yield", "0"], "--engine-yield"),
        (["--engine-yield", "nan"], "--engine-yield"),
        (["--engines", "0"], "--engines"),
        (["--seed", "-1"], "--seed"),
        (["--set", "cost.test_coverage=1.2"], "cost.test_coverage"),
        (["--set", "cost.failure_policy=burn"], "cost.failure_policy"),
        (["--set", "cost.attach_yield=0"], "cost.attach_yield"),
        (["--compare", "/nonexistent.toml"], "/nonexistent.toml"),
        (["--force"], "--force needs --out"),
    ],
)
def test_cli_bad_input_exit_2_naming_it(capsys, argv, needle):
    code, _, err = _run(capsys, "breakeven", "--engine-yield", "0.9", *argv)
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_cli_out_writes_json_and_figure(tmp_path, capsys, sc):
    cmp = tmp_path / "other.toml"
    sc.replace({"design.ring.heater_max_mw": 110.0}).save(cmp)
    out = tmp_path / "run"
    code, stdout, err = _run(
        capsys,
        "breakeven",
        "--engines",
        "4096",
        "--compare",
        str(cmp),
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, err
    d = json.loads((out / "breakeven.json").read_text())
    assert (out / "breakeven.png").stat().st_size > 10_000
    assert d["compare"]["label"] == "other.toml"
    assert 0 < d["engine_yield_ci"][0] <= d["engine_yield"] <= d["engine_yield_ci"][1] < 1
    lo, hi = d["cpo"]["cost_per_good_switch_ci_usd"]
    assert lo <= d["cpo"]["cost_per_good_switch_usd"] <= hi
    parts = d["engine_yield_parts"]
    f = 1.0 if parts["functional"] is None else parts["functional"]["yield"]
    assert parts["parametric"]["yield"] * f == pytest.approx(d["engine_yield"], rel=1e-15)
    assert "other.toml" in stdout
    # the same engines (seed) for both: more heater range locks red-edge lanes too
    assert d["compare"]["engine_yield"] > d["engine_yield"]
    assert not math.isnan(d["compare"]["cpo"]["cost_per_good_switch_usd"])
