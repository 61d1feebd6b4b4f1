"""`cpojax breakeven`: cost per good switch, CPO against pluggables, and the breakeven
engine yield (docs/cost.md)."""

from __future__ import annotations

import math
import os

from cpojax import plots
from cpojax.cli.common import (
    Progress,
    add_out_args,
    add_scenario_args,
    load_scenario,
    print_json,
    run_folder,
)
from cpojax.cost import analyse_breakeven
from cpojax.scenario import Scenario
from cpojax.validate import SEED_MAX

__all__ = ["register"]

#: Files written by --out.
OUTPUTS = ("breakeven.json", "breakeven.png")


def register(sub) -> None:
    bp = sub.add_parser(
        "breakeven",
        help="cost per good switch, CPO against pluggables, and the breakeven engine yield",
        description="Cost per good switch and per Tb/s of a CPO switch (known-good-engine "
        "test, attach, switch test, scrap or rework; prices in the scenario's [cost] "
        "section) against a pluggable switch, the engine yield at which CPO breaks even "
        "(capital, and capital + energy) and where the scenario sits. See docs/cost.md.",
    )
    add_scenario_args(bp)
    bp.add_argument(
        "--engine-yield",
        type=float,
        metavar="Y",
        help="use this engine yield in (0, 1] instead of simulating the scenario's",
    )
    bp.add_argument(
        "--engines",
        type=int,
        default=65_536,
        metavar="N",
        help="engines to simulate for the engine yield (default 65536)",
    )
    bp.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64) (default 0)")
    bp.add_argument(
        "--compare",
        metavar="FILE",
        help="a second scenario (e.g. optimized.toml of `cpojax optimize`) placed on the "
        "same curves, simulated on the same engines",
    )
    bp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_out_args(bp, "breakeven.json and breakeven.png")
    bp.set_defaults(func=_cmd_breakeven)


def _check_args(args) -> None:
    y = args.engine_yield
    if y is not None and not (math.isfinite(y) and 0.0 < y <= 1.0):
        raise ValueError(f"--engine-yield must be a number in (0, 1], got {y}")
    if args.engines < 1:
        raise ValueError(f"--engines must be an integer >= 1, got {args.engines}")
    if not 0 <= args.seed < SEED_MAX:
        raise ValueError(f"--seed must be an integer in [0, 2**64), got {args.seed}")


def _usd(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.0f} $"


def _yield(x) -> str:
    return "none" if x is None else f"{x:.4f}"


def _figure(out: dict):
    cmp = out["compare"]
    return plots.breakeven_curves(
        out["curves"],
        engine_yield=(out["engine_yield"], *out["engine_yield_ci"]),
        breakeven_capex=out["breakeven"]["engine_yield_capex"],
        breakeven_tco=out["breakeven"]["engine_yield_tco"],
        point_capex_usd=out["cpo"]["cost_per_good_switch_usd"],
        compare=None
        if cmp is None
        else {
            "label": cmp["label"],
            "engine_yield": (cmp["engine_yield"], *cmp["engine_yield_ci"]),
            "capex_usd": cmp["cpo"]["cost_per_good_switch_usd"],
        },
    )


def _cmd_breakeven(args) -> int:
    _check_args(args)
    sc = load_scenario(args.config, args.set)
    compare = Scenario.load(args.compare) if args.compare else None
    lanes = sc.system.lanes_per_engine
    bar = Progress("yield", enabled=not args.quiet)
    with run_folder(args, OUTPUTS) as rf:
        res = analyse_breakeven(
            sc,
            engine_yield=args.engine_yield,
            seed=args.seed,
            n_engines=args.engines,
            compare=compare,
            compare_label=os.path.basename(args.compare) if args.compare else "compared",
            progress=lambda d, t: bar(d, t, lanes),
        )
        out = res.to_dict()
        if rf is not None:
            rf.write_json("breakeven.json", out)
            rf.save_figure("breakeven.png", _figure(out))
    if args.json:
        print_json(out)
        return 0
    _print(sc, out, args)
    return 0


def _print(sc, out: dict, args) -> None:
    s, cpo, pl, be = sc.system, out["cpo"], out["pluggable"], out["breakeven"]
    flow = cpo["flow"]
    lo, hi = out["engine_yield_ci"]
    print(
        f"CPO against pluggables — {out['capacity_tbps']:g} Tb/s switch, "
        f"{s.engines_per_switch} engines × {s.lanes_per_engine * s.lane_rate_gbps / 1000:g} Tb/s, "
        f"failure policy {cpo['failure_policy']}"
    )
    print(
        f"engine yield {out['engine_yield']:.4f} [{lo:.4f}, {hi:.4f}]: {out['engine_yield_source']}"
    )
    print(
        f"engine power (physics) {cpo['engine_power_w']:.2f} W; "
        f"pluggable module {sc.cost.pluggable_w_per_module:g} W\n"
    )
    c_lo, c_hi = cpo["cost_per_good_switch_ci_usd"]
    t_lo, t_hi = cpo["tco_per_good_switch_ci_usd"]
    print(f"{'':<20}{'CPO, per good switch':>38}{'pluggable, per switch':>24}")
    print(
        f"{'capital':<20}{_usd(cpo['cost_per_good_switch_usd']):>14} "
        f"[{_usd(c_lo)}, {_usd(c_hi)}]".ljust(58)
        + f"{_usd(pl['cost_per_switch_usd']):>24}"
    )
    print(
        f"{'  per Tb/s':<20}{_usd(cpo['cost_per_tbps_usd']):>14}".ljust(58)
        + f"{_usd(pl['cost_per_tbps_usd']):>24}"
    )
    print(
        f"{'capital + energy':<20}{_usd(cpo['tco_per_good_switch_usd']):>14} "
        f"[{_usd(t_lo)}, {_usd(t_hi)}]".ljust(58)
        + f"{_usd(pl['tco_per_switch_usd']):>24}"
    )
    print(
        f"{'  per Tb/s':<20}{_usd(cpo['tco_per_tbps_usd']):>14}".ljust(58)
        + f"{_usd(pl['tco_per_tbps_usd']):>24}"
    )
    print(
        f"\nflow: {flow['kge_pass_rate']:.1%} of built engines pass the KGE test "
        f"({flow['escape_rate']:.2%} of those are bad); {flow['clean_package_rate']:.1%} of "
        f"packages are clean at switch test; {flow['packages_per_good_switch']:.2f} packages, "
        f"{flow['reworks_per_good_switch']:.2f} reworks and "
        f"{flow['engines_built_per_good_switch']:.1f} engines built per good switch"
    )
    print(
        f"one point (0.01) of engine yield is worth {_usd(cpo['usd_per_engine_yield_point'])} "
        "per good switch here"
    )
    print(
        f"\nbreakeven engine yield: capital {_yield(be['engine_yield_capex'])}, "
        f"capital + energy {_yield(be['engine_yield_tco'])}"
    )
    for key in ("engine_yield_capex_reason", "engine_yield_tco_reason"):
        if be[key]:
            print(f"  ({be[key]})")
    print(f"scenario: {be['position_capex']}")
    print(f"          {be['position_tco']}")
    o = out["other_policy"]
    print(
        f"with failure policy {o['failure_policy']} instead: "
        f"{_usd(o['cost_per_good_switch_usd'])} per good switch, breakeven "
        f"{_yield(o['engine_yield_capex'])} (capital), {_yield(o['engine_yield_tco'])} "
        "(capital + energy)"
    )
    cmp = out["compare"]
    if cmp is not None:
        clo, chi = cmp["engine_yield_ci"]
        k_lo, k_hi = cmp["cpo"]["cost_per_good_switch_ci_usd"]
        print(
            f"\n{cmp['label']}: engine yield {cmp['engine_yield']:.4f} [{clo:.4f}, {chi:.4f}], "
            f"engine {cmp['cost_parameters']['engine_usd']:.2f} $; CPO "
            f"{_usd(cmp['cpo']['cost_per_good_switch_usd'])} [{_usd(k_lo)}, {_usd(k_hi)}] per "
            f"good switch, {_usd(cmp['cpo']['tco_per_good_switch_usd'])} with energy"
        )
        print(f"  {cmp['breakeven']['position_capex']}")
        print(f"  {cmp['breakeven']['position_tco']}")
    print("\nassumptions:")
    for a in out["assumptions"]:
        print(f"  - {a}")
    if args.out:
        print(f"\nwrote {args.out}/breakeven.json and breakeven.png")
