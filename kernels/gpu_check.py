"""GPU check of the fused yield kernel: ``python -m cpojax.kernels.gpu_check [--blocks N]``.

Runs the compiled kernel (``implementation="pallas"``) and the XLA path on the same
``"counter"`` stream and prints one JSON line: the device, lane-samples/s of both (after
a warm-up call that compiles), the kernel/XLA speed ratio, and the agreement of the
counts. On a GPU the two are not bit-identical (Triton and XLA:GPU round transcendentals
differently, and the kernel's Φ of the truncated columns is ``ndtr_elementary``), so the
check is statistical: |Δ lane failures| and |Δ engine failures| in units of their
binomial standard deviation (``z_lane``, ``z_engine``; expected well below 1, since both
paths see the same samples) and the exact-match fraction of the per-limit-state counts.
On a machine without a GPU it says so and exits 0 (use ``tests/test_kernels.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=64, help="blocks of 4096 engines (default 64)")
    ap.add_argument("--chunk-blocks", type=int, default=16)
    ap.add_argument("--tile", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from cpojax import kernels, rng, yields
    from cpojax.scenario import Scenario

    dev = str(jax.devices()[0])
    if not kernels.pallas_supported():
        print(json.dumps({"device": dev, "skipped": "no GPU backend"}))
        return 0
    sc = Scenario.default()
    n = args.blocks * rng.BLOCK
    lanes = sc.system.lanes_per_engine
    common = dict(seed=args.seed, generator="counter", chunk_blocks=args.chunk_blocks)
    out = {"device": dev, "engines": n, "lanes": n * lanes}
    for impl in ("xla", "pallas"):
        yields.estimate_yield(
            sc, n_engines=args.chunk_blocks * rng.BLOCK, implementation=impl, **common
        )  # compile
        t = time.perf_counter()
        r = yields.estimate_yield(sc, n_engines=n, implementation=impl, **common)
        dt = time.perf_counter() - t
        out[f"{impl}_lane_samples_per_s"] = n * lanes / dt
        out[f"{impl}_counts"] = {k: r.counts[k] for k in kernels.COUNTERS}
    k, x = out["pallas_counts"], out["xla_counts"]
    out["speedup_pallas_vs_xla"] = out["pallas_lane_samples_per_s"] / out["xla_lane_samples_per_s"]
    for name, total in (("lane", n * lanes), ("engine", n)):
        c = x[f"{name}_fail"]
        p = max(c, 1) / total
        out[f"z_{name}"] = abs(k[f"{name}_fail"] - c) / math.sqrt(total * p * (1 - p))
    same = [np.array_equal(np.asarray(k[c]), np.asarray(x[c])) for c in kernels.COUNTERS]
    out["counters_identical"] = float(np.mean(same))
    out["jax"] = jax.__version__
    out["dtype"] = jnp.dtype(jnp.float32).name
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
