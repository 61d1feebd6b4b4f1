"""`cpojax optimize`: process targets that reach a target yield at least cost, or that
minimise the cost per good switch (``--objective cost-per-good-switch``)."""

from __future__ import annotations

from cpojax import plots
from cpojax.cli.common import add_out_args, add_scenario_args, load_scenario, print_json, run_folder
from cpojax.process_opt import OBJECTIVES, optimize_process

__all__ = ["register"]


def register(sub) -> None:
    op = sub.add_parser(
        "optimize",
        help="process targets that reach a target yield at least cost (or minimise the cost "
        "per good switch)",
    )
    add_scenario_args(op)
    op.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="yield",
        help="yield: reach --target-yield at least process cost (default); "
        "cost-per-good-switch: minimise the capital cost per good CPO switch (the "
        "scenario's [cost] section, process cost of the free keys included; docs/cost.md)",
    )
    op.add_argument(
        "--target-yield",
        type=float,
        metavar="Y",
        help="yield to reach at --level, in (0, 1) (required with --objective yield)",
    )
    op.add_argument("--level", choices=("lane", "engine", "switch"), default="engine")
    op.add_argument(
        "--free",
        nargs="+",
        metavar="KEY",
        help="scenario keys that may move (default: a curated set)",
    )
    op.add_argument("--steps", type=int, default=200)
    op.add_argument(
        "--aim-margin",
        type=float,
        default=None,
        metavar="F",
        help="aim at a failure probability this fraction below the allowed one, in [0, 1) "
        "(default 0.2 with --objective yield: the verified lower bound then clears the "
        "target; 0 is the bare target)",
    )
    op.add_argument("--seed", type=int, default=0)
    add_out_args(op, "optimized.toml, optimize.json and trajectory.png")
    op.set_defaults(func=_cmd_optimize)


def _cmd_optimize(args) -> int:
    by_cost = args.objective != "yield"
    if not by_cost and args.target_yield is None:
        raise ValueError("--target-yield is required with --objective yield")
    if by_cost and args.target_yield is not None:
        raise ValueError(
            "--target-yield applies to --objective yield only: cost-per-good-switch finds "
            "the engine yield that minimises the cost"
        )
    if by_cost and args.level != "engine":
        raise ValueError("--level applies to --objective yield only")
    if by_cost and args.aim_margin is not None:
        raise ValueError("--aim-margin applies to --objective yield only")
    sc = load_scenario(args.config, args.set)
    if args.steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {args.steps}")
    if by_cost:
        return _cmd_cost(args, sc)
    names = ("optimize.json", "optimized.toml", "trajectory.png")
    with run_folder(args, names) as rf:
        res = optimize_process(
            sc,
            target_yield=args.target_yield,
            level=args.level,
            free=args.free or None,
            seed=args.seed,
            steps=args.steps,
            aim_margin=args.aim_margin,
        )
        out = res.to_dict()
        if rf is not None:
            rf.write_json("optimize.json", out)
            rf.write_text("optimized.toml", res.scenario.to_toml())
            target = res.target_yield
            if args.level == "switch":
                target = target ** (1 / sc.system.engines_per_switch)
            rf.save_figure(
                "trajectory.png",
                plots.optimize_trajectory(
                    res.history,
                    target=target,
                    level="engine" if args.level == "switch" else args.level,
                ),
            )
    code = 0 if out["verified"] else 1
    if args.json:
        print_json(out)
        return code
    _print_rows(out)
    lo, hi = out["verified_ci"]
    print(
        f"verified {args.level} yield {out['verified_yield']:.5f} [{lo:.5f}, {hi:.5f}] "
        f"(crude MC on an independent seed) — target {args.target_yield}: "
        f"{'REACHED' if out['verified'] else 'NOT REACHED at 95 % confidence'}"
    )
    if args.out:
        print(
            f"wrote {args.out}/optimized.toml (use with `cpojax yield --config`), optimize.json, trajectory.png"
        )
    return code


def _cmd_cost(args, sc) -> int:
    """--objective cost-per-good-switch."""
    names = ("optimize.json", "optimized.toml", "trajectory.png")
    with run_folder(args, names) as rf:
        res = optimize_process(
            sc,
            objective=args.objective,
            free=args.free or None,
            seed=args.seed,
            steps=args.steps,
        )
        out = res.to_dict()
        if rf is not None:
            rf.write_json("optimize.json", out)
            rf.write_text("optimized.toml", res.scenario.to_toml())
            rf.save_figure("trajectory.png", plots.cost_trajectory(res.history))
    code = 0 if out["verified"] else 1
    if args.json:
        print_json(out)
        return code
    _print_rows(out)
    sw = out["cost_per_good_switch"]
    b, a = sw["before"], sw["after"]

    def point(p):
        y = p["engine_yield"]
        lo, hi = p["ci_usd"]
        return (
            f"{p['usd']:,.0f} $ [{lo:,.0f}, {hi:,.0f}] at engine yield {y['yield']:.5f} "
            f"[{y['ci'][0]:.5f}, {y['ci'][1]:.5f}]"
        )

    print(
        f"cost per good switch ({sw['failure_policy']}, {sw['engines_per_switch']} engines; "
        f"{sw['yield_entering_cost']}; crude MC on an independent seed):"
    )
    print(f"  before  {point(b)}")
    print(f"  after   {point(a)}")
    print(
        f"  with energy: {b['tco_usd']:,.0f} $ → {a['tco_usd']:,.0f} $; engine cost "
        f"{b['engine_usd']:.2f} → {a['engine_usd']:.2f} $ (process change "
        f"{sw['process_usd_per_engine']:+.2f} $ per engine, written to cost.engine_usd)"
    )
    print(
        "cost per good switch "
        + ("LOWERED (95 % intervals apart)" if out["verified"] else "NOT verifiably lowered")
    )
    if args.out:
        print(
            f"wrote {args.out}/optimized.toml (use with `cpojax breakeven --config` or "
            "`--compare`), optimize.json, trajectory.png"
        )
    return code


def _print_rows(out) -> None:
    print(f"{'key':<38}{'before':>12}{'after':>12}{'cost before':>13}{'cost after':>12}")
    for r in out["rows"]:
        print(
            f"{r['key']:<38}{r['before']:>12.4g}{r['after']:>12.4g}{r['cost_before']:>13.2f}"
            f"{r['cost_after']:>12.2f}"
        )
    print(f"\ncost of the free items: {out['cost_before']:.2f} → {out['cost_after']:.2f} $/engine")
