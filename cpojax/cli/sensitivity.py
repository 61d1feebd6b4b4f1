"""`cpojax sensitivity`: gradient of yield with respect to every spread and design value."""

from __future__ import annotations

from cpojax import plots
from cpojax.cli.common import add_out_args, add_scenario_args, load_scenario, print_json, run_folder
from cpojax.sensitivity import sensitivity

__all__ = ["register"]


def register(sub) -> None:
    sp2 = sub.add_parser("sensitivity", help="gradient of yield wrt every spread and design value")
    add_scenario_args(sp2)
    sp2.add_argument("--level", choices=("lane", "engine"), default="engine")
    sp2.add_argument(
        "--samples", type=int, default=8192, help="engines (or lanes) sampled, multiple of 8"
    )
    sp2.add_argument("--seed", type=int, default=0)
    sp2.add_argument("--top", type=int, default=12, help="rows shown per section")
    add_out_args(sp2, "sensitivity.json and sensitivity.png")
    sp2.set_defaults(func=_cmd_sensitivity)


def _cmd_sensitivity(args) -> int:
    sc = load_scenario(args.config, args.set)
    with run_folder(args, ("sensitivity.json", "sensitivity.png")) as rf:
        res = sensitivity(sc, level=args.level, seed=args.seed, n=args.samples)
        out = res.to_dict()
        if rf is not None:
            rf.write_json("sensitivity.json", out)
            top = [r for r in res.rows if r["elasticity"] != 0][:25]
            rf.save_figure(
                "sensitivity.png",
                plots.bar_ranked(
                    [r["key"] for r in top],
                    [r["elasticity"] for r in top],
                    xlabel=f"d({args.level} yield) / d(log parameter)",
                    title=f"Sensitivity of {args.level} yield (elasticity)",
                ),
            )
    if args.json:
        print_json(out)
        return 0
    print(
        f"Sensitivity of {args.level} yield (smoothed yield {res.yield_smoothed:.4f}, "
        f"{res.n} samples); elasticity = d yield / d log p, ± 1 standard error"
    )
    for title, pref in (
        ("spreads (most negative = tighten first)", "spread."),
        ("design values", "design."),
    ):
        rows = [r for r in res.rows if r["key"].startswith(pref) and r["elasticity"] != 0]
        if pref == "spread.":
            rows.sort(key=lambda r: r["elasticity"])
        print(f"\n{title}:")
        for r in rows[: args.top]:
            print(
                f"  {r['key']:<42} {r['elasticity']:+9.4f} ± {r['elasticity_se']:.4f}   (value {r['value']:g})"
            )
    return 0
