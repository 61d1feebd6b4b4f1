"""The `cpojax` command: every sub-command is a thin layer over one public function."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence

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
    print(f"Nominal lane budget — {sc.system.lanes_per_engine} × {sc.system.lane_rate_gbps:g}G "
          f"{sc.system.modulation.upper()}, {sc.design.laser.wavelength_nm:g} nm, "
          f"1 laser : {sc.system.lanes_per_laser} lanes")
    print(f"{'stage':<38}{'unit':>7}" + "".join(f"{h:>{w}}" for h in head))
    for key, label, unit in STAGES:
        vals = "".join(f"{c[key]:>{w}.3f}" for c in corners)
        print(f"{label:<38}{unit:>7}{vals}")
    r = rep["ring"]
    print(f"\nring: FSR {r['fsr_nm']:.2f} nm, FWHM {r['fwhm_nm'] * 1e3:.0f} pm, Q_L {r['loaded_q']:.0f}, "
          f"bandwidth {r['bandwidth_ghz']:.1f} GHz, lock detuning {r['lock_detuning_nm'] * 1e3:.0f} pm; "
          f"worst heater power in the window {rep['heater_worst_mw']:.1f} mW")
    print("\nlimit states (g >= 0 passes):")
    for name, g in rep["limit_states"].items():
        verdict = "PASS" if g >= 0 else "FAIL"
        print(f"  {verdict}  {name:<10} g = {g:+9.3f} {rep['limit_units'][name]:<7} ({LIMIT_TEXT[name]})")
    print(f"\nlane: {'PASS' if rep['pass'] else 'FAIL'}")
    return 0 if rep["pass"] else 1


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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cpojax` console script; returns the process exit code.

    Exit codes: 0 success (and PASS for `link`), 1 the lane FAILS, 2 bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ScenarioError as e:
        print(f"cpojax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
