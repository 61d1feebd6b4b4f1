"""Time per compiled reach_yield step on the 10-D linear problem, vs a NumPy step.

Model: g = b − Σᵢ xᵢ, xᵢ ~ N(0, σᵢ²), cost Σ cᵢ/σᵢ, target yield Y, free = std;
one step = importance-sampled likelihood-ratio Pf and ∇Pf (n samples), cost
gradient, least-squares multiplier, Adam update (``make_yield_step``, whose step
is ``state, info = step(state, s)``).

The step is compiled by a warm-up call, then ``--steps`` steps are timed, ending
with ``block_until_ready``; the median over ``--repeat`` runs is reported. The
NumPy reference does the same sampling, weights, score-function gradient and
plain gradient step on the host. Prints ONE JSON line.

``--model photonic``: the same step (``make_yield_step``, method "both": likelihood
ratio for mean/std, smoothed pathwise gradient for the design values) on the photonic
engine limit state of the default scenario (``model.parametric_limit_state``, float32,
``--n`` engines per step, the design values ``design.ring.heater_max_mw``,
``design.ring.bias_nm``, ``design.ring.drive_vpp`` free, target engine yield 0.99),
and the yield gradient alone (``failure_grad`` on the same limit state: Pf and its
gradients w.r.t. the 246 means and standard deviations of u and the 3 design values).
Reports ms per step and per gradient, and engine-samples/s and lane-samples/s of each.
No NumPy twin (the reference has no gradients).

Usage: python benchmarks/bench_optimize.py [--n 4096] [--steps 100] [--repeat 5]
       python benchmarks/bench_optimize.py --model photonic [--n 4096] [--steps 10]
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


PHOTONIC_FREE = ("design.ring.heater_max_mw", "design.ring.bias_nm", "design.ring.drive_vpp")


def photonic(args) -> dict:
    """Optimizer step and yield gradient on the photonic engine limit state."""
    from cpojax import model
    from cpojax.estimators.gradients import failure_grad
    from cpojax.scenario import Scenario
    from cpojax.scenario.keys import get_value

    sc = Scenario.default()
    g, dim = model.parametric_limit_state(sc, "engine")
    v0 = {k: float(get_value(sc, k)) for k in PHOTONIC_FREE}
    design0 = {k: jnp.asarray(v, jnp.float32) for k, v in v0.items()}
    params0 = {"mean": jnp.zeros(dim, jnp.float32), "std": jnp.ones(dim, jnp.float32)}
    params0["design"] = design0

    def cost_fn(p):
        d = p["design"]
        return sum((d[k] / v0[k]) ** 2 for k in PHOTONIC_FREE) + jnp.sum(1.0 / p["std"])

    state, step, _, traces = make_yield_step(
        g,
        params0,
        cost=cost_fn,
        target_yield=0.99,
        key=jax.random.key(0),
        free={"design": True},
        config=YieldOptConfig(steps=args.steps * (args.repeat + 1), n_per_step=args.n),
    )
    t0 = time.perf_counter()
    state, info = step(state, jnp.asarray(0, jnp.int32))
    jax.block_until_ready((state, info))
    compile_step = time.perf_counter() - t0
    key = jax.random.key(1)
    grad_kw = dict(
        mean=params0["mean"], std=params0["std"], design=design0, n=args.n, method="both"
    )
    t0 = time.perf_counter()
    jax.block_until_ready(failure_grad(g, key=key, **grad_kw))
    compile_grad = time.perf_counter() - t0
    step_t, grad_t, s = [], [], 1
    for r in range(args.repeat):  # interleaved: a block of steps, then of gradients
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, info = step(state, jnp.asarray(s, jnp.int32))
            s += 1
        jax.block_until_ready((state, info))
        step_t.append((time.perf_counter() - t0) / args.steps)
        t0 = time.perf_counter()
        for i in range(args.steps):
            res = failure_grad(g, key=jax.random.fold_in(key, r * args.steps + i), **grad_kw)
        jax.block_until_ready(res)
        grad_t.append((time.perf_counter() - t0) / args.steps)
    lanes = sc.system.lanes_per_engine

    def rng_(xs, scale):
        return [round(scale * min(xs), 2), round(scale * max(xs), 2)]

    st, gt = statistics.median(step_t), statistics.median(grad_t)
    return {
        "bench": "photonic_yield_step",
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "dtype": "float32",
        "n_engines_per_step": args.n,
        "dim": dim,
        "free": list(PHOTONIC_FREE),
        "steps_per_round": args.steps,
        "rounds": args.repeat,
        "compile_s_step": round(compile_step, 2),
        "compile_s_grad": round(compile_grad, 2),
        "step_ms_median": round(1e3 * st, 2),
        "step_ms_range": rng_(step_t, 1e3),
        "grad_ms_median": round(1e3 * gt, 2),
        "grad_ms_range": rng_(grad_t, 1e3),
        "step_engine_samples_per_s": round(args.n / st),
        "step_lane_samples_per_s": round(args.n * lanes / st),
        "grad_lane_samples_per_s": round(args.n * lanes / gt),
        "n_compiles_step": traces(),
        "yield_last": float(info.yield_),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", choices=("linear10", "photonic"), default="linear10")
    args = ap.parse_args()
    if args.model == "photonic":
        print(json.dumps(photonic(args)))
        return
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
