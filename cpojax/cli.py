"""The `cpojax` command: every sub-command is a thin layer over one public function."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence

from cpojax.estimators.result import InvalidModelOutput
from cpojax.scenario import Scenario, ScenarioError

__all__ = ["main"]


def _parse_set(items: Sequence[str]) -> dict:
    """`key=value` pairs; values are TOML literals (1.5, 3, "x", true), bare words are strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key] = value
    return out


def load_scenario(config: str | None, sets: Sequence[str]) -> Scenario:
    """Scenario from an optional TOML file plus `--set` overrides (same validation)."""
    sc = Scenario.load(config) if config else Scenario.default()
    updates = _parse_set(sets)
    return sc.replace(updates) if updates else sc


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="scenario TOML file (any subset of keys)")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a scenario key by dotted path, e.g. design.ring.bias_nm=5.5 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def _cmd_scenario(args) -> int:
    sc = load_scenario(args.config, args.set)
    sys.stdout.write(sc.to_toml())
    return 0


def _cmd_link(args) -> int:
    from cpojax.budget import LIMIT_TEXT, STAGES, nominal_budget

    sc = load_scenario(args.config, args.set)
    rep = nominal_budget(sc)
    if args.json:
        print(json.dumps(rep))
        return 0 if rep["pass"] else 1
    corners = rep["corners"]
    head = [f"TE {c['engine_temp_c']:g}/TL {c['laser_temp_c']:g} °C" for c in corners]
    w = max(len(h) for h in head) + 2
    print(
        f"Nominal lane budget — {sc.system.lanes_per_engine} × {sc.system.lane_rate_gbps:g}G "
        f"{sc.system.modulation.upper()}, {sc.design.laser.wavelength_nm:g} nm, "
        f"1 laser : {sc.system.lanes_per_laser} lanes"
    )
    print(f"{'stage':<38}{'unit':>7}" + "".join(f"{h:>{w}}" for h in head))
    for key, label, unit in STAGES:
        vals = "".join(f"{c[key]:>{w}.3f}" for c in corners)
        print(f"{label:<38}{unit:>7}{vals}")
    r = rep["ring"]
    print(
        f"\nring: FSR {r['fsr_nm']:.2f} nm, FWHM {r['fwhm_nm'] * 1e3:.0f} pm, Q_L {r['loaded_q']:.0f}, "
        f"bandwidth {r['bandwidth_ghz']:.1f} GHz, lock detuning {r['lock_detuning_nm'] * 1e3:.0f} pm; "
        f"worst heater power in the window {rep['heater_worst_mw']:.1f} mW"
    )
    print("\nlimit states (g >= 0 passes):")
    for name, g in rep["limit_states"].items():
        verdict = "PASS" if g >= 0 else "FAIL"
        print(
            f"  {verdict}  {name:<10} g = {g:+9.3f} {rep['limit_units'][name]:<7} ({LIMIT_TEXT[name]})"
        )
    print(f"\nlane: {'PASS' if rep['pass'] else 'FAIL'}")
    return 0 if rep["pass"] else 1


class _Progress:
    """Progress bar on stderr: in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, label: str, enabled: bool = True):
        import time

        self.label, self.enabled, self.t0, self.last = label, enabled, time.perf_counter(), 0.0
        self.tty = sys.stderr.isatty()
        self._time = time.perf_counter

    def __call__(self, done: int, total: int, unit_per_item: int = 1) -> None:
        if not self.enabled:
            return
        now = self._time()
        if not self.tty and now - self.last < 5.0 and done < total:
            return
        self.last = now
        rate = done * unit_per_item / max(now - self.t0, 1e-9)
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        msg = f"{self.label} [{bar:<30}] {done}/{total} ({frac:5.1%}), {rate:,.0f} lane-samples/s"
        if self.tty:
            sys.stderr.write("\r" + msg + ("\n" if done >= total else ""))
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def _cmd_yield(args) -> int:
    import hashlib
    import os

    from cpojax.scenario import atomic_write_text
    from cpojax.yields import estimate_yield

    sc = load_scenario(args.config, args.set)
    if args.method != "mc":
        return _yield_rare(args, sc)
    state = None
    state_path = None
    fingerprint = hashlib.sha256(
        f"{sc.to_toml(comments=False)}|{args.engines}|{args.seed}".encode()
    ).hexdigest()
    if args.resume and not args.out:
        raise ScenarioError("--resume needs --out DIR (the folder of the interrupted run)")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        state_path = os.path.join(args.out, "state.json")
        if args.resume:
            if not os.path.exists(state_path):
                raise ScenarioError(f"--resume: no checkpoint {state_path} to resume from")
            with open(state_path, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.get("fingerprint") != fingerprint:
                raise ScenarioError(
                    f"--resume: {state_path} belongs to a different scenario, --engines or --seed"
                )
            state = saved["state"]

    def checkpoint(st):
        if state_path:
            atomic_write_text(state_path, json.dumps({"fingerprint": fingerprint, "state": st}))

    lanes = sc.system.lanes_per_engine
    bar = _Progress("yield", enabled=not args.quiet)
    res = estimate_yield(
        sc,
        seed=args.seed,
        n_engines=args.engines,
        chunk_blocks=args.chunk_blocks,
        progress=lambda d, t: bar(d, t, lanes),
        state=state,
        checkpoint=checkpoint if state_path else None,
        devices=args.devices,
    )
    out = res.to_dict()
    if args.out:
        from cpojax import plots

        atomic_write_text(os.path.join(args.out, "yield.json"), json.dumps(out, indent=1))
        atomic_write_text(os.path.join(args.out, "scenario.toml"), sc.to_toml())
        plots.save_atomic(
            plots.margin_histogram(res.histograms["optical"]),
            os.path.join(args.out, "margin_hist.png"),
        )
        plots.save_atomic(
            plots.heater_histogram(res.histograms["thermal"], sc.design.ring.heater_max_mw),
            os.path.join(args.out, "heater_hist.png"),
        )
        plots.save_atomic(
            plots.yield_vs_lanes(res.yield_vs_lanes, res.independent_vs_lanes),
            os.path.join(args.out, "yield_vs_lanes.png"),
        )
        plots.save_atomic(
            plots.failure_pareto(res.failure_modes, res.attribution),
            os.path.join(args.out, "failure_pareto.png"),
        )
    if args.json:
        print(json.dumps(out))
        return 0

    def row(name, t):
        y, (lo, hi) = t
        return f"  {name:<8} {y:10.6f}   [{lo:.6f}, {hi:.6f}]"

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
    print("\nfailure modes (share of failing lanes; a lane may fail several):")
    for name, frac in sorted(res.failure_modes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<10} {frac:7.1%}   ({res.lane_fail_fraction[name]:.2e} of all lanes)")
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


def _enable_compile_cache() -> None:
    """Persistent XLA compilation cache for the CLI (CPOJAX_CACHE_DIR; empty disables)."""
    import os

    path = os.environ.get(
        "CPOJAX_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "cpojax", "jax")
    )
    if not path:
        return
    import jax

    try:
        os.makedirs(path, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except (OSError, AttributeError):  # read-only home, or an older JAX: run uncached
        pass


def _yield_rare(args, sc) -> int:
    import os

    from cpojax.rare_yield import estimate_yield_rare
    from cpojax.scenario import atomic_write_text

    if args.resume:
        raise ScenarioError("--resume applies to --method mc only (rare-event runs are short)")
    res = estimate_yield_rare(sc, method=args.method, seed=args.seed)
    out = res.to_dict()
    out["n_engines"] = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        atomic_write_text(os.path.join(args.out, "yield.json"), json.dumps(out, indent=1))
        atomic_write_text(os.path.join(args.out, "scenario.toml"), sc.to_toml())
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"Rare-event yield ({args.method}) — {res.lane_evaluations:,} lane-model evaluations, "
        f"{res.wall_s:.1f} s, {'reliable' if res.reliable else 'NOT RELIABLE (see diagnostics)'}"
    )
    for name, (y, (lo, hi)) in (("lane", res.lane), ("engine", res.engine), ("switch", res.switch)):
        print(f"  {name:<8} {y:12.8f}   [{lo:.8f}, {hi:.8f}]")
    if res.failure_modes:
        print("\nfailure modes (probability share of the design points):")
        for name, frac in sorted(res.failure_modes.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<10} {frac:7.1%}")
    if res.attribution:
        print("\nFORM importance factors α² of the spreads:")
        for name, a in list(res.attribution.items())[:6]:
            print(f"  {name:<22} {a:6.3f}")
    return 0


def _cmd_sensitivity(args) -> int:
    import os

    from cpojax.scenario import atomic_write_text
    from cpojax.sensitivity import sensitivity

    sc = load_scenario(args.config, args.set)
    res = sensitivity(sc, level=args.level, seed=args.seed, n=args.samples)
    out = res.to_dict()
    if args.out:
        from cpojax import plots

        os.makedirs(args.out, exist_ok=True)
        atomic_write_text(os.path.join(args.out, "sensitivity.json"), json.dumps(out, indent=1))
        top = [r for r in res.rows if r["elasticity"] != 0][:25]
        plots.save_atomic(
            plots.bar_ranked(
                [r["key"] for r in top],
                [r["elasticity"] for r in top],
                xlabel=f"d({args.level} yield) / d(log parameter)",
                title=f"Sensitivity of {args.level} yield (elasticity)",
            ),
            os.path.join(args.out, "sensitivity.png"),
        )
    if args.json:
        print(json.dumps(out))
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


def _cmd_optimize(args) -> int:
    import os

    from cpojax.process_opt import optimize_process
    from cpojax.scenario import atomic_write_text

    sc = load_scenario(args.config, args.set)
    res = optimize_process(
        sc,
        target_yield=args.target_yield,
        level=args.level,
        free=args.free or None,
        seed=args.seed,
        steps=args.steps,
    )
    out = res.to_dict()
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from cpojax import plots

        os.makedirs(args.out, exist_ok=True)
        atomic_write_text(os.path.join(args.out, "optimize.json"), json.dumps(out, indent=1))
        res.scenario.save(os.path.join(args.out, "optimized.toml"))
        h = res.history
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(h["yield"])
        axes[0].axhline(
            res.target_yield
            if args.level != "switch"
            else res.target_yield ** (1 / sc.system.engines_per_switch),
            color="k",
            ls="--",
        )
        axes[0].set_title(f"{'engine' if args.level == 'switch' else args.level} yield per step")
        axes[1].plot(h["beta"])
        axes[1].set_title("β = Φ⁻¹(yield)")
        axes[2].plot(h["cost"])
        axes[2].set_title("cost [$ per engine + 1]")
        for a in axes:
            a.set_xlabel("step")
        plots.save_atomic(fig, os.path.join(args.out, "trajectory.png"))
    if args.json:
        print(json.dumps(out))
        return 0 if res.verified else 1
    print(f"{'key':<38}{'before':>12}{'after':>12}{'cost before':>13}{'cost after':>12}")
    for r in res.rows:
        print(
            f"{r['key']:<38}{r['before']:>12.4g}{r['after']:>12.4g}{r['cost_before']:>13.2f}{r['cost_after']:>12.2f}"
        )
    print(f"\ncost of the free items: {res.cost_before:.2f} → {res.cost_after:.2f} $/engine")
    lo, hi = res.verified_ci
    print(
        f"verified {res.level} yield {res.verified_yield:.5f} [{lo:.5f}, {hi:.5f}] "
        f"(crude MC on an independent seed) — target {res.target_yield}: "
        f"{'REACHED' if res.verified else 'NOT REACHED at 95 % confidence'}"
    )
    if args.out:
        print(
            f"wrote {args.out}/optimized.toml (use with `cpojax yield --config`), optimize.json, trajectory.png"
        )
    return 0 if res.verified else 1


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the `cpojax` command."""
    p = argparse.ArgumentParser(
        prog="cpojax",
        description="Co-packaged optics link and manufacturing-yield simulator (JAX).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("scenario", help="print the scenario as a commented TOML file")
    _add_scenario_args(sp)
    sp.set_defaults(func=_cmd_scenario)

    lp = sub.add_parser("link", help="nominal lane budget at every operating corner")
    _add_scenario_args(lp)
    lp.set_defaults(func=_cmd_link)

    yp = sub.add_parser("yield", help="Monte Carlo lane / engine / switch yield with failure modes")
    _add_scenario_args(yp)
    yp.add_argument(
        "--engines",
        type=int,
        default=131_072,
        metavar="N",
        help="engines to simulate, rounded up to blocks of 4096 (default 131072)",
    )
    yp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    yp.add_argument(
        "--out",
        metavar="DIR",
        help="write yield.json, scenario.toml and figures here; "
        "checkpoints the run so that --resume can finish it",
    )
    yp.add_argument(
        "--resume", action="store_true", help="resume an interrupted run from --out DIR"
    )
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

    sp2 = sub.add_parser("sensitivity", help="gradient of yield wrt every spread and design value")
    _add_scenario_args(sp2)
    sp2.add_argument("--level", choices=("lane", "engine"), default="engine")
    sp2.add_argument(
        "--samples", type=int, default=8192, help="engines (or lanes) sampled, multiple of 8"
    )
    sp2.add_argument("--seed", type=int, default=0)
    sp2.add_argument("--top", type=int, default=12, help="rows shown per section")
    sp2.add_argument("--out", metavar="DIR", help="write sensitivity.json and sensitivity.png here")
    sp2.set_defaults(func=_cmd_sensitivity)

    op = sub.add_parser("optimize", help="process targets that reach a target yield at least cost")
    _add_scenario_args(op)
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
    op.add_argument(
        "--out", metavar="DIR", help="write optimized.toml, optimize.json and trajectory.png"
    )
    op.set_defaults(func=_cmd_optimize)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cpojax` console script; returns the process exit code.

    Exit codes: 0 success (and PASS for `link`), 1 the lane FAILS (`link`) or the
    target is not verified (`optimize`), 2 bad input, 3 the model returned NaN/inf.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _enable_compile_cache()
    try:
        return int(args.func(args))
    except (ScenarioError, ValueError) as e:
        print(f"cpojax: error: {e}", file=sys.stderr)
        return 2
    except InvalidModelOutput as e:
        print(f"cpojax: error: invalid model output: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            "cpojax: interrupted (a run with --out can be finished with --resume)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
