"""Throughput of the full photonic yield evaluation (estimate_yield) and of its stages.

Stages, each streamed over the same engines with ``stream_counts`` and the same
chunk size, each compiled once (a warm-up call) and then timed ``--repeat`` times
(median; every timed call ends with the counts on the host, so device work is done):

* ``normals``: the block's normals only (``--generator``), a checksum counted;
* ``variation``: normals + engine deviations (the hierarchy of spreads) only;
* ``link``: the same plus the lane link budget at every corner and the pass/fail
  counts per lane and engine (what ``yield_curve`` does per grid point);
* ``yield``: ``estimate_yield`` itself (adds the die-only lane, z-scores for the
  attribution, histograms and the failure breakdown).

Differences of successive stages give the per-stage cost of a block (normals,
hierarchy, lane model, the rest of estimate_yield's counters). The NumPy reference of
the same pipeline (benchmarks/numpy_reference) and the "N× vs NumPy" ratio are in
bench_numpy.py (interleaved rounds in one run).

Prints ONE JSON line: lane-samples/s and engines/s per stage, compile seconds
(first call minus the median timed call), device, n_engines.

Usage: python benchmarks/bench_yield.py [--engines 65536] [--repeat 5] [--chunk-blocks 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from cpojax import model, rng, variation
from cpojax.estimators.streaming import stream_counts
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield


def _stage_fns(dtype, generator: str):
    """Per-block count functions fn(key, b, scenario) of the partial pipelines."""

    def normals_fn(key, b, sc):
        lay = variation.layout(sc)
        u = rng.block_normals(key, b, lay.engine_dim, dtype, generator=generator)
        return {"sign": (jnp.sum(u) > 0).astype(jnp.int32)}

    def variation_fn(key, b, sc):
        lay = variation.layout(sc)
        u = rng.block_normals(key, b, lay.engine_dim, dtype, generator=generator)
        dev = variation.engine_deviations(sc, u)
        # a cheap reduction that depends on every field, so nothing is dead code
        s = sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(dev))
        return {"sign": (s > 0).astype(jnp.int32)}

    def link_fn(key, b, sc):
        lay = variation.layout(sc)
        u = rng.block_normals(key, b, lay.engine_dim, dtype, generator=generator)
        dev = variation.engine_deviations(sc, u)  # fields [B, L]
        g = model.lane_g(sc, dev, dtype)  # the yield engine's own flattened evaluation
        lane_fail = jnp.any(g < 0, axis=-1) | ~jnp.all(jnp.isfinite(g), axis=-1)
        return {
            "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
            "engine_fail": jnp.sum(jnp.sum(lane_fail, axis=-1) > sc.system.spare_lanes).astype(
                jnp.int32
            ),
        }

    return {"normals": normals_fn, "variation": variation_fn, "link": link_fn}


def _time(call, repeat: int) -> tuple[float, float]:
    """(first-call seconds, median of `repeat` further calls)."""
    t0 = time.perf_counter()
    call(0)
    first = time.perf_counter() - t0
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        call(i + 1)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", type=int, default=65_536)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunk-blocks", type=int, default=4)
    ap.add_argument("--generator", choices=rng.GENERATORS, default="threefry")
    ap.add_argument("--no-stages", action="store_true", help="time estimate_yield only")
    args = ap.parse_args()

    sc = Scenario.default()
    dtype = jnp.float32
    n_blocks = -(-args.engines // rng.BLOCK)
    n_eng = n_blocks * rng.BLOCK
    lanes = sc.system.lanes_per_engine
    out = {
        "bench": "yield_default",
        "n_engines": n_eng,
        "n_lanes": n_eng * lanes,
        "repeat": args.repeat,
        "chunk_blocks": args.chunk_blocks,
        "generator": args.generator,
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
    }

    stages = {}
    if not args.no_stages:
        for name, fn in _stage_fns(dtype, args.generator).items():

            def call(i, fn=fn):
                stream_counts(
                    fn,
                    key=jax.random.key(i),
                    n_blocks=n_blocks,
                    chunk_blocks=args.chunk_blocks,
                    args=(sc,),
                )

            stages[name] = _time(call, args.repeat)

    res = {}

    def call_yield(i):
        res["r"] = estimate_yield(
            sc,
            seed=i,
            n_engines=n_eng,
            chunk_blocks=args.chunk_blocks,
            dtype=dtype,
            generator=args.generator,
        )

    stages["yield"] = _time(call_yield, args.repeat)

    for name, (first, med) in stages.items():
        out[f"lane_samples_per_s_{name}"] = round(n_eng * lanes / med)
        out[f"engines_per_s_{name}"] = round(n_eng / med)
        out[f"compile_s_{name}"] = round(max(first - med, 0.0), 3)
        out[f"median_s_{name}"] = round(med, 4)
    out["lane_samples_per_s"] = out["lane_samples_per_s_yield"]
    out["engines_per_s"] = out["engines_per_s_yield"]
    out["compile_s"] = out["compile_s_yield"]
    if "link" in stages:
        out["yield_over_link_time"] = round(stages["yield"][1] / stages["link"][1], 2)
    r = res["r"]
    out["engine_yield"] = r.engine[0]
    out["lane_yield"] = r.lane[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
