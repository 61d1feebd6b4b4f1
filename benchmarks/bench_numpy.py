"""The "N× vs NumPy" line of issue 11: JAX against the NumPy reference, in one run.

Two comparisons, each on the default scenario in float32, each measured in
``--rounds`` interleaved rounds (JAX, NumPy, JAX, NumPy, …, so that the load of this
shared machine hits both alike); per round the ratio of the two wall times, then the
median and [min, max] over the rounds:

* ``pipeline``: the full crude yield evaluation — :func:`cpojax.estimate_yield` (XLA
  path, threefry normals, ``--chunk-blocks`` blocks per call) against
  ``numpy_reference.pipeline.yield_counts`` (NumPy normals → hierarchy → lane and
  engine limit states → every counter of the yield block), same number of engines
  unless ``--numpy-engines`` (on a GPU the NumPy side needs far fewer);
  lane-samples/s = engines × lanes per engine / seconds; the ratio per round is of
  the two throughputs.  With ``--pallas`` (default on a GPU, off on the CPU where
  Pallas would run in interpret mode) and an ``estimate_yield(...,
  implementation="pallas")``, two more columns on the kernel's "counter" random stream:
  ``xla_counter`` (XLA path) and ``pallas`` (the fused kernel, which computes the
  yield counters only: no attribution, no histograms).
* ``limit_states``: the lane model alone on the same float32 deviations
  (``--lane-engines`` engines, computed once by ``cpojax.variation``): the jitted
  ``model.engine_limits`` (fast formulation, what ``engine_g`` uses),
  ``model.engine_budget(...).g`` (the Budget path) and
  ``numpy_reference.lane.engine_g``; also the share of lanes with identical pass/fail.

Memory: NumPy peak by ``tracemalloc`` (NumPy reports its buffers to it) for one block
of the pipeline and one call of the lane model; XLA by ``memory_analysis()`` of the
compiled chunk function (arguments, outputs, temporaries: what one call needs whatever
the number of samples) and the process's peak RSS (VmHWM). Flat memory: two
child processes run ``estimate_yield`` at each of ``--flat-lanes`` (default 1e6 and
1e8 lane-samples) with the same chunk size and report their peak RSS, which must be
the same (the counters are the only state carried between chunks).

Prints ONE JSON line.

Usage: python benchmarks/bench_numpy.py [--engines 131072] [--rounds 5] [--chunk-blocks 4]
       [--numpy-engines N] [--lane-engines 4096] [--flat-lanes 1e6,1e8] [--pallas | --no-pallas]
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy_reference as nr

from cpojax import counters, model, rng, variation
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield


def summary(xs) -> dict:
    """Median and range of a list of numbers (3 significant digits)."""
    return {
        "median": float(f"{statistics.median(xs):.3g}"),
        "min": float(f"{min(xs):.3g}"),
        "max": float(f"{max(xs):.3g}"),
    }


def maxrss_mb() -> float:
    """Peak resident set size of this process so far, MB.

    Linux's VmHWM (the high-water mark of this address space); ``ru_maxrss`` is the
    fallback, but it survives ``execve`` (a child started by this script would report
    the parent's peak).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "n_devices": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def has_implementation() -> bool:
    """Whether estimate_yield takes ``implementation=`` (the Pallas switch of issue 11)."""
    return "implementation" in inspect.signature(estimate_yield).parameters


def yield_call(sc, n_engines, chunk_blocks, implementation=None, generator="threefry"):
    """estimate_yield in float32 (XLA path unless `implementation` names another)."""
    kw = {"generator": generator}
    if implementation is not None:
        kw["implementation"] = implementation

    def call(seed):
        r = estimate_yield(
            sc, seed=seed, n_engines=n_engines, chunk_blocks=chunk_blocks, dtype=jnp.float32, **kw
        )
        return r.engine[0]

    return call


def xla_chunk_memory(sc, chunk_blocks) -> dict:
    """memory_analysis() of the compiled chunk function of estimate_yield's XLA path."""
    try:
        from cpojax.estimators import streaming

        fn = counters.block_fn("float32", "threefry")
        chunk = streaming._chunk_function(fn, chunk_blocks)
        idx = jnp.arange(chunk_blocks, dtype=jnp.uint32)
        mem = chunk.lower(jax.random.key(0), idx, (sc,)).compile().memory_analysis()
    except Exception as e:  # private API: report, never fail the benchmark
        return {"error": f"{type(e).__name__}: {e}"[:200]}
    if mem is None:
        return {"error": "memory_analysis() is None on this backend"}
    mb = 1 / 2**20
    out = {
        "argument_mb": round(mem.argument_size_in_bytes * mb, 3),
        "output_mb": round(mem.output_size_in_bytes * mb, 3),
        "temp_mb": round(mem.temp_size_in_bytes * mb, 2),
        "generated_code_mb": round(mem.generated_code_size_in_bytes * mb, 2),
    }
    # The chunk walks its blocks one at a time (streaming.map_blocks): the temporaries
    # are those of one block, whatever chunk_blocks is.
    out["temp_bytes_per_lane_of_a_block"] = round(
        mem.temp_size_in_bytes / (rng.BLOCK * sc.system.lanes_per_engine), 1
    )
    return out


def pipeline(args, sc, out) -> None:
    lanes = sc.system.lanes_per_engine
    n_eng = -(-args.engines // rng.BLOCK) * rng.BLOCK
    cols = {"xla": yield_call(sc, n_eng, args.chunk_blocks)}
    if args.pallas:  # the kernel draws the "counter" stream: XLA on that stream too
        cols["xla_counter"] = yield_call(sc, n_eng, args.chunk_blocks, "xla", "counter")
        cols["pallas"] = yield_call(sc, n_eng, args.chunk_blocks, "pallas", "counter")

    n_np = -(-(args.numpy_engines or args.engines) // rng.BLOCK) * rng.BLOCK
    n_of = {name: n_eng for name in cols} | {"numpy": n_np}

    def numpy_call(seed):
        t = nr.yield_counts(sc, n_np, seed=seed, dtype=np.float32, block=rng.BLOCK)
        return 1.0 - t["engine_fail"] / n_np

    cols["numpy"] = numpy_call
    compile_s, times, yields_ = {}, {k: [] for k in cols}, {}
    for name in list(cols):
        if name == "numpy":
            continue
        t0 = time.perf_counter()
        try:
            cols[name](10_000)  # compile (and warm) at the timed shape
        except Exception as e:
            out[f"pipeline_{name}_error"] = f"{type(e).__name__}: {e}"[:300]
            del cols[name], times[name]
            continue
        compile_s[name] = round(time.perf_counter() - t0, 2)
    for r in range(args.rounds):
        for name, call in cols.items():
            t0 = time.perf_counter()
            yields_[name] = call(r)
            times[name].append(time.perf_counter() - t0)
    res = {"n_engines": n_eng, "n_engines_numpy": n_np, "chunk_blocks": args.chunk_blocks}
    thr = {name: [n_of[name] * lanes / t for t in ts] for name, ts in times.items()}
    for name, ts in times.items():
        res[f"{name}_lane_samples_per_s"] = summary(thr[name])
        res[f"{name}_s"] = summary(ts)
        res[f"{name}_engine_yield_last_round"] = round(float(yields_[name]), 5)
    for name in times:
        if name != "numpy":  # per round: throughput ratio of the two adjacent timings
            ratio = [x / n for x, n in zip(thr[name], thr["numpy"], strict=True)]
            res[f"{name}_vs_numpy"] = summary(ratio)
    res["compile_s"] = compile_s
    out["pipeline"] = res


def limit_states(args, sc, out) -> None:
    lay = variation.layout(sc)
    n_blocks = -(-args.lane_engines // rng.BLOCK)
    u = rng.normals(jax.random.key(1), 0, n_blocks, lay.engine_dim, jnp.float32)
    dev = jax.jit(lambda u: variation.engine_deviations(sc, u))(u)
    fields = list(nr.engine_deviations(sc, np.asarray(u[:2])))
    dev_np = {f: np.asarray(getattr(dev, f)) for f in fields}
    f32 = jnp.float32
    fns = {
        "jax_limits": jax.jit(lambda d: model.engine_limits(sc, d, f32)[0]),
        "jax_budget": jax.jit(lambda d: model.engine_budget(sc, d, f32).g),
    }
    compile_s = {}
    for name, f in fns.items():
        t0 = time.perf_counter()
        jax.block_until_ready(f(dev))
        compile_s[name] = round(time.perf_counter() - t0, 2)
    calls = {name: (lambda f=f: jax.block_until_ready(f(dev))) for name, f in fns.items()}
    calls["numpy"] = lambda: nr.engine_g(sc, dev_np, np.float32)
    calls["numpy"]()
    times = {k: [] for k in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    g_j = np.asarray(fns["jax_limits"](dev))
    g_n = nr.engine_g(sc, dev_np, np.float32)
    n = g_j.shape[0] * g_j.shape[1]
    res = {"n_lanes": n}
    for name, ts in times.items():
        res[f"{name}_lanes_per_s"] = summary([n / t for t in ts])
    for name in fns:
        res[f"{name}_vs_numpy"] = summary(
            [tn / tx for tn, tx in zip(times["numpy"], times[name], strict=True)]
        )
    res["pass_fail_identical_share"] = float(np.mean((g_j < 0).any(-1) == (g_n < 0).any(-1)))
    res["compile_s"] = compile_s
    tracemalloc.start()
    nr.engine_g(sc, dev_np, np.float32)
    res["numpy_tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    out["limit_states"] = res


def memory(args, sc, out) -> None:
    lay = variation.layout(sc)
    u = nr.numpy_normals(np.random.default_rng(0), rng.BLOCK, lay.engine_dim, np.float32)
    tracemalloc.start()
    nr.block_counts(sc, u)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    res = {
        "numpy_block_tracemalloc_peak_mb": round(peak / 2**20, 1),
        "numpy_block_bytes_per_lane": round(peak / (rng.BLOCK * lay.lanes)),
        "xla_chunk": xla_chunk_memory(sc, args.chunk_blocks),
        "process_maxrss_mb": maxrss_mb(),
    }
    flat = []
    for lanes_s in [s for s in args.flat_lanes.split(",") if s.strip()]:
        n_lanes = int(float(lanes_s))
        cmd = [sys.executable, __file__, "--child-flat", str(n_lanes)]
        cmd += ["--chunk-blocks", str(args.chunk_blocks)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.flat_timeout)
            flat.append(json.loads(p.stdout.strip().splitlines()[-1]))
        except Exception as e:
            flat.append({"n_lanes": n_lanes, "error": f"{type(e).__name__}: {e}"[:200]})
    if flat:
        res["flat"] = flat
        rss = [f["maxrss_mb"] for f in flat if "maxrss_mb" in f]
        if len(rss) >= 2:
            res["flat_maxrss_ratio_last_over_first"] = round(rss[-1] / rss[0], 3)
        dev = [f["device_peak_mb"] for f in flat if "device_peak_mb" in f]
        if len(dev) >= 2:
            res["flat_device_peak_ratio_last_over_first"] = round(dev[-1] / dev[0], 3)
    out["memory"] = res


def child_flat(n_lanes: int, chunk_blocks: int) -> None:
    """One estimate_yield of n_lanes lane-samples in a fresh process: peak RSS, time."""
    sc = Scenario.default()
    lanes = sc.system.lanes_per_engine
    n_eng = -(-n_lanes // lanes)
    n_eng = -(-n_eng // (rng.BLOCK * chunk_blocks)) * rng.BLOCK * chunk_blocks
    t0 = time.perf_counter()
    r = estimate_yield(sc, seed=0, n_engines=n_eng, chunk_blocks=chunk_blocks, dtype=jnp.float32)
    wall = time.perf_counter() - t0
    out = {
        "n_lanes": n_eng * lanes,
        "n_engines": n_eng,
        "chunk_blocks": chunk_blocks,
        "maxrss_mb": maxrss_mb(),
        "wall_s_incl_compile": round(wall, 2),
        "lane_samples_per_s_incl_compile": float(f"{n_eng * lanes / wall:.3g}"),
        "engine_yield": r.engine[0],
    }
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if stats and "peak_bytes_in_use" in stats:  # accelerators: device memory peak too
        out["device_peak_mb"] = round(stats["peak_bytes_in_use"] / 2**20, 1)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", type=int, default=131_072)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk-blocks", type=int, default=4)
    ap.add_argument("--numpy-engines", type=int, default=None, help="default: --engines")
    ap.add_argument("--lane-engines", type=int, default=4096)
    ap.add_argument("--flat-lanes", default="1e6,1e8", help="comma list; empty: skip")
    ap.add_argument("--flat-timeout", type=float, default=900.0)
    ap.add_argument("--pallas", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--skip", default="", help="comma list of pipeline,limit_states,memory")
    ap.add_argument("--child-flat", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_flat:
        child_flat(args.child_flat, args.chunk_blocks)
        return
    if args.pallas is None:
        args.pallas = jax.default_backend() != "cpu"
    args.pallas = bool(args.pallas) and has_implementation()
    sc = Scenario.default()
    out = {"bench": "numpy_vs_jax", "dtype": "float32", "rounds": args.rounds, **machine()}
    out["pallas_available"] = has_implementation()
    skip = set(args.skip.split(","))
    if "pipeline" not in skip:
        pipeline(args, sc, out)
    if "limit_states" not in skip:
        limit_states(args, sc, out)
    if "memory" not in skip:
        memory(args, sc, out)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
