"""Sweeps (cpojax.sweep): grids, the tidy table, one compilation, device invariance, resume.

Compilation dominates these tests, so they share a few shapes: grids over
HEATER × WAFER with point_chunk=4 and one device, except where the device count is
the point of the test. Every sweep uses one or two blocks of 4096 engines.
"""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np
import pytest

from cpojax import rng
from cpojax.estimators import streaming
from cpojax.estimators.result import InvalidModelOutput
from cpojax.model import LIMIT_NAMES, legacy_scenario
from cpojax.outputs import OutputError, strict_json
from cpojax.scenario import Scenario, ScenarioError
from cpojax.sweep import SweepTable, figure_name, figures, make_grid, sweep
from cpojax.sweep import folder as sweep_folder
from cpojax.sweep import run as sweep_run
from cpojax.sweep import table as sweep_table
from cpojax.yields import estimate_yield

HEATER = "design.ring.heater_max_mw"
WAFER = "spread.ring_resonance_nm.wafer"
GRID = {HEATER: [35.0, 45.0, 60.0, 80.0], WAFER: [0.3, 0.9]}  # 8 points: 2 chunks of 4
KW = {"n_engines": 2 * rng.BLOCK, "point_chunk": 4, "devices": 1, "seed": 3}


@pytest.fixture(autouse=True)
def _strict_rank():
    with jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture(scope="module")
def base_table() -> SweepTable:
    with jax.numpy_rank_promotion("raise"):
        return sweep(Scenario.default(), GRID, **KW)


def _rows(t: SweepTable):
    return t.to_dict()["rows"]


# --------------------------------------------------------------------------- the table
def test_table_rows_columns_and_counts(base_table):
    t = base_table
    assert len(t) == 8
    assert [r[HEATER] for r in t.rows()] == [35.0, 35.0, 45.0, 45.0, 60.0, 60.0, 80.0, 80.0]
    assert [r[WAFER] for r in t.rows()[:2]] == [0.3, 0.9]  # first key outermost
    cols = t.columns()
    for level in ("lane", "engine", "switch"):
        y, lo, hi = (cols[f"{level}_{s}"] for s in ("yield", "lo", "hi"))
        assert np.all(lo <= y) and np.all(y <= hi), level
    assert {f"mode_{n}" for n in LIMIT_NAMES} <= set(cols)
    assert np.all(cols["n_engines"] == 2 * rng.BLOCK) and np.all(cols["n_lanes"] == 16 * rng.BLOCK)
    fails = cols["lane_fail"] > 0
    share = sum(cols[f"mode_{n}"] for n in LIMIT_NAMES)
    assert np.all(share[fails] >= 1 - 1e-12)  # a failing lane fails at least one state
    # more heater budget never hurts (same engines at every point: exactly monotone)
    y = cols["engine_yield"].reshape(4, 2)
    assert np.all(np.diff(y, axis=0) >= 0), y
    # a point's counts are what estimate_yield counts for that scenario
    sc = Scenario.default().replace({HEATER: 45.0, WAFER: 0.9})
    ref = estimate_yield(sc, seed=3, n_engines=2 * rng.BLOCK)
    r = t.rows()[3]
    assert abs(r["engine_fail"] - ref.counts["engine_fail"]) <= 1
    assert abs(r["lane_fail"] - ref.counts["lane_fail"]) <= 2
    assert t.meta["seed"] == 3 and t.meta["n_engines"] == 2 * rng.BLOCK
    assert t.meta["versions"]["jax"] == jax.__version__


def test_functional_yield_columns_match_estimate_yield(base_table):
    """Parametric × functional yield, as estimate_yield reports it; a swept functional key."""
    sc = Scenario.default()
    cols = base_table.columns()
    if not sc.system.functional_yield:
        assert "engine_total_yield" not in cols
        return
    ref = estimate_yield(sc.replace({HEATER: 45.0, WAFER: 0.9}), seed=3, n_engines=2 * rng.BLOCK)
    r = base_table.rows()[3]
    assert r["functional_engine"] == ref.functional["engine"]
    assert math.isclose(r["engine_total_yield"], r["engine_yield"] * r["functional_engine"])
    assert r["switch_total_hi"] == pytest.approx(r["engine_total_hi"] ** 72, rel=1e-12)
    key = "functional.stack_yield"
    t = sweep(sc, {key: [0.9, 0.99]}, n_engines=rng.BLOCK, devices=1)
    f = t.columns()["functional_engine"]
    assert f[1] / f[0] == pytest.approx(0.99 / 0.9)
    assert t.rows()[0]["engine_yield"] == t.rows()[1]["engine_yield"]  # parametric: unchanged


def test_to_dict_csv_and_json_are_consistent(base_table):
    d = json.loads(strict_json(base_table.to_dict()))
    assert d["grid"] == {
        "keys": [HEATER, WAFER],
        "values": [GRID[HEATER], GRID[WAFER]],
        "zip": False,
    }
    assert d["columns"] == base_table.column_names and len(d["rows"]) == 8
    assert "scenario" in d["meta"] and d["meta"]["point_chunk"] == 4
    lines = base_table.to_csv().splitlines()
    assert lines[0].split(",") == base_table.column_names and len(lines) == 9
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert float(first["engine_yield"]) == base_table.rows()[0]["engine_yield"]  # full precision
    assert len(d["counts"]["nfail_hist"][0]) == 9


def test_pandas_and_xarray_conversions(base_table):
    pd = pytest.importorskip("pandas")
    xr = pytest.importorskip("xarray")
    df = base_table.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 8
    ds = base_table.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["engine_yield"].dims == (HEATER, WAFER)
    assert (
        float(ds["engine_yield"].sel({HEATER: 45.0, WAFER: 0.9}))
        == base_table.rows()[3]["engine_yield"]
    )


def test_conversions_without_the_libraries_say_what_to_install(base_table, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *a, **k):
        if name in ("pandas", "xarray"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas"):
        base_table.to_pandas()
    with pytest.raises(ImportError, match="pip install xarray"):
        base_table.to_xarray()


# --------------------------------------------------------------------------- compile once, any devices
def test_one_compilation_for_the_whole_sweep(base_table):
    """A larger sweep with other values reuses the compiled item function: no compilation."""
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        big = {HEATER: list(np.linspace(32.0, 90.0, 9)), WAFER: [0.25, 0.5, 1.1]}  # 27 points
        t = sweep(Scenario.default().replace({"design.ring.bias_nm": 6.1}), big, **KW)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(t) == 27
    assert compiles == [], f"{len(compiles)} compilations in a warm sweep"
    fn = sweep_run._item_fn("float32", "threefry", (HEATER, WAFER))
    mesh = streaming.item_mesh(jax.devices()[:1])
    assert streaming._items_function(fn, mesh)._cache_size() == 1


def test_identical_on_one_and_four_devices(base_table):
    for d in (4, None):
        t = sweep(Scenario.default(), GRID, **{**KW, "devices": d})
        assert _rows(t) == _rows(base_table), d
    assert t.meta["run"]["n_devices"] == 4  # 2 chunks × 2 blocks: every device busy


@pytest.mark.slow
def test_more_items_per_call_change_nothing(base_table):
    t = sweep(Scenario.default(), GRID, **KW, items_per_device=3)
    assert _rows(t) == _rows(base_table)


# --------------------------------------------------------------------------- structure
def test_structural_keys_group_points():
    sc = legacy_scenario()  # heater 40-60 mW is the informative range of the former model
    grid = {"system.spare_lanes": [0, 1], HEATER: [40.0, 60.0]}
    t = sweep(sc, grid, n_engines=rng.BLOCK, devices=1, seed=1)
    assert t.grid.structural == ("system.spare_lanes",)
    assert t.meta["run"]["groups"] == 2
    one = sweep(sc.replace({"system.spare_lanes": 1}), {HEATER: [40.0, 60.0]}, n_engines=rng.BLOCK,
                devices=1, seed=1)  # fmt: skip
    rows = _rows(t)
    for r, o in zip(rows[2:], _rows(one), strict=True):
        assert {k: v for k, v in r.items() if k != "system.spare_lanes"} == o
        assert r["system.spare_lanes"] == 1
    # a spare lane repairs engines: same lane failures, fewer engine failures
    assert rows[2]["lane_fail"] == rows[0]["lane_fail"]
    assert rows[2]["engine_fail"] < rows[0]["engine_fail"]
    with pytest.raises(ScenarioError, match="structural"):
        sweep(sc, grid, n_engines=rng.BLOCK, structural="reject")


def test_zipped_grid():
    t = sweep(Scenario.default(), {HEATER: [35.0, 45.0, 60.0, 80.0], WAFER: [0.3, 0.9, 0.3, 0.9]},
              zip=True, **KW)  # fmt: skip
    assert t.grid.shape == (4,) and len(t) == 4
    assert [(r[HEATER], r[WAFER]) for r in t.rows()] == [
        (35.0, 0.3),
        (45.0, 0.9),
        (60.0, 0.3),
        (80.0, 0.9),
    ]
    xr = pytest.importorskip("xarray")
    ds = t.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["engine_yield"].dims == ("point",)


# --------------------------------------------------------------------------- bad grids
@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ({"design.ring.heater_max": [40.0]}, "did you mean design.ring.heater_max_mw"),
        ({HEATER: []}, HEATER),
        ({HEATER: ["a", 40.0]}, HEATER),
        ({HEATER: "40"}, HEATER),
        ({HEATER: [40.0, -5.0]}, HEATER),
        ({HEATER: [float("nan")]}, HEATER),
        ({"system.modulation": [1, 2]}, "system.modulation"),
        ({}, "non-empty"),
        (
            {"window.engine_temp_min_c": [0.0, 90.0], "window.engine_temp_max_c": [80.0]},
            "grid point 1",
        ),
    ],
)
def test_bad_grids_name_the_key(grid, needle):
    with pytest.raises(ScenarioError, match=needle.replace(".", r"\.")):
        make_grid(Scenario.default(), grid)


def test_zip_needs_equal_lengths():
    with pytest.raises(ScenarioError, match="as many values"):
        make_grid(Scenario.default(), {HEATER: [40.0, 50.0], WAFER: [0.3]}, zip=True)


def test_bad_arguments():
    sc = Scenario.default()
    for kwargs, needle in (
        ({"level": "die"}, "level"),
        ({"method": "form"}, "mc"),
        ({"n_engines": 0}, "n_engines"),
        ({"point_chunk": 0}, "point_chunk"),
        ({"target_yield": 1.0}, "target_yield"),
        ({"devices": 99}, "devices"),
        ({"resume": True}, "out"),
        ({"progress": 3}, "progress"),
    ):
        with pytest.raises((ValueError, TypeError), match=needle):
            sweep(sc, {HEATER: [40.0]}, **kwargs)


def test_invalid_model_output_names_the_point(monkeypatch):
    real = sweep_run.model.engine_g

    def broken(sc, u, dtype):
        g = real(sc, u, dtype)
        return jax.numpy.where(sc.design.ring.bias_nm > 6.2, jax.numpy.nan, g)

    monkeypatch.setattr(sweep_run.model, "engine_g", broken)
    sweep_run._item_fn.cache_clear()
    try:
        with pytest.raises(InvalidModelOutput, match=r"design\.ring\.bias_nm = 6\.5"):
            sweep(
                Scenario.default(),
                {"design.ring.bias_nm": [6.0, 6.5]},
                n_engines=rng.BLOCK,
                devices=1,
            )
    finally:
        sweep_run._item_fn.cache_clear()


# --------------------------------------------------------------------------- run folder
class _Crash(Exception):
    pass


def _crash_after(n_points):
    def progress(p):
        if p.points_done >= n_points:
            raise _Crash

    return progress


def test_interrupted_sweep_resumes_to_the_identical_table(tmp_path, base_table):
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        sweep(Scenario.default(), GRID, **KW, out=out, progress=_crash_after(4))
    parts = sorted(os.listdir(out / "points"))
    assert parts == ["g0000-c0000000.json"]  # the first chunk of 4 points, nothing else
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] is False and state["state"]["record"]["seed"] == 3
    with pytest.raises(OutputError, match="unfinished"):  # no silent restart
        sweep(Scenario.default(), GRID, **KW, out=out)
    seen = []
    t = sweep(Scenario.default(), GRID, **KW, out=out, resume=True, progress=seen.append)
    assert _rows(t) == _rows(base_table)
    assert t.meta["points_resumed"] == 4
    assert seen[-1].items_total == 2  # only the second chunk (× 2 blocks) was computed
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["rows"] == _rows(base_table)
    assert json.loads((out / "state.json").read_text())["finished"] is True
    assert (out / "sweep.csv").exists() and (out / "scenario.toml").exists()
    assert (out / "sweep_heatmap.png").exists()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"scenario": Scenario.default().replace({"design.ring.bias_nm": 6.3})}, "scenario"),
        ({"grid": {HEATER: [35.0, 45.0], WAFER: [0.3, 0.9]}}, "grid"),
        ({"seed": 4}, "seed"),
        ({"n_engines": 3 * rng.BLOCK}, "engines"),
        ({"point_chunk": 2}, "numerics"),
    ],
)
def test_resume_refuses_another_sweep(tmp_path, change, needle):
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        sweep(Scenario.default(), GRID, **KW, out=out, progress=_crash_after(4))
    args = {"scenario": Scenario.default(), "grid": GRID, **KW, **change}
    with pytest.raises(OutputError, match=needle):
        sweep(args.pop("scenario"), args.pop("grid"), **args, out=out, resume=True)
    assert sorted(os.listdir(out / "points")) == ["g0000-c0000000.json"]  # untouched


def test_resume_refuses_another_version(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        sweep(Scenario.default(), GRID, **KW, out=out, progress=_crash_after(4))
    monkeypatch.setattr(
        sweep_folder, "versions", lambda: {"cpojax": "9.9", "jax": "0.0", "jaxlib": "0.0"}
    )
    with pytest.raises(OutputError, match="version"):
        sweep(Scenario.default(), GRID, **KW, out=out, resume=True)


def test_a_torn_part_file_is_recomputed(tmp_path, base_table):
    out = tmp_path / "run"
    sweep(Scenario.default(), GRID, **KW, out=out)
    (out / "points" / "g0000-c0000001.json").write_text('{"fingerprint": "')  # torn
    (out / "points" / ".tmp-0123-g0000-c0000000.json").write_text("x")  # crash leftover
    state = json.loads((out / "state.json").read_text())
    state["finished"] = False
    (out / "state.json").write_text(json.dumps(state))
    t = sweep(Scenario.default(), GRID, **KW, out=out, resume=True)
    assert _rows(t) == _rows(base_table) and t.meta["points_resumed"] == 4
    assert not any(n.startswith(".tmp-") for n in os.listdir(out / "points"))


# --------------------------------------------------------------------------- figures
def _fake(grid: dict, zip_: bool = False) -> SweepTable:
    g = make_grid(Scenario.default(), grid, zip=zip_)
    n = len(g.points)
    rng_ = np.random.default_rng(0)
    width = 3 + len(LIMIT_NAMES) + 9
    rows = np.zeros((n, width), np.int64)
    rows[:, 1] = rng_.integers(0, 4096, n)
    rows[:, 0] = rows[:, 1] * 2
    rows[:, 3] = rows[:, 0]
    rows[:, 3 + len(LIMIT_NAMES)] = 4096 - rows[:, 1]
    rows[:, 3 + len(LIMIT_NAMES) + 2] = rows[:, 1]
    info = [sweep_table.PointInfo(8, 72, 4096, None)] * n
    return sweep_table.build_table(g, "engine", rows, info, {})


def test_figures_for_one_two_and_three_keys():
    from matplotlib.figure import Figure

    one = _fake({HEATER: [30.0, 50.0, 80.0]})
    two = _fake({HEATER: [30.0, 50.0, 80.0], WAFER: [0.2, 0.6]})
    three = _fake(
        {HEATER: [30.0, 80.0], WAFER: [0.2, 0.6], "window.engine_temp_max_c": [70.0, 80.0, 90.0]}
    )
    flat = _fake({HEATER: [30.0, 50.0], WAFER: [0.2]})  # a single-value key does not count
    zipped = _fake({HEATER: [30.0, 50.0], WAFER: [0.2, 0.4]}, zip_=True)
    four = _fake({HEATER: [30.0, 80.0], WAFER: [0.2, 0.6], "window.engine_temp_max_c": [70.0, 80.0],
                  "design.ring.bias_nm": [6.0, 6.2]})  # fmt: skip
    expect = [(one, "sweep_curves.png"), (two, "sweep_heatmap.png"), (three, "sweep_multiples.png"),
              (flat, "sweep_curves.png"), (zipped, "sweep_curves.png"), (four, None)]  # fmt: skip
    for t, name in expect:
        assert figure_name(t.grid) == name
        figs = figures(t, 0.5)
        assert list(figs) == ([name] if name else [])
        assert all(isinstance(f, Figure) for f in figs.values())


def test_yield_curve_is_the_sweep():
    from cpojax.sweep import yield_curve

    c = yield_curve(Scenario.default(), HEATER, [40.0, 60.0], seed=2, n_engines=rng.BLOCK)
    t = sweep(Scenario.default(), {HEATER: [40.0, 60.0]}, seed=2, n_engines=rng.BLOCK)
    assert c["engine"]["yield"] == t.columns()["engine_yield"].tolist()
    assert c["lane"]["ci"] == [
        [a, b] for a, b in zip(t.data["lane_lo"], t.data["lane_hi"], strict=True)
    ]
    assert math.isclose(c["switch"]["yield"][1], t.rows()[1]["switch_yield"])
