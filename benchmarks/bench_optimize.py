"""Time per compiled reach_yield step on the 10-D linear problem, vs a NumPy step.

Model: g = b − Σᵢ xᵢ, xᵢ ~ N(0, σᵢ²), cost Σ cᵢ/σᵢ, target yield Y, free = std;
one step = importance-sampled likelihood-ratio Pf and ∇Pf (n samples), cost
gradient, least-squares multiplier, Adam update (``make_yield_step``, whose step
is ``state, info = step(state, s)``).

The step is compiled by a warm-up call, then ``--steps`` steps are timed, ending
with ``block_until_ready``; the median over ``--repeat`` runs is reported. The
NumPy reference does the same sampling, weights, score-function gradient and
plain gradient step on the host. Prints ONE JSON line.

Usage: python benchmarks/bench_optimize.py [--n 4096] [--steps 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.stats import norm_ppf
from cpojax.optimize import YieldOptConfig, make_yield_step

DIM, B, Y = 10, 10.0, 0.9999
C = np.linspace(1.0, 10.0, DIM)


def limit_state(x, design):
    return jnp.asarray(B, x.dtype) - jnp.sum(x, axis=1)


def cost(p):
    return jnp.sum(jnp.asarray(C, p["std"].dtype) / p["std"])


def numpy_step(rng, sigma, shift, n, beta_t=3.719, lr=0.001, defensive=0.1):
    """One host step of the same estimator (reference for the per-step cost)."""
    z = rng.standard_normal((n, DIM))
    from_target = np.arange(n) % round(1 / defensive) == 0
    v = z + (~from_target)[:, None] * shift[None, :]
    alpha = from_target.mean()
    w = 1.0 / (alpha + (1 - alpha) * np.exp(v @ shift - 0.5 * shift @ shift))
    fail = (B - (v * sigma).sum(axis=1) < 0).astype(float)
    pf = np.mean(w * fail)
    loo = (np.sum(w * fail) - w * fail) / (n - 1)
    g_std = np.mean((w * (fail - loo))[:, None] * (v * v - 1) / sigma, axis=0)
    beta = -norm_ppf(min(max(pf, 1e-30), 0.5))
    pdf = np.exp(-0.5 * beta * beta) / np.sqrt(2 * np.pi)
    grad = -C / sigma**2 + max(0.0, 1.0 - 10 * (beta - beta_t)) * g_std / pdf
    return sigma * np.exp(-lr * np.sign(grad)), shift, pf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    params0 = {"mean": jnp.zeros(DIM, jnp.float32), "std": jnp.ones(DIM, jnp.float32)}
    state, step, _, traces = make_yield_step(
        limit_state,
        params0,
        cost=cost,
        target_yield=Y,
        key=jax.random.key(0),
        free="std",
        config=YieldOptConfig(steps=args.steps * (args.repeat + 1), n_per_step=args.n),
    )
    t0 = time.perf_counter()
    state, info = step(state, jnp.asarray(0, jnp.int32))
    jax.block_until_ready((state, info))
    compile_s = time.perf_counter() - t0
    times, s = [], 1
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, info = step(state, jnp.asarray(s, jnp.int32))
            s += 1
        jax.block_until_ready((state, info))
        times.append((time.perf_counter() - t0) / args.steps)
    rng = np.random.default_rng(0)
    sigma, shift = np.ones(DIM), np.full(DIM, 1.2)
    np_times = []
    for _ in range(max(1, args.repeat // 2)):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            sigma, shift, _ = numpy_step(rng, sigma, shift, args.n)
        np_times.append((time.perf_counter() - t0) / args.steps)
    step_s = statistics.median(times)
    np_s = statistics.median(np_times)
    out = {
        "bench": "reach_yield_step_linear10",
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "dtype": "float32",
        "n_per_step": args.n,
        "dim": DIM,
        "target_yield": Y,
        "compile_s": round(compile_s, 3),
        "step_ms_median": round(1e3 * step_s, 4),
        "step_ms_numpy": round(1e3 * np_s, 4),
        "speedup_vs_numpy": round(np_s / step_s, 2),
        "n_compiles": traces(),
        "beta_last": float(info.beta),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
