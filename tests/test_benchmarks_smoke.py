"""The benchmark scripts stay importable and the GPU check script stays valid bash (< 20 s).

The benchmarks themselves are not run here (each compiles the yield block, ≈ 20 s on
the CPU); ``SMOKE=1 SKIP_INSTALL=1 bash benchmarks/gpu_check.sh`` runs them all at tiny
sizes.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = [
    "bench_numpy",
    "bench_startup",
    "bench_optimize",
    "bench_yield",
    "bench_mc",
    "hlo_cost",
]


def _load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_importable_with_usage(name):
    mod = _load(name)
    assert callable(mod.main)
    assert "Usage" in mod.__doc__ or "usage" in mod.__doc__


def test_summary_and_hlo_counts():
    bn = _load("bench_numpy")
    assert bn.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert bn.maxrss_mb() > 0
    hc = _load("hlo_cost")
    text = "%a = f32[4] fusion(p), kind=kLoop\n%b = f32[4] exponential(%a)\n%c = s32[] while(x)"
    counts = hc._hlo_counts(text)
    assert counts["fusion"] == 1 and counts["while"] == 1 and counts["exp_log_pow"] == 1


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_check_is_valid_bash():
    r = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
