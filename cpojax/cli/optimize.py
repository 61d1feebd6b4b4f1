"""`cpojax optimize`: process targets that reach a target yield at least cost."""

from __future__ import annotations

from cpojax import plots
from cpojax.cli.common import add_out_args, add_scenario_args, load_scenario, print_json, run_folder
from cpojax.process_opt import optimize_process

__all__ = ["register"]


def register(sub) -> None:
    op = sub.add_parser("optimize", help="process targets that reach a target yield at least cost")
    add_scenario_args(op)
    op.add_argument("--target-yield", type=float, required=True, metavar="Y")
    op.add_argument("--level", choices=("lane", "engine", "switch"), default="engine")
    op.add_argument(
        "--free",
        nargs="+",
        metavar="KEY",
        help="scenario keys that may move (default: a curated set)",
    )
    op.add_argument("--steps", type=int, default=200)
    op.add_argument("--seed", type=int, default=0)
    add_out_args(op, "optimized.toml, optimize.json and trajectory.png")
    op.set_defaults(func=_cmd_optimize)


def _cmd_optimize(args) -> int:
    sc = load_scenario(args.config, args.set)
    if args.steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {args.steps}")
    names = ("optimize.json", "optimized.toml", "trajectory.png")
    with run_folder(args, names) as rf:
        res = optimize_process(
            sc,
            target_yield=args.target_yield,
            level=args.level,
            free=args.free or None,
            seed=args.seed,
            steps=args.steps,
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
    print(f"{'key':<38}{'before':>12}{'after':>12}{'cost before':>13}{'cost after':>12}")
    for r in out["rows"]:
        print(
            f"{r['key']:<38}{r['before']:>12.4g}{r['after']:>12.4g}{r['cost_before']:>13.2f}{r['cost_after']:>12.2f}"
        )
    print(f"\ncost of the free items: {out['cost_before']:.2f} → {out['cost_after']:.2f} $/engine")
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
