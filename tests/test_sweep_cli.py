"""`cpojax sweep`: grid specs, exit codes, the run folder, and a sweep killed with SIGKILL.

The in-process runs reuse the shapes of tests/test_sweep.py (HEATER × WAFER, four
points per chunk, one device), so they compile nothing new when run together.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from cpojax import rng
from cpojax.cli import main
from cpojax.cli.sweep import parse_grid
from cpojax.scenario import Scenario
from cpojax.sweep import sweep

HEATER = "design.ring.heater_max_mw"
WAFER = "spread.ring_resonance_nm.wafer"
GRID_ARGS = ["--grid", f"{HEATER}=35,45,60,80", "--grid", f"{WAFER}=0.3,0.9"]
RUN_ARGS = ["--engines", "8192", "--point-chunk", "4", "--devices", "1", "--seed", "3", "--quiet"]


@pytest.fixture(autouse=True)
def _no_persistent_cache(monkeypatch):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")


@pytest.fixture(autouse=True)
def _strict_rank():
    with jax.numpy_rank_promotion("raise"):
        yield


def _run(capsys, *argv):
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- grid specs
def test_parse_grid_ranges_and_lists():
    g = parse_grid([f"{HEATER}=30:80:3", f"{WAFER}=0.2, 1.0", "system.spare_lanes=1"])
    assert g == {HEATER: [30.0, 55.0, 80.0], WAFER: [0.2, 1.0], "system.spare_lanes": [1.0]}
    assert parse_grid([f"{HEATER}=40:40:1"]) == {HEATER: [40.0]}
    assert parse_grid([f"{HEATER}=80:30:2"]) == {HEATER: [80.0, 30.0]}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (["design.ring.heater_max=30:80:5"], "did you mean design.ring.heater_max_mw"),
        ([f"{HEATER}="], "empty range"),
        ([f"{HEATER}=40:40:3"], "empty range"),
        ([f"{HEATER}=30:80:0"], "num must be >= 1"),
        ([f"{HEATER}=30:80:-2"], "num must be >= 1"),
        ([f"{HEATER}=30:80:2.5"], "num must be an integer"),
        ([f"{HEATER}=a,b"], "'a' is not a number"),
        ([f"{HEATER}=30:x:3"], "'x' is not a number"),
        ([f"{HEATER}=30,,40"], "'' is not a number"),
        ([f"{HEATER}=30,inf"], "not a finite number"),
        ([f"{HEATER}=30:80"], "start:stop:num"),
        ([HEATER], "KEY=start:stop:num"),
        ([f"{HEATER}=30,40", f"{HEATER}=50"], "given twice"),
        ([f"{HEATER}=-5,40"], "out of range"),
        (["system.modulation=1,2"], "not a numeric parameter"),
        ([f"{HEATER}=30,40", f"{WAFER}=0.2", "--zip"], "as many values"),
    ],
)
def test_bad_grid_specs_exit_2_naming_the_key_and_write_nothing(capsys, tmp_path, spec, needle):
    argv = []
    for s in spec:
        argv += [s] if s.startswith("--") else ["--grid", s]
    out = tmp_path / "never"
    code, stdout, err = _run(capsys, *argv, "--out", str(out), "--quiet")
    assert code == 2, err
    assert needle in err, err
    key = spec[0].split("=")[0]
    assert key in err, err
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()


def test_resume_needs_out_and_target_in_range(capsys):
    code, _, err = _run(capsys, *GRID_ARGS, "--resume")
    assert code == 2 and "--out" in err
    code, _, err = _run(capsys, *GRID_ARGS, "--target-yield", "1.5")
    assert code == 2 and "--target-yield" in err


# --------------------------------------------------------------------------- runs
def test_cli_sweep_writes_the_folder_and_matches_the_api(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, *GRID_ARGS, *RUN_ARGS, "--out", str(out), "--json")
    assert code == 0, err
    printed = json.loads(stdout)
    api = sweep(
        Scenario.default(),
        {HEATER: [35.0, 45.0, 60.0, 80.0], WAFER: [0.3, 0.9]},
        n_engines=2 * rng.BLOCK,
        point_chunk=4,
        devices=1,
        seed=3,
    )
    assert printed["rows"] == api.to_dict()["rows"]
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["rows"] == printed["rows"]
    meta = saved["meta"]
    assert meta["seed"] == 3 and meta["versions"]["jax"] == jax.__version__
    assert meta["run"]["n_devices"] == 1 and meta["run"]["process_count"] == 1
    assert Scenario.from_toml(meta["scenario"]) == Scenario.default()
    names = set(os.listdir(out))
    assert {"sweep.json", "sweep.csv", "scenario.toml", "sweep_heatmap.png", "points"} <= names
    assert len(os.listdir(out / "points")) == 2

    # the terminal table; a resume of a finished sweep rewrites the same table
    code, stdout, err = _run(capsys, *GRID_ARGS, *RUN_ARGS, "--out", str(out), "--resume")
    assert code == 0, err
    assert "8 points × 8192 engines" in stdout and "8 points resumed" in stdout
    assert HEATER in stdout and "engine 95 % interval" in stdout
    assert json.loads((out / "sweep.json").read_text())["rows"] == printed["rows"]

    # another scenario, grid or seed is refused on resume, naming what changed
    for extra, needle in (
        (["--set", "design.ring.bias_nm=6.3"], "scenario"),
        (["--seed", "4"], "seed"),
    ):
        argv = [*GRID_ARGS, *RUN_ARGS, *extra, "--out", str(out), "--resume"]
        code, _, err = _run(capsys, *argv)
        assert code == 2 and needle in err and "--resume refused" in err, err
        assert "Traceback" not in err
    code, _, err = _run(
        capsys, "--grid", f"{HEATER}=35,45", *RUN_ARGS, "--out", str(out), "--resume"
    )
    assert code == 2 and "grid" in err


def test_cli_curve_for_one_key(capsys, tmp_path):
    out = tmp_path / "curve"
    code, stdout, err = _run(
        capsys, "--grid", f"{HEATER}=35:80:4", "--engines", "4096", "--devices", "1", "--quiet",
        "--out", str(out), "--level", "switch",
    )  # fmt: skip
    assert code == 0, err
    assert "switch 95 % interval" in stdout and "sweep_curves.png" in stdout
    assert (out / "sweep_curves.png").exists()


# --------------------------------------------------------------------------- SIGKILL
def _cli(argv, env, **kw):
    code = "import sys; from cpojax.cli import console; sys.argv[0] = 'cpojax'; console()"
    return subprocess.Popen([sys.executable, "-c", code, "sweep", *argv], env=env, **kw)


def _finished(parts) -> list[str]:
    return [n for n in os.listdir(parts) if n.startswith("g") and n.endswith(".json")]


@pytest.mark.slow
def test_sigkill_mid_sweep_then_resume_gives_the_identical_table(tmp_path):
    env = {**os.environ, "CPOJAX_CACHE_DIR": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    argv = [
        "--grid", f"{HEATER}=32:80:6", "--grid", f"{WAFER}=0.2,0.6,1.0,1.4",  # 24 points
        "--engines", str(4 * rng.BLOCK), "--seed", "11", "--quiet", "--json",
    ]  # fmt: skip
    out = tmp_path / "run"
    proc = _cli([*argv, "--out", str(out)], env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = out / "points"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and _finished(parts):
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    finished = _finished(parts)  # a part being written at the kill is a .tmp- file
    assert 1 <= len(finished) < 3, finished
    assert json.loads((out / "state.json").read_text())["finished"] is False
    assert not (out / "sweep.json").exists()

    resumed = _cli([*argv, "--out", str(out), "--resume"], env, stdout=subprocess.PIPE)
    reference = _cli(argv, env, stdout=subprocess.PIPE)
    got, ref = (json.loads(p.communicate(timeout=600)[0]) for p in (resumed, reference))
    assert resumed.returncode == 0 and reference.returncode == 0
    assert got["meta"]["points_resumed"] == 8 * len(finished)
    assert got["rows"] == ref["rows"]
    assert json.loads((out / "sweep.json").read_text())["rows"] == ref["rows"]
