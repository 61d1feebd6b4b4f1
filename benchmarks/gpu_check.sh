#!/usr/bin/env bash
# GPU check for issue 11: install, name the card, run the kernel tests and every benchmark
# with GPU-sized arguments, each under a timeout, all within a total budget (< 10 min).
#
# Usage (repository root as cwd, no internet needed):
#     bash benchmarks/gpu_check.sh                 # writes into $OUT (default ./gpu_out)
#     OUT=/some/dir BUDGET_S=540 bash benchmarks/gpu_check.sh
#     SMOKE=1 SKIP_INSTALL=1 bash benchmarks/gpu_check.sh   # tiny sizes: checks the script on a CPU
#
# Writes, under $OUT:
#     results.jsonl        one line per step: {"step", "rc", "seconds", "command", "result"}
#                          where "result" is the JSON line the benchmark printed (or null)
#     <step>.out/.err      each step's full stdout/stderr
#     RESULTS_gpu.md       a dated section appended per run (card, versions, one table row per
#                          step with its command and headline figures) to paste into
#                          benchmarks/RESULTS.md
# Steps are ordered by importance; a step whose timeout would overrun the budget is cut to
# what is left, and skipped when less than 20 s remain. The script never stops at a failed
# step: every step's rc is recorded. Exit code 0 unless the install failed.
set -u
OUT=${OUT:-./gpu_out}
BUDGET_S=${BUDGET_S:-560}
SMOKE=${SMOKE:-0}
PY=${PYTHON:-python}
mkdir -p "$OUT"
JSONL="$OUT/results.jsonl"
MD="$OUT/RESULTS_gpu.md"
T_START=$(date +%s)
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # device peak memory stays meaningful
export CPOJAX_CACHE_DIR=""                  # benchmarks manage their own caches

remaining() { echo $((BUDGET_S - ($(date +%s) - T_START))); }

# step NAME TIMEOUT_S COMMAND...: run under timeout, record rc/seconds/last JSON line.
step() {
    local name=$1 to=$2
    shift 2
    local left
    left=$(remaining)
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped (budget spent)" | tee -a "$OUT/gpu_check.log"
        printf '{"step": "%s", "rc": null, "skipped": "budget", "run": "%s"}\n' "$name" "$RUN_ID" >>"$JSONL"
        return 0
    fi
    [ "$to" -gt "$left" ] && to=$left
    echo "== $name (timeout ${to}s, $(date -u +%T)): $*" | tee -a "$OUT/gpu_check.log"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$to" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
    rc=$?
    t1=$(date +%s.%N)
    tail -n 3 "$OUT/$name.err" | sed 's/^/   /' | tee -a "$OUT/gpu_check.log"
    "$PY" - "$name" "$rc" "$t0" "$t1" "$OUT/$name.out" "$RUN_ID" "$*" >>"$JSONL" <<'EOF'
import json, sys
name, rc, t0, t1, path, run, cmd = sys.argv[1:]
result = None
try:
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                pass
except OSError:
    pass
print(json.dumps({"step": name, "rc": int(rc), "seconds": round(float(t1) - float(t0), 1),
                  "command": cmd, "run": run, "result": result}))
EOF
    echo "   rc=$rc" | tee -a "$OUT/gpu_check.log"
    return 0
}

# ---------------------------------------------------------------- sizes
if [ "$SMOKE" = "1" ]; then
    NUMPY_ARGS="--engines 8192 --numpy-engines 4096 --chunk-blocks 2 --rounds 2 --lane-engines 4096 --flat-lanes 1e5,1e6"
    YIELD_ARGS="--engines 8192 --chunk-blocks 2 --repeat 2 --no-stages"
    STARTUP_ARGS="--warm 1 --engines 8192"
    OPT_ARGS="--model photonic --n 1024 --steps 2 --repeat 2"
    MC_ARGS="--n 200000 --repeat 2 --chunk-blocks 16"
else
    # 2^21 engines = 16.8 M lane-samples per round (5.6 ms at the 3e9/s target);
    # NumPy gets 8 blocks per round (about a second on a server core).
    NUMPY_ARGS="--engines 2097152 --numpy-engines 32768 --chunk-blocks 64 --rounds 5 --lane-engines 65536 --flat-lanes 1e6,1e8"
    YIELD_ARGS="--engines 1048576 --chunk-blocks 64 --repeat 5"
    STARTUP_ARGS="--warm 3"
    OPT_ARGS="--model photonic --n 16384 --steps 10 --repeat 5"
    MC_ARGS="--n 100000000 --repeat 5 --chunk-blocks 1024"
fi

# ---------------------------------------------------------------- install and devices
if [ "${SKIP_INSTALL:-0}" = "1" ]; then
    INSTALL_RC=0
else
    step install 150 "$PY" -m pip install --no-deps --no-build-isolation -e .
    INSTALL_RC=$(tail -n 1 "$JSONL" | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["rc"])')
fi
step nvidia_smi 30 nvidia-smi -L
cat "$OUT/nvidia_smi.out" 2>/dev/null
step devices 60 "$PY" -c 'import json, jax; print(jax.devices()); print(json.dumps({"jax": jax.__version__, "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "kind": jax.devices()[0].device_kind}))'
cat "$OUT/devices.out" 2>/dev/null

# ---------------------------------------------------------------- kernel tests
if [ -f tests/test_kernels.py ]; then
    step test_kernels 180 "$PY" -m pytest -q -x tests/test_kernels.py
else
    echo "== test_kernels: tests/test_kernels.py absent, skipped" | tee -a "$OUT/gpu_check.log"
fi

# the kernel's own check (compiled kernel vs XLA on the counter stream), if it exists
if [ -f kernels/gpu_check.py ]; then
    step kernels_gpu_check 120 "$PY" -m cpojax.kernels.gpu_check --blocks 256 --chunk-blocks 64
fi

# ---------------------------------------------------------------- benchmarks
# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
step bench_numpy 220 "$PY" benchmarks/bench_numpy.py $NUMPY_ARGS
step hlo_cost 90 "$PY" benchmarks/hlo_cost.py --dump "$OUT/hlo"
step bench_startup 120 "$PY" benchmarks/bench_startup.py $STARTUP_ARGS
step bench_optimize_photonic 120 "$PY" benchmarks/bench_optimize.py $OPT_ARGS
step bench_yield 120 "$PY" benchmarks/bench_yield.py $YIELD_ARGS
step bench_mc 60 "$PY" benchmarks/bench_mc.py $MC_ARGS

# ---------------------------------------------------------------- dated report section
"$PY" - "$JSONL" "$RUN_ID" "$(($(date +%s) - T_START))" >>"$MD" <<'EOF'
import json, sys
path, run, total = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(path) if l.strip()]
rows = [r for r in rows if r.get("run") == run]
by = {r["step"]: r for r in rows}
try:
    smi = open(path.rsplit("/", 1)[0] + "/nvidia_smi.out").read().strip().splitlines()
except OSError:
    smi = []
dev = by.get("devices", {}).get("result") or {}

def g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d

def med(x):
    return x.get("median") if isinstance(x, dict) else x

def headline(step, res):
    if res is None:
        return ""
    if step == "bench_numpy":
        p = res.get("pipeline", {})
        parts = [f"{k.removesuffix('_lane_samples_per_s')} {med(v):.3g} lane-samples/s"
                 for k, v in p.items() if k.endswith("_lane_samples_per_s")]
        parts += [f"{k} {med(v)}× [{v['min']}, {v['max']}]" for k, v in p.items()
                  if k.endswith("_vs_numpy")]
        ls = res.get("limit_states", {})
        if "jax_limits_vs_numpy" in ls:
            v = ls["jax_limits_vs_numpy"]
            parts.append(f"limit states {med(v)}× NumPy [{v['min']}, {v['max']}]")
        m = res.get("memory", {})
        if "flat" in m:
            parts.append("flat: " + ", ".join(
                f"{f.get('n_lanes', 0):.0e} lanes → {f.get('maxrss_mb')} MB RSS"
                + (f", {f['device_peak_mb']} MB device" if "device_peak_mb" in f else "")
                for f in m["flat"]))
        return "; ".join(parts)
    if step == "hlo_cost":
        b = res.get("block", {})
        return (f"block: {b.get('flops_per_lane')} flops, {b.get('transcendentals_per_lane')} "
                f"transcendentals, {b.get('bytes_accessed_per_lane')} bytes accessed per lane")
    if step == "bench_startup":
        return (f"cold {res.get('cold_s')} s, warm {med(res.get('warm_s'))} s "
                f"{res.get('warm_s')}, import {med(res.get('import_cpojax_s'))} s")
    if step == "bench_optimize_photonic":
        return (f"step {res.get('step_ms_median')} ms {res.get('step_ms_range')}, gradient "
                f"{res.get('grad_ms_median')} ms; {res.get('grad_lane_samples_per_s')} "
                f"lane-samples/s (gradient), n = {res.get('n_engines_per_step')} engines")
    if step == "bench_yield":
        return (f"estimate_yield {res.get('lane_samples_per_s')} lane-samples/s, "
                f"compile {res.get('compile_s')} s")
    if step == "bench_mc":
        return ", ".join(f"{k} {v}" for k, v in res.items() if k.startswith("samples_per_s"))
    if step == "kernels_gpu_check":
        keys = [k for k in res if "per_s" in k or "speedup" in k or k.startswith("z_")]
        return ", ".join(f"{k} {res[k]}" for k in keys) or res.get("skipped", "")
    if step == "devices":
        return f"{res.get('kind')} ({res.get('backend')}, JAX {res.get('jax')})"
    return ""

print(f"\n## {run} — GPU check ({dev.get('kind', 'unknown device')})\n")
print("Card: " + ("; ".join(smi) if smi else "nvidia-smi gave nothing") + ".")
print(f"JAX {dev.get('jax')}, backend {dev.get('backend')}; total {total} s; "
      "`bash benchmarks/gpu_check.sh` (raw lines: results.jsonl).\n")
print("| step | command | rc | s | result |")
print("|---|---|---|---|---|")
for r in rows:
    if r.get("skipped"):
        print(f"| {r['step']} | | skipped | | {r['skipped']} |")
        continue
    cmd = r["command"].replace("|", "\\|")
    print(f"| {r['step']} | `{cmd}` | {r['rc']} | {r['seconds']} | "
          f"{headline(r['step'], r.get('result'))} |")
EOF
echo "== done in $(($(date +%s) - T_START)) s; results in $OUT (results.jsonl, RESULTS_gpu.md)"
[ "$INSTALL_RC" = "0" ] || exit 1
exit 0
