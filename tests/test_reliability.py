"""Reproductions of the defects found by trying to break the CLI and the API (issue #15).

Each test reproduces one defect of the probe and checks the fix; CLI defects are
exercised through the installed console script where the defect lived in the
process itself (exit codes, Ctrl-C), in-process through ``cpojax.cli.main``
otherwise (same code, much faster).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import cli, outputs, variation
from cpojax.cli import main
from cpojax.counters import combine as _combine
from cpojax.counters import exact_sum as _exact_sum
from cpojax.estimators.result import InvalidModelOutput
from cpojax.outputs import OutputError, RunFolder
from cpojax.scenario import Scenario
from cpojax.sweep import yield_curve
from cpojax.yields import estimate_yield, invalid_message

CONSOLE = [sys.executable, "-c", "import cpojax.cli as c; c.console()"]


@pytest.fixture(autouse=True)
def _no_persistent_cache(monkeypatch):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _strict_json(text: str):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=bad)


def _console(*argv, timeout=300, env=None):
    e = {**os.environ, "CPOJAX_CACHE_DIR": "", **(env or {})}
    return subprocess.run(
        [*CONSOLE, *argv], capture_output=True, text=True, timeout=timeout, env=e, check=False
    )


# --------------------------------------------------------------------------- 1, 8: low-loss ring
def test_low_loss_ring_counts_failing_lanes_instead_of_aborting(capsys):
    """Ring loss at the 0 dB/cm floor makes T_high = T_low (a lossless all-pass ring does
    not modulate): those lanes must fail, not stop the run with exit 3."""
    sc = Scenario.default().replace({"design.ring.loss_db_per_cm": 3.0})
    res = estimate_yield(sc, seed=0, n_engines=4096)
    assert res.lane.value < 0.5  # an over-coupled, nearly lossless ring: lanes fail
    assert res.counts["invalid"] == 0
    code, out, err = _run(capsys, "link", "--set", "design.ring.loss_db_per_cm=0", "--json")
    assert code == 1, err  # the lane FAILS, finitely
    rep = _strict_json(out)
    assert rep["limit_states"]["modulator"] < 0 and rep["limit_states"]["optical"] < 0


def test_laser_below_threshold_fails_finitely(capsys):
    code, out, _ = _run(
        capsys,
        "link",
        "--set",
        "system.laser_mode=paired",
        "--set",
        "system.els_power_control=false",
        "--set",
        "design.laser.current_ma=10",
        "--json",
    )
    assert code == 1
    assert _strict_json(out)["limit_states"]["optical"] < -50


# --------------------------------------------------------------------------- 3, 4: attribution
def test_exact_sum_is_exact_for_extreme_int32_values():
    rng = np.random.default_rng(0)
    q = rng.integers(-(2**31) + 1, 2**31 - 1, size=(4096, 3), dtype=np.int64).astype(np.int32)
    got = _combine(_exact_sum(jnp.asarray(q)))
    np.testing.assert_array_equal(got, q.astype(np.int64).sum(axis=0))


@pytest.mark.slow
def test_attribution_does_not_saturate_with_1024_lanes():
    """4096 engines × 1024 lanes, every lane failing (1:64 splitter): the old int32
    fixed-point per-block sums saturated and every spread showed −0.49. (Thermal coupling
    off: the 1024-lane crosstalk solve is not what this tests, and costs minutes.)"""
    sc = Scenario.default().replace(
        {
            "system.lanes_per_engine": 1024,
            "system.lanes_per_laser": 64,
            "system.thermal_coupling": False,
        }
    )
    res = estimate_yield(sc, seed=0, n_engines=4096)
    ex = [a["excess_z2"] for a in res.attribution.values()]
    # failure is (almost) certain whatever z is: E[z²|fail] − 1 ≈ 0 for every spread
    assert max(abs(x) for x in ex) < 0.05, ex


def test_attribution_identical_for_chunk_sizes_and_devices():
    sc = Scenario.default()
    a = estimate_yield(sc, seed=3, n_engines=4 * 4096, chunk_blocks=1)
    b = estimate_yield(sc, seed=3, n_engines=4 * 4096, chunk_blocks=2)
    c = estimate_yield(sc, seed=3, n_engines=4 * 4096, chunk_blocks=4, devices=2)
    assert a.counts == b.counts == c.counts
    assert a.attribution == b.attribution == c.attribution


# --------------------------------------------------------------------------- 5, 10, 11, 15, 16: --out
def test_unwritable_out_fails_before_computing(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")

    def boom(*a, **k):
        raise AssertionError("computed before probing --out")

    monkeypatch.setattr(cli.sensitivity, "sensitivity", boom)
    monkeypatch.setattr(cli.optimize, "optimize_process", boom)
    for argv in (
        ["sensitivity", "--out", str(blocker)],
        ["sensitivity", "--out", str(blocker / "sub")],
        ["optimize", "--target-yield", "0.9", "--out", str(blocker / "sub")],
        ["yield", "--engines", "4096", "--out", str(blocker)],
    ):
        code, _, err = _run(capsys, *argv)
        assert code == 2, (argv, err)
        assert str(blocker) in err and "Traceback" not in err


def test_out_lock_refuses_a_second_run(capsys, tmp_path):
    d = tmp_path / "run"
    with RunFolder(d, outputs=outputs.YIELD_FILES):
        code, _, err = _run(capsys, "yield", "--engines", "4096", "--out", str(d), "--quiet")
    assert code == 2 and "in use" in err
    # a stale lock (its process is gone) is taken over
    (d / ".cpojax.lock").write_text(f"999999999 {os.uname().nodename}\n")
    with RunFolder(d, outputs=outputs.YIELD_FILES) as rf:
        assert rf.path == str(d)
    assert not (d / ".cpojax.lock").exists()


def test_unfinished_checkpoint_needs_resume_or_force(capsys, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    st = {"fingerprint": "x", "next_block": 1, "totals": {}}
    (d / "state.json").write_text(json.dumps({"finished": False, "state": st}))
    (d / "yield.json").write_text("{}")  # an old run's output
    code, _, err = _run(capsys, "yield", "--engines", "4096", "--out", str(d), "--quiet")
    assert code == 2 and "--resume" in err and "--force" in err
    assert (d / "yield.json").read_text() == "{}"  # nothing touched
    code, _, err = _run(capsys, "yield", "--engines", "4096", "--out", str(d), "--quiet", "--force")
    assert code == 0, err
    assert json.loads((d / "yield.json").read_text())["n_engines"] == 4096
    assert json.loads((d / "state.json").read_text())["finished"] is True
    # files are created with the umask's mode (0644 under the usual 022), not 0600
    mask = os.umask(0)
    os.umask(mask)
    for name in ("yield.json", "scenario.toml", "state.json", "margin_hist.png"):
        assert (d / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


@pytest.mark.parametrize(
    "content",
    ['{"state": {"next_block": 1, "fingerprint": "', "[1, 2]", '{"state": {"next_block": 1}}'],
)
def test_corrupt_checkpoint_is_named(capsys, tmp_path, content):
    d = tmp_path / "run"
    d.mkdir()
    (d / "state.json").write_text(content)
    code, _, err = _run(capsys, "yield", "--engines", "4096", "--out", str(d), "--resume")
    assert code == 2 and str(d / "state.json") in err and "corrupt" in err, err


def test_interrupt_before_first_checkpoint_promises_no_resume(capsys, tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs.yields, "estimate_yield", interrupted)
    d = tmp_path / "run"
    code, _, err = _run(capsys, "yield", "--engines", "4096", "--out", str(d))
    assert code == 130
    assert "nothing to resume" in err and "--resume" not in err
    assert not (d / ".cpojax.lock").exists()  # the lock is released


# --------------------------------------------------------------------------- 6: seeds
def test_seed_range_and_high_bits(capsys):
    for bad in ("-1", str(2**64), str(2**70)):
        code, _, err = _run(capsys, "yield", "--engines", "4096", "--seed", bad, "--quiet")
        assert code == 2 and "seed" in err and "Traceback" not in err, (bad, err)
    sc = Scenario.default()
    a = estimate_yield(sc, seed=0, n_engines=4096)
    b = estimate_yield(sc, seed=2**32, n_engines=4096)
    assert a.counts != b.counts  # 2**32 is not silently seed 0
    assert b.seed == 2**32
    c = estimate_yield(sc, seed=2**63, n_engines=4096)  # was an OverflowError traceback
    assert c.seed == 2**63 and c.counts != a.counts
    with pytest.raises(ValueError, match="seed"):
        estimate_yield(sc, seed=2**64, n_engines=4096)


# --------------------------------------------------------------------------- 7: Ctrl-C
@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ["optimize", "--target-yield", "0.99", "--steps", "400"],
        ["sensitivity", "--samples", "65536"],
        ["yield", "--method", "is"],
        ["yield", "--engines", "1048576", "--quiet"],
    ],
)
def test_ctrl_c_exits_130_not_segfault(argv):
    p = subprocess.Popen(
        [*CONSOLE, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CPOJAX_CACHE_DIR": ""},
    )
    time.sleep(8.0)  # inside XLA work (compiling or running)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert "interrupted" in err


# --------------------------------------------------------------------------- 9: NaN message
def test_invalid_message_counts_real_lanes_and_names_spreads():
    sc = Scenario.default()
    names = list(variation.active_variables(sc))
    z2 = np.zeros(len(names), np.int64)
    z2[names.index("ring_resonance_nm")] = 50 * 1000 * 7  # E[z²] = 7 over 50 invalid lanes
    totals = {
        "invalid": 50,
        "invalid_state": [0, 50, 0, 0],
        "invalid_probe": 0,
        "z2_invalid": np.stack([z2 // 65536, z2 % 65536]),
    }
    msg = invalid_message(sc, totals, 32768)
    assert "50 of 32768 lanes" in msg
    assert "thermal 50" in msg and "spread.ring_resonance_nm 6.00" in msg


# --------------------------------------------------------------------------- 17: API misuse
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: estimate_yield(None), "scenario"),
        (lambda: estimate_yield(Scenario.default(), key=5), "key"),
        (lambda: estimate_yield(Scenario.default(), n_engines=4096, state=[1, 2]), "state"),
        (lambda: estimate_yield(Scenario.default(), n_engines=4096, devices="2"), "devices"),
        (lambda: estimate_yield(Scenario.default(), n_engines=4096, devices=99), "devices"),
        (lambda: estimate_yield(Scenario.default(), n_engines=2.5), "n_engines"),
        (
            lambda: yield_curve(Scenario.default(), "design.ring.bias_nm", [6.0], n_engines=0),
            "n_engines",
        ),
        (lambda: yield_curve(Scenario.default(), "design.ring.bias_nm", "abc"), "values"),
    ],
)
def test_api_misuse_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_numpy_and_jax_scalars_are_accepted():
    sc = Scenario.default()
    res = estimate_yield(sc, seed=np.int64(0), n_engines=np.int32(4096), chunk_blocks=np.int64(1))
    ref = estimate_yield(sc, seed=0, n_engines=4096)
    assert res.counts == ref.counts
    jax_seed = estimate_yield(sc, seed=jnp.asarray(0, jnp.int32), n_engines=4096)
    assert jax_seed.counts == ref.counts
    curve = yield_curve(sc, "design.ring.bias_nm", np.linspace(5.5, 6.5, 2), n_engines=4096)
    assert len(curve["engine"]["yield"]) == 2


# --------------------------------------------------------------------------- 12-14, 19: CLI input
def test_optimize_cli_argument_errors(capsys):
    for argv, needle in (
        (["--free", "qqq.zzz"], "qqq.zzz"),
        (["--free", "design.ring.bias_nm", "design.ring.bias_nm"], "design.ring.bias_nm"),
        (["--steps", "0"], "--steps"),
    ):
        code, _, err = _run(capsys, "optimize", "--target-yield", "0.9", *argv)
        assert code == 2 and needle in err and "Traceback" not in err, (argv, err)


def test_config_from_an_endless_file_is_bounded(capsys):
    code, _, err = _run(capsys, "link", "--config", "/dev/zero")
    assert code == 2 and "/dev/zero" in err


def test_set_twice_is_refused(capsys):
    code, _, err = _run(
        capsys, "link", "--set", "design.ring.bias_nm=5", "--set", "design.ring.bias_nm=6"
    )
    assert code == 2 and "twice" in err


# --------------------------------------------------------------------------- exit codes
def test_console_exit_codes_and_no_traceback(tmp_path):
    p = _console("link", "--set", "design.ring.loss_db_per_cm=0", "--json")
    assert p.returncode == 1 and p.stderr == ""
    _strict_json(p.stdout)
    p = _console("link", "--set", "limits.ber_threshold=1e-40")
    assert p.returncode == 2 and "limits.ber_threshold" in p.stderr and "Traceback" not in p.stderr


def test_internal_errors_get_exit_4_not_the_lane_fails_code(capsys, monkeypatch):
    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli.link, "nominal_budget", bug)
    code, _, err = _run(capsys, "link")
    assert code == 4 and "ZeroDivisionError" in err and "internal error" in err


def test_invalid_model_output_from_link_is_exit_3(capsys, monkeypatch):
    def nan_budget(sc):
        raise InvalidModelOutput("the nominal lane budget is NaN/inf in: er_db")

    monkeypatch.setattr(cli.link, "nominal_budget", nan_budget)
    code, _, err = _run(capsys, "link", "--json")
    assert code == 3 and "er_db" in err


def test_run_folder_rejects_resume_and_force_together(tmp_path):
    with pytest.raises(OutputError, match="contradict"):
        RunFolder(tmp_path, resume=True, force=True)


def test_jax_arrays_as_scenario_values():
    sc = Scenario.default().replace({"design.ring.heater_max_mw": jnp.float32(50.0)})
    assert sc.design.ring.heater_max_mw == 50.0 and isinstance(sc.design.ring.heater_max_mw, float)
    jax.block_until_ready(jnp.zeros(()))
