"""`cpojax sweep`: yield over a grid of scenario values (compiled once, every device, resumable)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np

from cpojax import distributed
from cpojax.cli.common import add_out_args, add_scenario_args, load_scenario, print_json
from cpojax.levels import LEVELS
from cpojax.model import LIMIT_NAMES
from cpojax.outputs import OutputError
from cpojax.scenario import ScenarioError
from cpojax.scenario.keys import param_keys, suggest
from cpojax.sweep import SweepProgress, SweepTable, figure_name, sweep

__all__ = ["parse_grid", "register"]

#: Rows printed on the terminal before the middle of a long table is elided.
MAX_ROWS = 40


def register(sub) -> None:
    sp = sub.add_parser(
        "sweep",
        help="yield over a grid of scenario values (one compilation, every device, resumable)",
        description="Monte Carlo yield at every point of a grid of scenario values; every "
        "point sees the same engines (common random numbers). Several processes "
        "(srun, mpirun, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) "
        "share the work through jax.distributed.",
    )
    add_scenario_args(sp)
    sp.add_argument(
        "--grid",
        metavar="KEY=SPEC",
        action="append",
        required=True,
        help="KEY=start:stop:num (num values, ends included) or KEY=v1,v2,... (repeatable; "
        "points are the cartesian product unless --zip)",
    )
    sp.add_argument(
        "--zip", action="store_true", help="pair the i-th values of every --grid instead"
    )
    sp.add_argument(
        "--engines",
        type=int,
        default=16_384,
        metavar="N",
        help="engines per point, rounded up to blocks of 4096 (default 16384)",
    )
    sp.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64) (default 0)")
    sp.add_argument(
        "--level",
        choices=LEVELS,
        default="engine",
        help="level of the terminal table's interval and of the figures (default engine)",
    )
    sp.add_argument(
        "--target-yield",
        type=float,
        default=0.9,
        metavar="Y",
        help="yield contour drawn on heatmaps (default 0.9)",
    )
    add_out_args(
        sp, "sweep.json, sweep.csv, scenario.toml, figures and finished points", resumable=True
    )
    sp.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="D",
        help="use the first D local devices (default: all; same numbers for any D)",
    )
    sp.add_argument(
        "--point-chunk",
        type=int,
        default=8,
        metavar="P",
        help="grid points vmapped together per block of engines (memory and speed; part of "
        "the numerics like the dtype, so a resume needs the same value; default 8)",
    )
    sp.add_argument(
        "--distributed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start jax.distributed (default: when srun/mpirun/JAX_* variables name "
        "several processes); process 0 writes and prints",
    )
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=_cmd_sweep)


# --------------------------------------------------------------------------- --grid
def _number(key: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ScenarioError(f"--grid {key}: {text.strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise ScenarioError(f"--grid {key}: {text.strip()!r} is not a finite number")
    return v


def parse_grid(items) -> dict[str, list[float]]:
    """``{key: values}`` from ``--grid`` specs; ScenarioError naming the key otherwise.

    ``KEY=start:stop:num`` gives ``num`` evenly spaced values from start to stop
    (both included, ``numpy.linspace``); ``KEY=v1,v2,...`` lists them.
    """
    known = set(param_keys())
    out: dict[str, list[float]] = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--grid expects KEY=start:stop:num or KEY=v1,v2,..., got {item!r}")
        key, spec = (s.strip() for s in item.split("=", 1))
        if key not in known:
            raise ScenarioError(f"--grid: unknown parameter {key!r}{suggest(key)}")
        if key in out:
            raise ScenarioError(f"--grid {key} is given twice")
        if not spec:
            raise ScenarioError(f"--grid {key}: no values (an empty range)")
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                raise ScenarioError(f"--grid {key}={spec}: a range is start:stop:num")
            start, stop = _number(key, parts[0]), _number(key, parts[1])
            try:
                num = int(parts[2])
            except ValueError:
                raise ScenarioError(
                    f"--grid {key}: num must be an integer >= 1, got {parts[2].strip()!r}"
                ) from None
            if num < 1:
                raise ScenarioError(f"--grid {key}: num must be >= 1, got {num} (an empty range)")
            if num > 1 and start == stop:
                raise ScenarioError(
                    f"--grid {key}: empty range (start = stop = {start:g} with num = {num})"
                )
            out[key] = np.linspace(start, stop, num).tolist()
        else:
            out[key] = [_number(key, v) for v in spec.split(",")]
    return out


# --------------------------------------------------------------------------- progress
def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _Bar:
    """Progress over the whole sweep with ETA, on stderr (in place on a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled, self.last = enabled, 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, p: SweepProgress) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        end = p.items_done >= p.items_total
        if not self.tty and now - self.last < 5.0 and not end:
            return
        self.last = now
        frac = p.items_done / p.items_total if p.items_total else 1.0
        rate = p.lane_samples / p.elapsed_s if p.elapsed_s > 0 else 0.0
        eta = p.elapsed_s * (1 - frac) / frac if frac > 0 else math.inf
        msg = (
            f"sweep [{'#' * int(30 * frac):<30}] {frac:5.1%}  points {p.points_done}/"
            f"{p.points_total}  {rate:,.0f} lane-samples/s  elapsed {_duration(p.elapsed_s)}"
            f"  ETA {_duration(eta)}"
        )
        sys.stderr.write(("\r" + msg + ("\n" if end else "")) if self.tty else msg + "\n")
        sys.stderr.flush()


# --------------------------------------------------------------------------- the command
def _cmd_sweep(args) -> int:
    distributed.initialize(args.distributed)  # before any other JAX use
    main = distributed.is_main()
    grid = parse_grid(args.grid)
    sc = load_scenario(args.config, args.set)
    if (args.resume or args.force) and not args.out:
        raise OutputError("--resume and --force need --out DIR (the folder of the sweep)")
    if not 0 < args.target_yield < 1:
        raise ValueError(f"--target-yield must be in (0, 1), got {args.target_yield}")
    quiet_native = _stdout_to_stderr() if distributed.is_multi() else contextlib.nullcontext()
    with quiet_native:
        table = _run(args, sc, grid, main)
    if not main:
        return 0
    if args.json:
        print_json(table.to_dict())
        return 0
    _print_table(table)
    if args.out:
        fig = figure_name(table.grid)
        print(
            f"\nwrote {args.out}/sweep.json, sweep.csv, scenario.toml"
            + (f" and {fig}" if fig else "")
            + f" ({len(table)} finished points in {args.out}/points/)"
        )
    return 0


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send native writes to stdout (gloo's connection notes on CPU clusters) to stderr,
    so that stdout holds only the table or the JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _run(args, sc, grid, main: bool) -> SweepTable:
    return sweep(
        sc,
        grid,
        zip=args.zip,
        seed=args.seed,
        n_engines=args.engines,
        level=args.level,
        devices=args.devices,
        out=args.out,
        resume=args.resume,
        force=args.force,
        point_chunk=args.point_chunk,
        target_yield=args.target_yield,
        progress=_Bar(enabled=not args.quiet and main),
        on_folder=lambda rf: setattr(args, "run_folder", rf),
    )


def _print_table(t: SweepTable) -> None:
    m, lv = t.meta, t.level
    run = m["run"]
    rate = m["lane_samples_per_s"]
    print(
        f"Yield sweep — {len(t)} points × {m['n_engines']} engines, seed {m['seed']}, "
        f"{m['wall_s']:.1f} s"
        + (f" ({rate:,.0f} lane-samples/s incl. compile)" if rate else "")
        + f", {run['n_devices']} {run['platform']} device(s) in {run['process_count']} process(es)"
        + (f", {m['points_resumed']} points resumed" if m["points_resumed"] else "")
    )
    keys = list(t.grid.keys)
    widths = [max(len(k), 9) for k in keys]
    head = "  ".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True))
    print(
        f"{head}  {'lane':>8}  {'engine':>8}  {'switch':>8}  {lv + ' 95 % interval':>22}  top mode"
    )
    rows = t.rows()
    shown = range(len(rows))
    if len(rows) > MAX_ROWS:
        shown = [*range(MAX_ROWS // 2), None, *range(len(rows) - MAX_ROWS // 4, len(rows))]
    for i in shown:
        if i is None:
            print(
                f"  … {len(rows) - MAX_ROWS // 2 - MAX_ROWS // 4} more rows (all in --json / --out)"
            )
            continue
        r = rows[i]
        vals = "  ".join(f"{r[k]:>{w}.6g}" for k, w in zip(keys, widths, strict=True))
        modes = {n: r[f"mode_{n}"] for n in LIMIT_NAMES}
        top = max(modes, key=modes.get) if r["lane_fail"] else "-"
        top = f"{top} {modes[top]:.0%}" if r["lane_fail"] else "-"
        ci = f"[{r[lv + '_lo']:.6f}, {r[lv + '_hi']:.6f}]"
        print(
            f"{vals}  {r['lane_yield']:8.6f}  {r['engine_yield']:8.6f}  {r['switch_yield']:8.6f}"
            f"  {ci:>22}  {top}"
        )
