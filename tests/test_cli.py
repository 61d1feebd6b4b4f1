"""The `cpojax` command, called in-process (`cpojax.cli.main`) and once as a console script.

Exit codes: 0 success / PASS, 1 the lane FAILS (`link`), 2 bad input, 3 NaN/inf from the
model, 4 internal error, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jax
import pytest

from cpojax.cli import main
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield

LIMIT_STATES = {"optical", "thermal", "modulator", "power"}
FIGURES = {"margin_hist.png", "heater_hist.png", "yield_vs_lanes.png", "failure_pareto.png"}
# numbers of yield.json that must not depend on how the run was split
TIMING_KEYS = {"wall_s", "lane_samples_per_s"}


@pytest.fixture(autouse=True)
def _no_persistent_cache(monkeypatch):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")


@pytest.fixture
def allow_rank_promotion():
    """Strict rank promotion, explicitly (variation.py once broadcast implicitly)."""
    with jax.numpy_rank_promotion("raise"):
        yield


def _untimed(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMING_KEYS}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- link
def test_link_table_passes(capsys):
    code, out, _ = _run(capsys, "link")
    assert code == 0
    verdicts = [ln.split()[0] for ln in out.splitlines() if ln.strip().startswith(("PASS", "FAIL"))]
    assert verdicts == ["PASS"] * 4, out
    for name in LIMIT_STATES:
        assert f"PASS  {name}" in out
    assert "lane: PASS" in out
    assert "optical margin" in out and "energy per bit" in out


def test_link_json(capsys):
    code, out, _ = _run(capsys, "link", "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep["pass"] is True
    assert set(rep["limit_states"]) == LIMIT_STATES
    assert len(rep["corners"]) == 4
    temps = {(c["engine_temp_c"], c["laser_temp_c"]) for c in rep["corners"]}
    assert temps == set(Scenario.default().corners())


def test_link_small_chip_mode_fails_optical(capsys):
    code, out, _ = _run(capsys, "link", "--set", "design.coupler.chip_mfd_um=3", "--json")
    assert code == 1
    rep = json.loads(out)
    assert rep["pass"] is False
    assert rep["limit_states"]["optical"] < 0
    # the table mode reports the same verdict
    code, out, _ = _run(capsys, "link", "--set", "design.coupler.chip_mfd_um=3")
    assert code == 1
    assert "FAIL  optical" in out and "lane: FAIL" in out


def test_link_unknown_key(capsys):
    code, out, err = _run(capsys, "link", "--set", "design.ring.nonexistent=1")
    assert code == 2
    assert "design.ring.nonexistent" in err
    assert out == ""


def test_link_out_of_range_value(capsys):
    code, _, err = _run(capsys, "link", "--set", "spread.fiber_offset_um.die=-1")
    assert code == 2
    assert "spread.fiber_offset_um.die" in err
    assert "allowed [0, " in err


def test_malformed_toml_config(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[design.ring\nbias_nm = \n", encoding="utf-8")
    code, _, err = _run(capsys, "link", "--config", str(bad))
    assert code == 2
    assert "malformed TOML" in err and "bad.toml" in err
    code, _, err = _run(capsys, "link", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err


def test_scenario_round_trips(capsys):
    code, out, _ = _run(capsys, "scenario")
    assert code == 0
    assert Scenario.from_toml(out) == Scenario.default()
    code, out, _ = _run(capsys, "scenario", "--set", "design.ring.bias_nm=5.5")
    assert Scenario.from_toml(out) == Scenario.default().replace({"design.ring.bias_nm": 5.5})


def test_config_with_a_subset_of_keys(capsys, tmp_path):
    cfg = tmp_path / "sub.toml"
    cfg.write_text("[design.ring]\nbias_nm = 5.5\n\n[window]\nengine_temp_max_c = 80.0\n")
    code, out, _ = _run(capsys, "scenario", "--config", str(cfg))
    assert code == 0
    want = Scenario.default().replace(
        {"design.ring.bias_nm": 5.5, "window.engine_temp_max_c": 80.0}
    )
    assert Scenario.from_toml(out) == want
    code, out, _ = _run(capsys, "link", "--config", str(cfg), "--json")
    assert code in (0, 1)
    rep = json.loads(out)
    _, ref, _ = _run(capsys, "link", "--json")
    assert rep["heater_worst_mw"] != json.loads(ref)["heater_worst_mw"]
    assert max(c["engine_temp_c"] for c in rep["corners"]) == 80.0
    # --set overrides the file
    code, out, _ = _run(capsys, "scenario", "--config", str(cfg), "--set", "design.ring.bias_nm=5")
    assert Scenario.from_toml(out).design.ring.bias_nm == 5.0


def test_console_script_link():
    exe = shutil.which("cpojax")
    assert exe is not None, "console script `cpojax` is not installed (pip install -e .)"
    env = {**os.environ, "CPOJAX_CACHE_DIR": "", "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    p = subprocess.run(
        [exe, "link"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert p.returncode == 0, p.stderr
    assert "lane: PASS" in p.stdout
    p = subprocess.run(
        [exe, "link", "--set", "design.ring.nonexistent=1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert p.returncode == 2 and "design.ring.nonexistent" in p.stderr


# --------------------------------------------------------------------------- yield
def test_yield_json(capsys, allow_rank_promotion):
    code, out, err = _run(capsys, "yield", "--engines", "4096", "--json")
    assert code == 0, err
    res = json.loads(out)  # progress goes to stderr, stdout is one JSON object
    for level in ("lane", "engine", "switch"):
        y, (lo, hi) = res[level]["yield"], res[level]["ci"]
        assert 0.0 <= lo <= y <= hi <= 1.0, level
    assert set(res["failure_modes"]) == LIMIT_STATES
    assert res["n_engines"] == 4096 and res["n_lanes"] == 4096 * 8
    assert res["seed"] == 0
    assert "yield [" in err  # the progress bar


def test_yield_out_files_and_resume(capsys, tmp_path, allow_rank_promotion):
    out_dir = tmp_path / "run"
    code, out, err = _run(capsys, "yield", "--engines", "8192", "--out", str(out_dir), "--quiet")
    assert code == 0, err
    assert "engine" in out and "wrote" in out and err == ""
    files = set(os.listdir(out_dir))
    assert files == {"yield.json", "scenario.toml", "state.json"} | FIGURES, files  # no temps
    for f in FIGURES:
        assert (out_dir / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Scenario.load(out_dir / "scenario.toml") == Scenario.default()
    full = json.loads((out_dir / "yield.json").read_text())
    assert full["n_engines"] == 8192

    # Interrupt: the state after block 1 of the same run (estimate_yield's checkpoint),
    # written as the CLI writes it. (Only rewriting next_block in the final state.json
    # would double-count block 1: its totals already include both blocks.)
    class Stop(Exception):
        pass

    saved = []

    def checkpoint(st):
        saved.append(json.loads(json.dumps(st)))
        raise Stop

    with pytest.raises(Stop):
        estimate_yield(Scenario.default(), seed=0, n_engines=8192, checkpoint=checkpoint)
    assert saved[0]["next_block"] == 1
    final_state = json.loads((out_dir / "state.json").read_text())
    assert final_state["state"]["next_block"] == 2
    assert final_state["finished"] is True
    (out_dir / "state.json").write_text(json.dumps({"finished": False, "state": saved[0]}))
    (out_dir / "yield.json").unlink()

    code, out, err = _run(
        capsys, "yield", "--engines", "8192", "--out", str(out_dir), "--resume", "--json"
    )
    assert code == 0, err
    resumed = json.loads((out_dir / "yield.json").read_text())
    assert json.loads(out) == resumed
    assert _untimed(resumed) == _untimed(full)
    assert set(os.listdir(out_dir)) == files

    # A checkpoint of another run (different seed) is refused.
    code, _, err = _run(
        capsys, "yield", "--engines", "8192", "--seed", "1", "--out", str(out_dir), "--resume"
    )
    assert code == 2 and "another run" in err


def test_yield_resume_needs_out(capsys, tmp_path):
    code, _, err = _run(capsys, "yield", "--engines", "4096", "--resume")
    assert code == 2 and "--out" in err
    code, _, err = _run(capsys, "yield", "--out", str(tmp_path / "empty"), "--resume")
    assert code == 2 and "state.json" in err
