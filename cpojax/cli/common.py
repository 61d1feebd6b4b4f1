"""Shared pieces of the `cpojax` sub-commands: scenario loading, arguments, progress,
JSON output and the output folder."""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections.abc import Sequence

from cpojax import outputs
from cpojax.model import LIMIT_STATES
from cpojax.outputs import OutputError, RunFolder
from cpojax.scenario import Scenario, ScenarioError

__all__ = [
    "LIMIT_TEXT",
    "Progress",
    "add_out_args",
    "add_scenario_args",
    "load_scenario",
    "parse_set",
    "print_json",
    "run_folder",
]

LIMIT_TEXT = {ls.name: ls.text for ls in LIMIT_STATES}


def parse_set(items: Sequence[str]) -> dict:
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


def load_scenario(config: str | None, sets: Sequence[str]) -> Scenario:
    """Scenario from an optional TOML file plus `--set` overrides (same validation)."""
    sc = Scenario.load(config) if config else Scenario.default()
    updates = parse_set(sets)
    return sc.replace(updates) if updates else sc


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="scenario TOML file (any subset of keys)")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a scenario key by dotted path, e.g. design.ring.bias_nm=5.5 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def add_out_args(p: argparse.ArgumentParser, what: str, *, resumable: bool = False) -> None:
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


class Progress:
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


def print_json(obj) -> None:
    print(outputs.strict_json(obj))


class NoFolder:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def run_folder(args, names: Sequence[str]):
    """A RunFolder for --out (probed and locked before any computation), or a no-op."""
    if not getattr(args, "out", None):
        if getattr(args, "force", False):
            raise OutputError("--force needs --out DIR")
        return NoFolder()
    return RunFolder(args.out, force=args.force, outputs=names, checkpointed=False)
