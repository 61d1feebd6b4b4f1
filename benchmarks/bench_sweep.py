"""Throughput of a parameter sweep (cpojax.sweep) on 1, 2, 4 … devices.

The sweep is a HEATER × WAFER grid (``--points`` points, as square as possible) over
``--engines`` engines per point on the default scenario. For each device count it
is compiled once (a warm-up call with another seed), then timed ``--repeat`` times
(median; each call ends with the table on the host). The tables of every device
count must be identical to that of one device (the bench fails otherwise).

On a CPU host the devices are XLA's virtual host devices
(``--xla_force_host_platform_device_count``, set from ``--cpu-devices`` before JAX is
imported): they share the machine's cores, so their scaling measures how well the
items spread over threads, not over chips. On GPUs the real devices are used.

Prints ONE JSON line per device count: lane-samples/s, points/s, median and
compile seconds, speed-up over one device, device kind, and the sweep's shape.

Usage: python benchmarks/bench_sweep.py [--points 16] [--engines 8192] [--repeat 3]
       [--devices 1,2,4] [--cpu-devices 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--engines", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--point-chunk", type=int, default=8)
    ap.add_argument("--devices", default="1,2,4", help="device counts, comma-separated")
    ap.add_argument("--cpu-devices", type=int, default=4, help="virtual CPU devices")
    args = ap.parse_args()
    if "jax" in sys.modules:
        raise SystemExit("run bench_sweep.py as a script (it sets XLA_FLAGS before JAX loads)")
    flags = os.environ.get("XLA_FLAGS", "")
    if "host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={args.cpu_devices}".strip()
        )

    import jax
    import numpy as np

    from cpojax import rng
    from cpojax.scenario import Scenario
    from cpojax.sweep import sweep

    sc = Scenario.default()
    nx = int(np.ceil(np.sqrt(args.points)))
    ny = -(-args.points // nx)
    grid = {
        "design.ring.heater_max_mw": np.linspace(30.0, 80.0, nx).tolist(),
        "spread.ring_resonance_nm.wafer": np.linspace(0.2, 1.2, ny).tolist(),
    }
    n_points = nx * ny
    n_eng = -(-args.engines // rng.BLOCK) * rng.BLOCK
    lane_samples = n_points * n_eng * sc.system.lanes_per_engine
    counts = [int(d) for d in args.devices.split(",")]
    counts = [d for d in counts if d <= len(jax.devices())]
    base_rows, base_time = None, None
    for d in counts:
        kw = {"n_engines": n_eng, "devices": d, "point_chunk": args.point_chunk}
        t0 = time.perf_counter()
        sweep(sc, grid, seed=1000, **kw)
        first = time.perf_counter() - t0
        times, rows = [], None
        for i in range(args.repeat):
            t0 = time.perf_counter()
            table = sweep(sc, grid, seed=i, **kw)
            times.append(time.perf_counter() - t0)
            rows = rows or table.to_dict()["rows"]
        med = statistics.median(times)
        base_rows = base_rows or rows
        base_time = base_time or med
        if rows != base_rows:
            raise SystemExit(f"the table on {d} devices differs from the one on {counts[0]}")
        dev = jax.devices()[0]
        print(
            json.dumps(
                {
                    "bench": "sweep",
                    "devices": d,
                    "platform": dev.platform,
                    "device_kind": dev.device_kind,
                    "cpu_cores": os.cpu_count(),
                    "points": n_points,
                    "n_engines": n_eng,
                    "point_chunk": args.point_chunk,
                    "repeat": args.repeat,
                    "median_s": round(med, 3),
                    "compile_s": round(max(first - med, 0.0), 2),
                    "lane_samples_per_s": round(lane_samples / med),
                    "points_per_s": round(n_points / med, 2),
                    "speedup_vs_first": round(base_time / med, 2),
                    "identical_tables": True,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
