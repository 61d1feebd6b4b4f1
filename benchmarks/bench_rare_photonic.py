"""Rare-event vs crude Monte Carlo engine failure on a tightened photonic scenario.

Spreads of the default scenario are scaled by --factor (0.42 gives an engine
failure probability of about 1e-4). Crude MC runs --engines engines; the rare-event
estimator ("auto": lane-level FORM, design points mapped to every lane, the
exploratory probe, mixture importance sampling on the engine, vMF and subset
fallbacks) runs to 10 % cov. Prints one
JSON line: both estimates with 95 % intervals, whether the intervals overlap, the
lane-model evaluations of each, their ratio and the wall times.

    python benchmarks/bench_rare_photonic.py [--factor 0.42] [--engines 1048576]
"""

from __future__ import annotations

import argparse
import json
import time

import jax

from cpojax.rare_yield import estimate_yield_rare, scale_spreads
from cpojax.scenario import Scenario
from cpojax.yields import estimate_yield


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--factor", type=float, default=0.42)
    ap.add_argument("--engines", type=int, default=1_048_576)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sc = scale_spreads(Scenario.default(), args.factor)
    t = time.perf_counter()
    mc = estimate_yield(sc, seed=args.seed, n_engines=args.engines, chunk_blocks=4)
    t_mc = time.perf_counter() - t
    t = time.perf_counter()
    rr = estimate_yield_rare(sc, method="auto", seed=args.seed, levels=("engine",))
    t_rare = time.perf_counter() - t
    pf_mc = 1 - mc.engine.value
    ci_mc = (1 - mc.engine.hi, 1 - mc.engine.lo)
    res = rr.engine_result
    overlap = not (res.ci[1] < ci_mc[0] or ci_mc[1] < res.ci[0])
    print(
        json.dumps(
            {
                "bench": "rare_vs_mc_engine",
                "device": str(jax.devices()[0].platform),
                "factor": args.factor,
                "mc_pf": pf_mc,
                "mc_ci": ci_mc,
                "mc_lane_evals": mc.n_lanes,
                "mc_wall_s": round(t_mc, 1),
                "rare_pf": res.pf,
                "rare_ci": list(res.ci),
                "rare_cov": res.cov,
                "rare_reliable": res.reliable,
                "rare_chosen": res.diagnostics.get("chosen"),
                "rare_geometry": res.diagnostics.get("geometry"),
                "rare_lane_evals": rr.n_evals,
                "rare_wall_s": round(t_rare, 1),
                "intervals_overlap": overlap,
                "eval_ratio": mc.n_lanes / rr.n_evals,
            }
        )
    )


if __name__ == "__main__":
    main()
