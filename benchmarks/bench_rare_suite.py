"""Rare-event estimators on a suite of reliability benchmark problems, many seeds each.

Problems (:mod:`cpojax.estimators.rare.benchmarks`): ``--set suite`` is the validation
suite (RPrepo problems, the four-branch series system, hyperplanes, the hypersphere
exterior; not used for tuning), ``--set dev`` the development problems the estimators
were tuned on. Each problem runs ``--seeds`` times with keys 0..seeds−1 after one
warm-up call (compilation excluded from the times) and prints ONE JSON line:

* ``evals_mean`` / ``evals_max``: limit-state evaluations per run;
* ``bias``: mean(pf)/pf_ref − 1; ``emp_cov``: sd(pf)/pf_ref over the seeds;
* ``rep_cov``: mean reported cov (runs with a finite cov);
* ``coverage``: share of runs whose 95 % interval contains pf_ref;
* ``confident_miss``: share of runs whose interval misses pf_ref while they say
  ``reliable=True`` (the failure the estimators must avoid; target ≤ 10 %);
* ``reliable``: share of runs flagged reliable; ``chosen``: final stage counts;
* ``wall_mean_s``: seconds per run.

Usage::

    python benchmarks/bench_rare_suite.py [--set suite|dev|all] [--seeds 20]
        [--method auto] [--problems name,...] [--target-cov 0.1] [--table]

``--table`` also prints a Markdown table of all lines at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import platform
import time

import jax
import numpy as np

from cpojax.estimators import estimate_failure
from cpojax.estimators.rare import benchmarks as bm


def run_problem(p: bm.Problem, seeds: int, method: str, target_cov: float) -> dict:
    kw = {"target_cov": target_cov, **p.kwargs}
    estimate_failure(p.limit_state, dim=p.dim, key=jax.random.key(10_000), method=method, **kw)
    pfs, evals, covs, cover, miss, rel, walls = [], [], [], [], [], [], []
    chosen: collections.Counter = collections.Counter()
    for s in range(seeds):
        t0 = time.perf_counter()
        r = estimate_failure(p.limit_state, dim=p.dim, key=jax.random.key(s), method=method, **kw)
        walls.append(time.perf_counter() - t0)
        pfs.append(r.pf)
        evals.append(r.n_evals)
        if math.isfinite(r.cov):
            covs.append(r.cov)
        c = r.ci[0] <= p.pf <= r.ci[1]
        cover.append(c)
        miss.append((not c) and r.reliable)
        rel.append(r.reliable)
        chosen[str(r.diagnostics.get("chosen", r.method))] += 1
    pfs_a = np.asarray(pfs)
    return {
        "problem": p.name,
        "kind": p.kind,
        "dim": p.dim,
        "pf_ref": p.pf,
        "method": method,
        "seeds": seeds,
        "evals_mean": float(np.mean(evals)),
        "evals_max": int(np.max(evals)),
        "bias": float(pfs_a.mean() / p.pf - 1.0),
        "emp_cov": float(pfs_a.std(ddof=1) / p.pf) if seeds > 1 else float("nan"),
        "rep_cov": float(np.mean(covs)) if covs else None,
        "coverage": float(np.mean(cover)),
        "confident_miss": float(np.mean(miss)),
        "reliable": float(np.mean(rel)),
        "chosen": dict(chosen),
        "wall_mean_s": round(float(np.mean(walls)), 3),
    }


def _table(rows: list[dict]) -> str:
    head = (
        "| problem | kind | dim | pf ref | mean evals | bias | emp. cov | rep. cov | coverage "
        "| confident misses | reliable | chosen |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        rep = "—" if r["rep_cov"] is None else f"{r['rep_cov']:.3f}"
        ch = ", ".join(f"{k} {v}" for k, v in sorted(r["chosen"].items()))
        lines.append(
            f"| {r['problem']} | {r['kind']} | {r['dim']} | {r['pf_ref']:.3e} "
            f"| {r['evals_mean']:.0f} | {r['bias']:+.3f} | {r['emp_cov']:.3f} | {rep} "
            f"| {r['coverage']:.2f} | {r['confident_miss']:.2f} | {r['reliable']:.2f} | {ch} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("suite", "dev", "all"), default="suite")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--problems", default="")
    ap.add_argument("--target-cov", type=float, default=0.1)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    probs = {"suite": bm.SUITE, "dev": bm.DEV, "all": bm.SUITE + bm.DEV}[args.set]
    if args.problems:
        probs = tuple(bm.by_name(n) for n in args.problems.split(","))
    rows = []
    t0 = time.perf_counter()
    for p in probs:
        row = run_problem(p, args.seeds, args.method, args.target_cov)
        row["device"] = str(jax.devices()[0].device_kind)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.table:
        print(_table(rows))
        print(
            f"\n{len(rows)} problems × {args.seeds} seeds in {time.perf_counter() - t0:.0f} s "
            f"({platform.machine()}, {jax.default_backend()}, JAX {jax.__version__})"
        )


if __name__ == "__main__":
    main()
