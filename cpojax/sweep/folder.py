"""The sweep's run folder: the record that fixes its numbers (compared on resume), the
point-chunk files, and the outputs of a finished sweep (JSON, CSV, scenario, figures).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import plots, rng
from cpojax.levels import LEVELS
from cpojax.outputs import OutputError, RunFolder, strict_json
from cpojax.scenario import Scenario
from cpojax.sweep.grid import Grid, Group
from cpojax.sweep.table import SWEEP_FORMAT, SweepTable

__all__ = [
    "SWEEP_FILES",
    "figure_name",
    "figures",
    "fingerprint",
    "open_folder",
    "run_record",
    "versions",
    "write_outputs",
    "write_part",
]

#: Files a finished sweep writes in its folder (the point chunks go to ``points/``).
SWEEP_FILES = (
    "sweep.json",
    "sweep.csv",
    "scenario.toml",
    "sweep_curves.png",
    "sweep_heatmap.png",
    "sweep_multiples.png",
)
_PARTS = "points"
_PART_RE = re.compile(r"^g(\d{4})-c(\d{7})\.json$")


def versions() -> dict[str, str]:
    """Installed versions of cpojax, jax and jaxlib ("unknown" where not installed)."""

    def v(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {"cpojax": v("cpojax"), "jax": jax.__version__, "jaxlib": v("jaxlib")}


def run_record(scenario, grid, key, seed, n_blocks, dtype, generator, point_chunk) -> dict:
    """Everything that determines a sweep's numbers (compared on resume)."""
    v = versions()
    return {
        "format": SWEEP_FORMAT,
        "scenario": scenario.to_toml(comments=False),
        "grid": grid.to_dict(),
        "seed": seed,
        "key": np.asarray(jax.random.key_data(key)).tobytes().hex(),
        "n_blocks": n_blocks,
        "numerics": {
            "dtype": jnp.dtype(dtype).name,
            "generator": generator,
            "point_chunk": point_chunk,
        },
        "versions": {"cpojax": v["cpojax"], "jax": v["jax"], "jaxlib": v["jaxlib"]},
    }


def fingerprint(record: dict) -> str:
    """SHA-256 of a :func:`run_record` (canonical JSON): the sweep's identity in its folder."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


_WHAT = {
    "scenario": "the scenario (--config / --set)",
    "grid": "the grid (--grid / --zip)",
    "seed": "the seed",
    "key": "the random key",
    "n_blocks": "the number of engines (--engines)",
    "numerics": "the numerics (dtype, generator, point chunk)",
    "format": "the sweep format",
}


def _differences(old: Mapping, new: Mapping) -> list[str]:
    out = []
    for k, new_v in new.items():
        old_v = old.get(k)
        if k == "versions":
            if old_v != new_v:
                was = ", ".join(f"{n} {v}" for n, v in (old_v or {}).items())
                now = ", ".join(f"{n} {v}" for n, v in new_v.items())
                out.append(f"the cpojax/JAX version (was {was or 'unknown'}, now {now})")
        elif k == "seed" and old_v != new_v:
            out.append(f"the seed (was {old_v}, now {new_v})")
        elif k == "n_blocks" and old_v != new_v:
            out.append(f"--engines (was {old_v} blocks of {rng.BLOCK}, now {new_v})")
        elif old_v != new_v and not (k == "key" and old.get("seed") != new.get("seed")):
            out.append(_WHAT.get(k, k))
    return out


def _load_parts(rf: RunFolder, fp: str, groups: list[Group], rows, done) -> None:
    """Mark the point chunks whose part files are complete and belong to this sweep."""
    folder = rf.file(_PARTS)
    for name in sorted(os.listdir(folder)):
        m = _PART_RE.match(name)
        if not m:
            if name.startswith(".tmp-"):  # a write cut short by a crash
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
            continue
        gi, pc = int(m.group(1)), int(m.group(2))
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                data = json.load(f)
            g = groups[gi]
            idx = g.points[pc * g.chunk : (pc + 1) * g.chunk]
            part = np.asarray(data["rows"], np.int64)
            ok = (
                data["fingerprint"] == fp
                and pc < g.n_chunks
                and data["points"] == idx.tolist()
                and part.shape == (len(idx), rows.shape[1])
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            ok = False
        if ok:
            rows[idx] = part
            done[gi, pc] = True


def open_folder(stack, out, *, resume, force, record, fp, groups, rows, done) -> RunFolder:
    """Lock the run folder `out` (entered on `stack`) and write the sweep's checkpoint.

    With `resume`: refuse a folder whose record differs (naming what changed), then
    load the finished point chunks into `rows` and mark them in `done` (in place).
    Without: remove a previous run's point chunks.

    Raises:
      OutputError: unusable folder, another command's checkpoint, or a refused resume.
    """
    rf = stack.enter_context(RunFolder(out, resume=resume, force=force, outputs=SWEEP_FILES))
    parts = rf.file(_PARTS)
    if resume:
        st = rf.load_checkpoint()["state"]
        if st.get("kind") != "sweep":
            raise OutputError(
                f"--resume: {rf.file('state.json')} is not a sweep's checkpoint "
                "(another command wrote it); use another --out"
            )
        diffs = _differences(st.get("record") or {}, record)
        if diffs:
            raise OutputError(
                f"--resume refused: {'; '.join(diffs)} differ from the interrupted sweep in "
                f"{rf.path!r}; rerun it with the same arguments, or start afresh with --force"
            )
        if os.path.isdir(parts):
            _load_parts(rf, fp, groups, rows, done)
    elif os.path.isdir(parts):  # a fresh sweep: the previous run's chunks go
        for name in os.listdir(parts):
            with contextlib.suppress(IsADirectoryError, FileNotFoundError, PermissionError):
                os.unlink(os.path.join(parts, name))
    try:
        os.makedirs(parts, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {parts}: {e.strerror or e}") from None
    state = {"kind": "sweep", "fingerprint": fp, "next_block": 0, "totals": {}, "record": record}
    rf.save_checkpoint(state)
    return rf


def write_part(rf: RunFolder, *, fp: str, group: int, chunk: int, points, rows) -> None:
    """Write one finished point chunk (its point indices and counter rows) to ``points/``."""
    body = {"fingerprint": fp, "group": group, "chunk": chunk}
    body |= {"points": points.tolist(), "rows": rows.tolist()}
    rf.write_text(f"{_PARTS}/g{group:04d}-c{chunk:07d}.json", strict_json(body))


def figure_name(grid: Grid) -> str | None:
    """File name of a sweep's figure: curves (one swept key, or zipped), heatmap (two),
    small multiples (three), or None (more). Keys with a single value do not count."""
    live = sum(len(v) > 1 for v in grid.values)
    if grid.zip or live <= 1:
        return "sweep_curves.png"
    return {2: "sweep_heatmap.png", 3: "sweep_multiples.png"}.get(live)


def figures(table: SweepTable, target_yield: float = 0.9) -> dict[str, Any]:
    """The figures of a sweep, by file name (:func:`figure_name`).

    Curves: yield at every level with its 95 % band against the swept key (against
    the point index for a zipped grid). Heatmap: the table's level over two keys
    with the `target_yield` contour. Small multiples: that heatmap for every value
    of the third key, on one colour scale.
    """
    g = table.grid
    name = figure_name(g)
    live = [j for j, v in enumerate(g.values) if len(v) > 1]
    if name == "sweep_curves.png":
        j = live[0] if live and not g.zip else 0
        x = np.arange(len(table)) if g.zip else table.data[g.keys[j]]
        bands = {lv: table.yields(lv) for lv in LEVELS}
        xlabel = "point (zipped: " + ", ".join(g.keys) + ")" if g.zip else g.keys[j]
        return {name: plots.sweep_curves(x, bands, xlabel=xlabel)}
    if name is None:
        return {}
    y = table.yields()[0].reshape(g.shape)
    y = y.squeeze(axis=tuple(j for j in range(len(g.shape)) if j not in live))
    axes = [np.asarray(g.values[j], float) for j in live]
    names = [g.keys[j] for j in live]
    kw = {"xlabel": names[0], "ylabel": names[1], "level": table.level, "target": target_yield}
    if len(live) == 2:
        return {name: plots.sweep_heatmap(axes[0], axes[1], y, **kw)}
    panels = [(f"{names[2]} = {v:g}", y[:, :, k]) for k, v in enumerate(axes[2])]
    return {name: plots.sweep_small_multiples(axes[0], axes[1], panels, **kw)}


def write_outputs(rf: RunFolder, table: SweepTable, scenario: Scenario, target_yield: float):
    """sweep.json, sweep.csv, scenario.toml and the figures of a finished sweep."""
    rf.write_json("sweep.json", table.to_dict())
    rf.write_text("sweep.csv", table.to_csv())
    rf.write_text("scenario.toml", scenario.to_toml())
    for name, fig in figures(table, target_yield).items():
        rf.save_figure(name, fig)
