"""Run folders, checkpoints and the compilation cache: what ``--out`` does, callable
from a notebook.

A :class:`RunFolder` owns one output folder for the length of a run:

* it is probed before any computation (created, written to and read back), so an
  unwritable ``--out`` fails in a second, not after an hour, with an error naming
  the path (:class:`OutputError`, a ``ValueError``: CLI exit code 2);
* a lock file (``.cpojax.lock``, holding the owner's pid and host) keeps two runs
  from writing one folder; a lock left by a process that no longer exists is taken
  over;
* a run never starts over an unfinished checkpoint unless it resumes it or is told
  to discard it (``force``); starting afresh removes the outputs of the previous
  run first, so a folder never mixes two runs;
* every file is written atomically (temporary file + rename, mode 0644 under the
  usual umask), JSON strictly (NaN/inf are refused, never written as ``NaN``).

:func:`run_yield` is ``cpojax yield --out DIR`` as one call.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import jax

from cpojax import plots, yields
from cpojax.fileio import atomic_write_text
from cpojax.scenario import Scenario

__all__ = [
    "CHECKPOINT",
    "OutputError",
    "RunFolder",
    "enable_compile_cache",
    "run_yield",
    "strict_json",
    "write_yield_outputs",
]

#: File name of the checkpoint inside a run folder.
CHECKPOINT = "state.json"
_LOCK = ".cpojax.lock"
#: Files a yield run writes (removed when a new run starts in the folder).
YIELD_FILES = (
    "yield.json",
    "scenario.toml",
    "margin_hist.png",
    "heater_hist.png",
    "yield_vs_lanes.png",
    "failure_pareto.png",
)


class OutputError(ValueError):
    """An output folder or checkpoint cannot be used; the message names the path."""


def strict_json(obj: Any, *, indent: int | None = None) -> str:
    """JSON text of `obj`; NaN/inf become null (strict JSON has no such numbers)."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), indent=indent, allow_nan=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunFolder:
    """One output folder, owned by one run (see the module docstring).

    Use as a context manager (the lock is released on exit, whatever happens)::

        with RunFolder(path, resume=False, force=False, outputs=YIELD_FILES) as rf:
            state = rf.load_checkpoint()      # None unless resuming
            ...
            rf.write_json("yield.json", result.to_dict())

    Args:
      path: the folder (created if missing).
      resume: continue the checkpoint in the folder (it must exist).
      force: discard an unfinished checkpoint and the outputs of an earlier run.
      outputs: names of the files this kind of run writes; the previous run's
        copies are removed when a new run starts.
      checkpointed: whether this kind of run writes a checkpoint at all.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        resume: bool = False,
        force: bool = False,
        outputs: Iterable[str] = (),
        checkpointed: bool = True,
    ):
        self.path = os.fspath(path)
        self.resume, self.force = bool(resume), bool(force)
        self.outputs = tuple(outputs)
        self.checkpointed = checkpointed
        self._locked = False
        if self.resume and self.force:
            raise OutputError("--resume and --force contradict each other: choose one")
        if self.resume and not checkpointed:
            raise OutputError("this command writes no checkpoint, so there is nothing to resume")

    # ---- ownership -------------------------------------------------------
    def __enter__(self) -> RunFolder:
        self._probe()
        self._lock()
        try:
            self._check_checkpoint()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def file(self, name: str) -> str:
        """Path of a file inside the folder."""
        return os.path.join(self.path, name)

    def _probe(self) -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"--out {self.path!r} exists and is not a folder")
        try:
            os.makedirs(self.path, exist_ok=True)
            probe = self.file(".cpojax.probe")
            with open(probe, "w", encoding="utf-8") as f:
                f.write("ok")
            os.unlink(probe)
        except OSError as e:
            raise OutputError(f"--out {self.path!r} is not writable: {e.strerror or e}") from None

    def _lock(self) -> None:
        lock = self.file(_LOCK)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._lock_owner(lock)
                if (
                    owner is not None
                    and owner[1] == socket.gethostname()
                    and not _pid_alive(owner[0])
                ):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(lock)  # stale: its process is gone
                    continue
                who = f"process {owner[0]} on {owner[1]}" if owner else "another run"
                raise OutputError(
                    f"--out {self.path!r} is in use by {who} (lock file {lock}); "
                    "wait for it, or remove the lock file if that run is dead"
                ) from None
            except OSError as e:
                raise OutputError(f"cannot lock --out {self.path!r}: {e.strerror or e}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            self._locked = True
            return
        raise OutputError(f"cannot lock --out {self.path!r}: lock file {lock} keeps reappearing")

    @staticmethod
    def _lock_owner(lock: str) -> tuple[int, str] | None:
        try:
            with open(lock, encoding="utf-8") as f:
                pid, host = f.read().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Remove the lock (idempotent)."""
        if self._locked:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file(_LOCK))
            self._locked = False

    # ---- checkpoint --------------------------------------------------------
    def _check_checkpoint(self) -> None:
        ckpt = self.file(CHECKPOINT)
        exists = os.path.exists(ckpt)
        if self.resume:
            if not exists:
                raise OutputError(
                    f"--resume: no checkpoint {ckpt} to resume from (the run was "
                    "interrupted before its first checkpoint, or --out names another folder)"
                )
            return
        if exists and self.checkpointed and not self.force:
            data = self.load_checkpoint()
            if not data.get("finished"):
                raise OutputError(
                    f"--out {self.path!r} holds an unfinished run ({ckpt}): finish it with "
                    "--resume, or discard it with --force"
                )
        for name in (CHECKPOINT, *self.outputs):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file(name))

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's content, or OutputError naming the file and what is wrong."""
        ckpt = self.file(CHECKPOINT)
        try:
            with open(ckpt, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise OutputError(f"cannot read checkpoint {ckpt}: {e.strerror or e}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise OutputError(f"checkpoint {ckpt} is corrupt (not JSON: {e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
            raise OutputError(
                f"checkpoint {ckpt} is corrupt (expected an object with a 'state' object)"
            )
        st = data["state"]
        missing = [k for k in ("fingerprint", "next_block", "totals") if k not in st]
        if missing or not isinstance(st.get("totals"), dict):
            raise OutputError(
                f"checkpoint {ckpt} is corrupt (state lacks {', '.join(missing) or 'totals'})"
            )
        return data

    def save_checkpoint(self, state: dict[str, Any], *, finished: bool = False) -> None:
        """Write the checkpoint atomically."""
        self.write_text(CHECKPOINT, strict_json({"finished": finished, "state": state}))

    # ---- files -------------------------------------------------------------
    def write_text(self, name: str, text: str) -> str:
        path = self.file(name)
        try:
            atomic_write_text(path, text)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        return path

    def write_json(self, name: str, obj: Any) -> str:
        return self.write_text(name, strict_json(obj, indent=1))

    def save_figure(self, name: str, fig) -> str:
        path = self.file(name)
        try:
            plots.save_atomic(fig, path)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        return path


def write_yield_outputs(rf: RunFolder, scenario: Scenario, res: yields.YieldResult) -> None:
    """yield.json, scenario.toml and the four figures of a finished yield run."""
    rf.write_json("yield.json", res.to_dict())
    rf.write_text("scenario.toml", scenario.to_toml())
    rf.save_figure("margin_hist.png", plots.margin_histogram(res.histograms["optical"]))
    rf.save_figure(
        "heater_hist.png",
        plots.heater_histogram(res.histograms["thermal"], scenario.design.ring.heater_max_mw),
    )
    rf.save_figure(
        "yield_vs_lanes.png", plots.yield_vs_lanes(res.yield_vs_lanes, res.independent_vs_lanes)
    )
    rf.save_figure("failure_pareto.png", plots.failure_pareto(res.failure_modes, res.attribution))


def run_yield(
    scenario: Scenario,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_folder: Callable[[RunFolder], None] | None = None,
    **kwargs: Any,
) -> yields.YieldResult:
    """Monte Carlo yield with the run folder of ``cpojax yield --out``.

    With ``out`` the folder is probed and locked first, the run checkpoints after
    every chunk (``resume=True`` finishes an interrupted run with identical
    numbers), and ``yield.json``, ``scenario.toml`` and four figures are written
    atomically at the end. Without ``out`` it is :func:`cpojax.estimate_yield`.

    Args:
      scenario: the scenario.
      out: output folder, or None.
      resume, force: see :class:`RunFolder`.
      progress: ``progress(engines_done, engines_total)``.
      on_folder: called with the locked :class:`RunFolder` before computing (the
        CLI uses it to know whether a checkpoint exists when interrupted).
      **kwargs: passed to :func:`cpojax.yields.estimate_yield` (seed, n_engines,
        chunk_blocks, devices, dtype, generator).
    """
    if out is None:
        if resume or force:
            raise OutputError("resume/force need an output folder (out=...)")
        return yields.estimate_yield(scenario, progress=progress, **kwargs)
    with RunFolder(out, resume=resume, force=force, outputs=YIELD_FILES) as rf:
        if on_folder is not None:
            on_folder(rf)
        state = rf.load_checkpoint()["state"] if resume else None
        res = yields.estimate_yield(
            scenario, progress=progress, state=state, checkpoint=rf.save_checkpoint, **kwargs
        )
        write_yield_outputs(rf, scenario, res)
        final = {"fingerprint": None, "next_block": None, "totals": {}}
        with contextlib.suppress(OutputError):
            data = rf.load_checkpoint()
            final = data["state"]
        rf.save_checkpoint(final, finished=True)
    return res


def enable_compile_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache; returns the folder or None.

    ``path`` defaults to ``$CPOJAX_CACHE_DIR`` or ``~/.cache/cpojax/jax``; an empty
    ``CPOJAX_CACHE_DIR`` disables it. A folder that cannot be created (read-only
    home) leaves the cache off rather than failing the run.
    """
    if path is None:
        path = os.environ.get(
            "CPOJAX_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "cpojax", "jax")
        )
    if not path:
        return None
    try:
        os.makedirs(path, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except (OSError, AttributeError):
        return None
    return path
