"""`cpojax yield`: Monte Carlo (resumable, with a run folder) or rare-event yield."""

from __future__ import annotations

from cpojax import outputs
from cpojax.cli.common import (
    Progress,
    add_out_args,
    add_scenario_args,
    load_scenario,
    print_json,
    run_folder,
)
from cpojax.outputs import OutputError
from cpojax.rare_yield import estimate_yield_rare

__all__ = ["register"]


def register(sub) -> None:
    yp = sub.add_parser("yield", help="Monte Carlo lane / engine / switch yield with failure modes")
    add_scenario_args(yp)
    yp.add_argument(
        "--engines",
        type=int,
        default=131_072,
        metavar="N",
        help="engines to simulate, rounded up to blocks of 4096 (default 131072)",
    )
    yp.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64) (default 0)")
    add_out_args(yp, "yield.json, scenario.toml and figures; checkpoints the run", resumable=True)
    yp.add_argument(
        "--chunk-blocks",
        type=int,
        default=1,
        metavar="K",
        help="blocks of 4096 engines per device call (speed/memory only)",
    )
    yp.add_argument("--quiet", action="store_true", help="no progress bar")
    yp.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="D",
        help="shard each chunk over D devices (chunk-blocks must be a multiple; same numbers for any D)",
    )
    yp.add_argument(
        "--method",
        choices=("mc", "form", "is", "subset", "auto"),
        default="mc",
        help="mc: streamed crude Monte Carlo (default, full breakdown and figures); "
        "form / is / subset / auto: rare-event estimators for ppm-level failure",
    )
    yp.set_defaults(func=_cmd_yield)


def _cmd_yield(args) -> int:
    sc = load_scenario(args.config, args.set)
    if args.method != "mc":
        return _yield_rare(args, sc)
    if (args.resume or args.force) and not args.out:
        raise OutputError("--resume and --force need --out DIR (the folder of the run)")
    lanes = sc.system.lanes_per_engine
    bar = Progress("yield", enabled=not args.quiet)
    res = outputs.run_yield(
        sc,
        args.out,
        resume=args.resume,
        force=args.force,
        progress=lambda d, t: bar(d, t, lanes),
        on_folder=lambda rf: setattr(args, "run_folder", rf),
        seed=args.seed,
        n_engines=args.engines,
        chunk_blocks=args.chunk_blocks,
        devices=args.devices,
    )
    if args.json:
        print_json(res.to_dict())
        return 0

    def row(name, t):
        return f"  {name:<8} {t.value:10.6f}   [{t.lo:.6f}, {t.hi:.6f}]"

    print(
        f"Monte Carlo yield — {res.n_engines} engines × {lanes} lanes = {res.n_lanes} lanes, "
        f"seed {res.seed}, {res.wall_s:.1f} s ({res.lane_samples_per_s:,.0f} lane-samples/s incl. compile)"
    )
    print(f"  {'level':<8} {'yield':>10}   95 % interval")
    print(row("lane", res.lane))
    print(row("engine", res.engine))
    print(
        row("switch", res.switch) + f"   ({sc.system.engines_per_switch} engines, engine_yield^N)"
    )
    if res.engine_total is not None:
        f = res.functional
        parts = ", ".join(f"{k} {v:.4f}" for k, v in f.items() if k != "engine")
        print(
            f"  functional (defect-limited and assembly) yield per engine {f['engine']:.4f} ({parts})"
        )
        print(row("engine×f", res.engine_total) + "   (parametric × functional)")
        print(row("switch×f", res.switch_total))
    print("\nfailure modes (share of failing lanes; a lane may fail several):")
    for name, frac in sorted(res.failure_modes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<10} {frac:7.1%}   ({res.lane_fail_fraction[name]:.2e} of all lanes)")
        if name == "thermal" and res.thermal_edges:
            e = res.thermal_edges
            print(
                f"    red edge (heater runs out) {e.get('red', 0.0):.1%}, blue edge (ring "
                f"fabricated too red: cannot cool) {e.get('blue', 0.0):.1%}"
            )
    print(
        f"\ndie-level share of failing engines: {res.die_level_share:.1%} "
        "(the engine's shared variation alone fails a lane)"
    )
    print("\nspreads that pushed failing lanes out (E[z²|fail] − 1, E[z|fail]):")
    ranked = sorted(res.attribution.items(), key=lambda kv: -kv[1]["excess_z2"])
    for name, a in ranked[:6]:
        print(f"  {name:<22} {a['excess_z2']:8.2f}  {a['mean_z']:+6.2f}")
    if args.out:
        print(f"\nwrote {args.out}/yield.json, scenario.toml and 4 figures")
    return 0


def _yield_rare(args, sc) -> int:
    if args.resume:
        raise OutputError("--resume applies to --method mc only (rare-event runs are short)")
    with run_folder(args, ("yield.json", "scenario.toml")) as rf:
        res = estimate_yield_rare(sc, method=args.method, seed=args.seed)
        out = res.to_dict()
        out["n_engines"] = None
        if rf is not None:
            rf.write_json("yield.json", out)
            rf.write_text("scenario.toml", sc.to_toml())
    if args.json:
        print_json(out)
        return 0
    print(
        f"Rare-event yield ({args.method}) — {res.n_evals:,} lane-model evaluations, "
        f"{res.wall_s:.1f} s, {'reliable' if res.reliable else 'NOT RELIABLE (see diagnostics)'}"
    )
    for name, t in (("lane", res.lane), ("engine", res.engine), ("switch", res.switch)):
        print(f"  {name:<8} {t.value:12.8f}   [{t.lo:.8f}, {t.hi:.8f}]")
    if res.failure_modes:
        print("\nfailure modes (probability share of the design points):")
        for name, frac in sorted(res.failure_modes.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<10} {frac:7.1%}")
    if res.attribution:
        print("\nFORM importance factors α² of the spreads:")
        for name, a in list(res.attribution.items())[:6]:
            print(f"  {name:<22} {a:6.3f}")
    return 0
