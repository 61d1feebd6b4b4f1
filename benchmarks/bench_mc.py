"""Throughput of streamed crude Monte Carlo on the 10-D hyperplane, vs plain NumPy.

Model: g(u) = β − Σᵢ uᵢ/√10, u ~ N(0, I₁₀), Pf = Φ(−β), β = 3.09.

estimate_mc is compiled once (a warm-up call at the same chunk size), then timed
``--repeat`` times; each timed call ends with the counts on the host, so device work
is complete (the host read-back acts as block_until_ready). The NumPy reference
draws the same model in chunks with ``numpy.random.Generator.standard_normal``.
Prints ONE JSON line: median samples/s for each generator and for NumPy, device, n.

Usage: python benchmarks/bench_mc.py [--n 4000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators import estimate_mc, norm_sf
from cpojax.rng import BLOCK

BETA, DIM = 3.09, 10


def g(u):
    return jnp.asarray(BETA, u.dtype) - jnp.sum(u, axis=1) / jnp.sqrt(jnp.asarray(DIM, u.dtype))


def numpy_mc(n: int, seed: int, chunk: int = 1 << 18) -> int:
    rng = np.random.default_rng(seed)
    fails, done = 0, 0
    while done < n:
        m = min(chunk, n - done)
        u = rng.standard_normal((m, DIM), dtype=np.float32)
        fails += int(np.count_nonzero(BETA - u.sum(axis=1) / np.float32(math.sqrt(DIM)) < 0))
        done += m
    return fails


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunk-blocks", type=int, default=128)
    args = ap.parse_args()
    n = -(-args.n // BLOCK) * BLOCK
    key = jax.random.key(0)
    out = {"bench": "mc_hyperplane10", "n": n, "repeat": args.repeat}
    out["device"] = str(jax.devices()[0].device_kind)
    out["platform"] = jax.default_backend()
    exact = norm_sf(BETA)
    for gen in ("threefry", "hash"):
        kw = {"dim": DIM, "n": n, "chunk_blocks": args.chunk_blocks, "generator": gen}
        t0 = time.perf_counter()
        estimate_mc(g, key=key, **kw)  # compile + warm-up
        out[f"compile_s_{gen}"] = round(time.perf_counter() - t0, 3)
        times = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            r = estimate_mc(g, key=jax.random.fold_in(key, i), **kw)
            times.append(time.perf_counter() - t0)
        out[f"samples_per_s_{gen}"] = round(n / statistics.median(times))
        out[f"pf_{gen}"] = r.pf
    times = []
    for i in range(max(1, args.repeat // 2)):
        t0 = time.perf_counter()
        k = numpy_mc(n, i)
        times.append(time.perf_counter() - t0)
    out["samples_per_s_numpy"] = round(n / statistics.median(times))
    out["pf_numpy"] = k / n
    out["pf_exact"] = exact
    out["speedup_hash_vs_numpy"] = round(out["samples_per_s_hash"] / out["samples_per_s_numpy"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
