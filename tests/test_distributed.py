"""Several processes (cpojax.distributed): environment detection, and a sweep run by two CPU
processes on 127.0.0.1 (gloo collectives) giving the table of one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cpojax import distributed
from cpojax.distributed import DistributedError

ENV_VARS = (
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
    "SLURM_JOB_ID",
    "SLURM_STEP_NODELIST",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "OMPI_MCA_orte_hnp_uri",
    "OMPI_COMM_WORLD_SIZE",
)


@pytest.fixture
def clean_env(monkeypatch):
    for v in ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    return monkeypatch


def test_detect(clean_env):
    assert distributed.detect() is None
    clean_env.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    clean_env.setenv("JAX_NUM_PROCESSES", "1")
    assert distributed.detect() is None  # one process: nothing to start
    clean_env.setenv("JAX_NUM_PROCESSES", "4")
    assert distributed.detect() == "jax"
    for v in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES"):
        clean_env.delenv(v)
    slurm = {"SLURM_JOB_ID": "77", "SLURM_STEP_NODELIST": "gpu[01-02]", "SLURM_PROCID": "0"}
    for k, v in {**slurm, "SLURM_NTASKS": "1"}.items():
        clean_env.setenv(k, v)
    assert distributed.detect() is None  # a one-task srun (or a plain salloc shell)
    clean_env.setenv("SLURM_NTASKS", "16")
    assert distributed.detect() == "slurm"
    for k in (*slurm, "SLURM_NTASKS"):
        clean_env.delenv(k)
    clean_env.setenv("OMPI_MCA_orte_hnp_uri", "x")
    clean_env.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert distributed.detect() == "ompi"


def test_initialize_refuses_without_an_environment(clean_env):
    assert distributed.initialize(False) is None
    assert distributed.initialize(None) is None  # auto: a single process stays one
    with pytest.raises(DistributedError, match="JAX_COORDINATOR_ADDRESS"):
        distributed.initialize(True)
    clean_env.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    clean_env.setenv("JAX_NUM_PROCESSES", "2")
    with pytest.raises(DistributedError, match="JAX_PROCESS_ID"):
        distributed.initialize(None)
    clean_env.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(DistributedError, match="JAX_NUM_PROCESSES"):
        distributed.detect()


def test_single_process_helpers():
    assert distributed.is_main() and not distributed.is_multi()
    assert distributed.broadcast([1, 2]).tolist() == [1, 2]
    d = distributed.describe()
    assert d["process_count"] == 1 and d["n_devices"] == len(d["devices"]) >= 1


# --------------------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(argv, env):
    code = "import sys; from cpojax.cli import console; sys.argv[0] = 'cpojax'; console()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "sweep", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _two_processes(argv, base):
    """Two `cpojax sweep` processes with two CPU devices each, coordinated on 127.0.0.1."""
    addr = f"127.0.0.1:{_free_port()}"
    env = base | {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COORDINATOR_ADDRESS": addr,
        "JAX_NUM_PROCESSES": "2",
    }
    return [_cli(argv, env | {"JAX_PROCESS_ID": str(i)}) for i in range(2)]


@pytest.mark.slow
def test_two_processes_give_the_table_of_one(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    base |= {"JAX_PLATFORMS": "cpu", "CPOJAX_CACHE_DIR": ""}
    argv = [
        "--grid", "design.ring.heater_max_mw=35:80:4", "--grid",
        "spread.ring_resonance_nm.wafer=0.3,0.9,1.2",  # 12 points: 2 chunks of 8 (padded)
        "--engines", str(3 * 4096), "--seed", "5", "--json", "--quiet",
    ]  # fmt: skip
    one_env = base | {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    procs = _two_processes([*argv, "--out", str(tmp_path / "run")], base)
    single = _cli(argv, one_env)
    outs = [p.communicate(timeout=900) for p in (*procs, single)]
    for p, (_, err) in zip((*procs, single), outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    two = json.loads(outs[0][0])
    one = json.loads(outs[2][0])
    assert outs[1][0] == b""  # process 1 computes its share and prints nothing
    assert two["meta"]["run"]["process_count"] == 2 and two["meta"]["run"]["n_devices"] == 4
    assert one["meta"]["run"]["process_count"] == 1 and one["meta"]["run"]["n_devices"] == 1
    assert two["rows"] == one["rows"]
    saved = json.loads((tmp_path / "run" / "sweep.json").read_text())  # written by process 0
    assert saved["rows"] == one["rows"]

    # --resume under two processes: process 0 reads the folder and shares what is done
    procs = _two_processes([*argv, "--out", str(tmp_path / "run"), "--resume"], base)
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1].decode()[-3000:]
    again = json.loads(outs[0][0])
    assert again["rows"] == one["rows"] and again["meta"]["points_resumed"] == 12


def test_cli_distributed_without_an_environment_exits_2(clean_env, capsys):
    from cpojax.cli import main

    code = main(["sweep", "--grid", "design.ring.heater_max_mw=40,50", "--distributed"])
    _, err = capsys.readouterr()
    assert code == 2 and "srun" in err and "JAX_COORDINATOR_ADDRESS" in err
    assert "Traceback" not in err
