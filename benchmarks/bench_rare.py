"""Rare-event estimators on the 10-D hyperplane at Pf = 1e-6: evaluations, time, error.

Model: g(u) = β − Σᵢ uᵢ/√10, u ~ N(0, I₁₀), Pf = Φ(−β), β = 4.753 (Pf ≈ 1.0e-6).

For each method ("form", "is", "subset", "auto") one warm-up call compiles every kernel
(the kernels take the limit state as a static argument, so later calls reuse them);
then ``--repeat`` calls with different keys are timed. Each call returns host floats,
so device work is complete when the timer stops. Prints ONE JSON line per method:
median n_evals, median wall time (compile excluded), median relative error vs the
exact Pf, the share of runs flagged reliable, the cov target and the device.

Usage: python benchmarks/bench_rare.py [--repeat 7] [--target-cov 0.1]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import jax
import jax.numpy as jnp

from cpojax.estimators import estimate_failure, norm_sf

BETA, DIM = 4.753, 10
PF = norm_sf(BETA)


def g(u):
    return BETA - jnp.sum(u, axis=1) / math.sqrt(DIM)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--target-cov", type=float, default=0.1)
    ap.add_argument("--methods", default="form,is,subset,auto")
    args = ap.parse_args()
    device = str(jax.devices()[0].device_kind)
    for method in args.methods.split(","):
        estimate_failure(
            g, dim=DIM, key=jax.random.key(12345), method=method, target_cov=args.target_cov
        )
        times, evals, errs, reliable = [], [], [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            r = estimate_failure(
                g, dim=DIM, key=jax.random.key(i), method=method, target_cov=args.target_cov
            )
            times.append(time.perf_counter() - t0)
            evals.append(r.n_evals)
            errs.append(abs(r.pf / PF - 1.0))
            reliable.append(r.reliable)
        print(
            json.dumps(
                {
                    "bench": "rare_linear10d_1e-6",
                    "method": method,
                    "n_evals": statistics.median(evals),
                    "wall_s": statistics.median(times),
                    "rel_err": statistics.median(errs),
                    "reliable_share": sum(reliable) / len(reliable),
                    "target_cov": args.target_cov,
                    "pf_exact": PF,
                    "repeat": args.repeat,
                    "device": device,
                    "backend": jax.default_backend(),
                }
            )
        )


if __name__ == "__main__":
    main()
