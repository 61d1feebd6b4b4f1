"""The `cpojax` command: each sub-command parses, calls one public function, renders,
and returns the exit code.

Exit codes: 0 success (and PASS for ``link``); 1 the lane FAILS (``link``) or the
target is not verified (``optimize``); 2 bad input (scenario, arguments, output
folder); 3 the model returned NaN/inf; 4 an internal error (a bug: the traceback
is printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
import traceback
from collections.abc import Sequence

from cpojax import outputs, plots
from cpojax.budget import STAGES, nominal_budget
from cpojax.estimators.result import InvalidModelOutput
from cpojax.model import LIMIT_STATES
from cpojax.outputs import OutputError, RunFolder
from cpojax.process_opt import optimize_process
from cpojax.rare_yield import estimate_yield_rare
from cpojax.scenario import Scenario, ScenarioError
from cpojax.sensitivity import sensitivity

__all__ = ["EXIT", "console", "main"]

#: Exit codes (see the module docstring).
EXIT = {"ok": 0, "fail": 1, "input": 2, "model": 3, "internal": 4, "interrupted": 130}
#: Largest scenario file read (a TOML scenario is a few kB).
MAX_CONFIG_BYTES = 1 << 20
_LIMIT_TEXT = {ls.name: ls.text for ls in LIMIT_STATES}


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
        if key in out:
            raise ScenarioError(f"--set {key} is given twice")
        out[key] = value
    return out


def _read_config(path: str) -> Scenario:
    """A scenario file, read with a size bound (``--config /dev/zero`` must not hang)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"cannot read scenario file {path!r}: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ScenarioError(
            f"{path}: larger than {MAX_CONFIG_BYTES} bytes; a scenario file is a few kB of TOML"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    return Scenario.from_toml(text, source=path)


def load_scenario(config: str | None, sets: Sequence[str]) -> Scenario:
    """Scenario from an optional TOML file plus `--set` overrides (same validation)."""
    sc = _read_config(config) if config else Scenario.default()
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


def _add_out_args(p: argparse.ArgumentParser, what: str, *, resumable: bool = False) -> None:
    p.add_argument("--out", metavar="DIR", help=f"write {what} here (probed before computing)")
    p.add_argument(
        "--force",
        action="store_true",
        help="discard an unfinished run and earlier outputs in --out DIR",
    )
    if resumable:
        p.add_argument(
            "--resume", action="store_true", help="finish an interrupted run from --out DIR"
        )


class _Progress:
    """Progress bar on stderr: in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled, self.t0, self.last = label, enabled, time.perf_counter(), 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, unit_per_item: int = 1) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
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


def _print_json(obj) -> None:
    print(outputs.strict_json(obj))


# --------------------------------------------------------------------------- scenario, link
def _cmd_scenario(args) -> int:
    sc = load_scenario(args.config, args.set)
    sys.stdout.write(sc.to_toml())
    return 0


def _cmd_link(args) -> int:
    sc = load_scenario(args.config, args.set)
    rep = nominal_budget(sc)
    code = 0 if rep.passes else 1
    if args.json:
        _print_json(rep.to_dict())
        return code
    corners = rep.corners
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
    r = rep.ring
    print(
        f"\nring: FSR {r['fsr_nm']:.2f} nm, FWHM {r['fwhm_nm'] * 1e3:.0f} pm, Q_L {r['loaded_q']:.0f}, "
        f"bandwidth {r['bandwidth_ghz']:.1f} GHz, lock detuning {r['lock_detuning_nm'] * 1e3:.0f} pm; "
        f"worst heater power in the window {rep.heater_worst_mw:.1f} mW"
    )
    print("\nlimit states (g >= 0 passes):")
    for name, g in rep.limit_states.items():
        verdict = "PASS" if g >= 0 else "FAIL"
        print(
            f"  {verdict}  {name:<10} g = {g:+9.3f} {rep.limit_units[name]:<7} ({_LIMIT_TEXT[name]})"
        )
    print(f"\nlane: {'PASS' if rep.passes else 'FAIL'}")
    return code


# --------------------------------------------------------------------------- yield
def _cmd_yield(args) -> int:
    sc = load_scenario(args.config, args.set)
    if args.method != "mc":
        return _yield_rare(args, sc)
    if (args.resume or args.force) and not args.out:
        raise OutputError("--resume and --force need --out DIR (the folder of the run)")
    lanes = sc.system.lanes_per_engine
    bar = _Progress("yield", enabled=not args.quiet)
    res = outputs.run_yield(
        sc,
        args.out,
        resume=args.resume,
        force=args.force,
        progress=lambda d, t: bar(d, t, lanes),
        on_folder=lambda rf: setattr(args, "_folder", rf),
        seed=args.seed,
        n_engines=args.engines,
        chunk_blocks=args.chunk_blocks,
        devices=args.devices,
    )
    if args.json:
        _print_json(res.to_dict())
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


def _yield_rare(args, sc) -> int:
    if args.resume:
        raise OutputError("--resume applies to --method mc only (rare-event runs are short)")
    with _folder(args, ("yield.json", "scenario.toml")) as rf:
        res = estimate_yield_rare(sc, method=args.method, seed=args.seed)
        out = res.to_dict()
        out["n_engines"] = None
        if rf is not None:
            rf.write_json("yield.json", out)
            rf.write_text("scenario.toml", sc.to_toml())
    if args.json:
        _print_json(out)
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


class _NoFolder:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _folder(args, names: Sequence[str]):
    """A RunFolder for --out (probed and locked before any computation), or a no-op."""
    if not getattr(args, "out", None):
        if getattr(args, "force", False):
            raise OutputError("--force needs --out DIR")
        return _NoFolder()
    return RunFolder(args.out, force=args.force, outputs=names, checkpointed=False)


# --------------------------------------------------------------------------- sensitivity
def _cmd_sensitivity(args) -> int:
    sc = load_scenario(args.config, args.set)
    with _folder(args, ("sensitivity.json", "sensitivity.png")) as rf:
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
        _print_json(out)
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


# --------------------------------------------------------------------------- optimize
def _cmd_optimize(args) -> int:
    sc = load_scenario(args.config, args.set)
    if args.steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {args.steps}")
    names = ("optimize.json", "optimized.toml", "trajectory.png")
    with _folder(args, names) as rf:
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
        _print_json(out)
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


# --------------------------------------------------------------------------- parser, main
def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the `cpojax` command."""
    p = argparse.ArgumentParser(
        prog="cpojax",
        description="Co-packaged optics link and manufacturing-yield simulator (JAX).",
        epilog="exit codes: 0 ok, 1 lane fails / target not verified, 2 bad input, "
        "3 model returned NaN/inf, 4 internal error, 130 interrupted",
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
    yp.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64) (default 0)")
    _add_out_args(yp, "yield.json, scenario.toml and figures; checkpoints the run", resumable=True)
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
    _add_out_args(sp2, "sensitivity.json and sensitivity.png")
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
    _add_out_args(op, "optimized.toml, optimize.json and trajectory.png")
    op.set_defaults(func=_cmd_optimize)
    return p


def _interrupted_message(args) -> str:
    rf = getattr(args, "_folder", None)
    if rf is not None and os.path.exists(rf.file(outputs.CHECKPOINT)):
        return f"cpojax: interrupted; finish the run with --resume --out {rf.path}"
    return "cpojax: interrupted (no checkpoint was written yet: nothing to resume)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `cpojax` command; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    outputs.enable_compile_cache()
    try:
        return int(args.func(args))
    except (ScenarioError, OutputError, ValueError, TypeError) as e:
        print(f"cpojax: error: {e}", file=sys.stderr)
        return EXIT["input"]
    except InvalidModelOutput as e:
        print(f"cpojax: error: invalid model output: {e}", file=sys.stderr)
        return EXIT["model"]
    except KeyboardInterrupt:
        print(_interrupted_message(args), file=sys.stderr)
        return EXIT["interrupted"]
    except Exception:
        traceback.print_exc()
        print("cpojax: internal error (a bug; please report the traceback above)", file=sys.stderr)
        return EXIT["internal"]


def console() -> None:
    """Console-script entry point.

    After an interrupt the process leaves with ``os._exit``: XLA may still have
    work in flight on its own threads, and a normal interpreter shutdown racing
    them can crash (a segfault instead of exit code 130). Output is flushed first.
    """
    code = main()
    if code == EXIT["interrupted"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
