"""The `cpojax` command: each sub-command (one module of this package) parses, calls one
public function, renders, and returns the exit code.

Exit codes: 0 success (and PASS for ``link``); 1 the lane FAILS (``link``) or the
target is not verified (``optimize``); 2 bad input (scenario, arguments, output
folder); 3 the model returned NaN/inf; 4 an internal error (a bug: the traceback
is printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from cpojax import outputs
from cpojax.cli import breakeven, link, optimize, sensitivity, sweep, yields
from cpojax.cli.common import load_scenario
from cpojax.estimators.result import InvalidModelOutput
from cpojax.outputs import OutputError
from cpojax.scenario import ScenarioError

__all__ = ["EXIT", "build_parser", "console", "load_scenario", "main"]

#: Exit codes (see the module docstring).
EXIT = {"ok": 0, "fail": 1, "input": 2, "model": 3, "internal": 4, "interrupted": 130}
#: The sub-command modules, in the order of `cpojax --help`.
COMMANDS = (link, yields, sensitivity, optimize, sweep, breakeven)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the `cpojax` command."""
    p = argparse.ArgumentParser(
        prog="cpojax",
        description="Co-packaged optics link and manufacturing-yield simulator (JAX).",
        epilog="exit codes: 0 ok, 1 lane fails / target not verified, 2 bad input, "
        "3 model returned NaN/inf, 4 internal error, 130 interrupted",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS:
        cmd.register(sub)
    return p


def _interrupted_message(args) -> str:
    rf = getattr(args, "run_folder", None)
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
    except BrokenPipeError:  # the reader went away (`cpojax yield | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT["ok"]
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
