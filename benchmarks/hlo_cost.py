"""Flops, transcendentals and bytes per lane of estimate_yield's compiled block (XLA).

Compiles, for the default scenario in float32, the per-block function of
:func:`cpojax.estimate_yield` (``cpojax.counters.block_fn``, one block of
``cpojax.rng.BLOCK`` engines, the scenario a traced argument as in the real run) and
three of its stages on their own (threefry normals; normals → deviations; the lane
model ``model.engine_limits`` on given deviations), and reads XLA's
``compiled.cost_analysis()`` (flops, transcendentals, bytes accessed) and the optimized
HLO text (``compiled.as_text()``: fusions, gathers, scatters, sorts, while loops,
custom calls, and the largest temporary buffer). Figures are per lane (= per
engine × lanes per engine). The figures are XLA's static estimates for the backend it
compiles for: bytes accessed counts every operand and result of every top-level op of
the optimized graph (after fusion), i.e. an estimate of memory traffic, not a measurement.

Prints ONE JSON line. Usage: python benchmarks/hlo_cost.py [--dtype float32] [--dump DIR]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp

from cpojax import counters, model, rng, variation
from cpojax.scenario import Scenario


def _cost(compiled) -> dict:
    c = compiled.cost_analysis()
    if isinstance(c, list | tuple):  # older JAX: one dict per computation
        c = c[0] if c else {}
    return dict(c or {})


def _hlo_counts(text: str) -> dict:
    """Op counts of an optimized HLO module (all computations)."""
    ops = re.findall(r"=\s*\S+\s+([a-z][a-z0-9\-]*)\(", text)
    count = {}
    for op in ops:
        count[op] = count.get(op, 0) + 1
    keys = ("fusion", "gather", "scatter", "sort", "while", "custom-call", "dot", "reduce")
    out = {k: count.get(k, 0) for k in keys}
    out["instructions"] = len(ops)
    out["exp_log_pow"] = sum(count.get(k, 0) for k in ("exponential", "log", "power"))
    out["sin_cos"] = sum(count.get(k, 0) for k in ("sine", "cosine"))
    return out


def analyse(name: str, fn, args, n_lanes: int, dump: Path | None) -> dict:
    lowered = jax.jit(fn).lower(*args)
    compiled = lowered.compile()
    c = _cost(compiled)
    text = compiled.as_text() or ""
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        (dump / f"{name}.hlo.txt").write_text(text)
    res = {
        "flops_per_lane": round(c.get("flops", float("nan")) / n_lanes, 1),
        "transcendentals_per_lane": round(c.get("transcendentals", float("nan")) / n_lanes, 2),
        "bytes_accessed_per_lane": round(c.get("bytes accessed", float("nan")) / n_lanes, 1),
    }
    mem = compiled.memory_analysis()
    if mem is not None:
        res["temp_bytes_per_lane"] = round(mem.temp_size_in_bytes / n_lanes, 1)
    res["hlo"] = _hlo_counts(text)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--generator", default="threefry", choices=rng.GENERATORS)
    ap.add_argument("--dump", type=Path, default=None, help="write the optimized HLO texts here")
    args = ap.parse_args()
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dt = jnp.dtype(args.dtype)
    sc = Scenario.default()
    lay = variation.layout(sc)
    n_lanes = rng.BLOCK * lay.lanes
    key = jax.random.key(0)
    b = jnp.uint32(0)
    u = jax.ShapeDtypeStruct((rng.BLOCK, lay.engine_dim), dt)
    dev = jax.eval_shape(lambda u: variation.engine_deviations(sc, u), u)
    gen = args.generator
    stages = {
        "block": (counters.block_fn(dt.name, gen), (key, b, sc)),
        "normals": (
            lambda k, b: rng.block_normals(k, b, lay.engine_dim, dt, generator=gen),
            (key, b),
        ),
        "deviations": (lambda s, u: variation.engine_deviations(s, u), (sc, u)),
        "standardized": (lambda s, u: variation.standardized(s, u), (sc, u)),
        "engine_limits": (lambda s, d: model.engine_limits(s, d, dt)[0], (sc, dev)),
        "engine_budget": (lambda s, d: model.engine_budget(s, d, dt).g, (sc, dev)),
    }
    out = {
        "bench": "hlo_cost",
        "platform": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "dtype": dt.name,
        "generator": gen,
        "lanes_per_block": n_lanes,
        "engine_dim": lay.engine_dim,
    }
    for name, (fn, a) in stages.items():
        try:
            out[name] = analyse(name, fn, a, n_lanes, args.dump)
        except Exception as e:  # report, never fail the whole line
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
