"""Running a sweep: the per-item function (a block of engines at a chunk of grid points),
the loop over items on every device, and :func:`sweep` / :func:`yield_curve`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import distributed, model, rng, variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.streaming import device_list, fetch_items, item_mesh, map_items
from cpojax.levels import LEVELS
from cpojax.outputs import OutputError, RunFolder
from cpojax.scenario import Scenario, with_values
from cpojax.sweep.folder import (
    fingerprint,
    open_folder,
    run_record,
    versions,
    write_outputs,
    write_part,
)
from cpojax.sweep.grid import Grid, Group, group_points, make_grid
from cpojax.sweep.table import SweepTable, build_table, point_info, row_width, to_rows
from cpojax.validate import as_count, check_scenario, resolve_key

__all__ = ["SweepProgress", "sweep", "yield_curve"]


class SweepProgress(NamedTuple):
    """What :func:`sweep` reports after every chunk.

    ``items`` are (point chunk, block) pairs computed by this call (a resumed sweep
    counts only what is left); ``points_done`` includes points loaded from a folder.
    """

    points_done: int
    points_total: int
    items_done: int
    items_total: int
    lane_samples: int
    elapsed_s: float


@functools.lru_cache(maxsize=32)
def _item_fn(dtype_name: str, generator: str, keys: tuple[str, ...]) -> Callable:
    """Per-item counts ``fn(key, item, scenario) -> {name: int32[Pc, ...]}``.

    An item is one block of engines (``item["block"]``) at a chunk of grid points
    (``item["values"]``: [Pc, len(keys)]); the points are vmapped over the block's
    shared normals. Module-level and cached, with the scenario traced, so one
    compilation serves every scenario of one structure.
    """
    dtype = jnp.dtype(dtype_name)

    def fn(key, item, scenario):
        lay = variation.layout(scenario)
        u = rng.block_normals(key, item["block"], lay.engine_dim, dtype, generator=generator)

        def at(vals):
            sc = with_values(scenario, {k: vals[i] for i, k in enumerate(keys)})
            g = model.engine_g(sc, u, dtype)  # [B, L, K]
            finite = jnp.all(jnp.isfinite(g), axis=-1)
            fail_k = g < 0
            lane_fail = jnp.any(fail_k, axis=-1) | ~finite
            nf = jnp.sum(lane_fail, axis=-1)
            return {
                "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
                "engine_fail": jnp.sum(nf > sc.system.spare_lanes).astype(jnp.int32),
                "invalid": jnp.sum(~finite).astype(jnp.int32),
                "state_fail": jnp.sum(fail_k, axis=(0, 1)).astype(jnp.int32),
                "nfail_hist": jnp.bincount(nf, length=lay.lanes + 1).astype(jnp.int32),
            }

        return jax.vmap(at)(item["values"])

    return fn


def _invalid_message(grid: Grid, i: int, n_bad: int) -> str:
    at = ", ".join(f"{k} = {v}" for k, v in zip(grid.keys, grid.points[i], strict=False))
    return f"the lane model returned NaN/inf for {n_bad} lanes at {at}"


def _compute(
    *,
    grid: Grid,
    groups: list[Group],
    traced: tuple[str, ...],
    key,
    n_blocks: int,
    done: np.ndarray,
    rows: np.ndarray,
    mesh,
    items_per_device: int,
    dtype,
    generator: str,
    on_chunk_done: Callable[[int, int, np.ndarray], None],
    progress: Callable[[SweepProgress], None] | None,
) -> int:
    """Fill `rows` for every point chunk not flagged in `done` ([group, chunk]).

    Items (group, point chunk, block) are taken point-chunk-major, ``mesh.size ·
    items_per_device`` per call (the last call padded with repeats that are
    discarded); a chunk never mixes groups. The next call is dispatched before the
    previous one's counts are read back. A point chunk is final once all its blocks
    are counted: its rows are stored and `on_chunk_done` is called.

    Returns:
      lane-samples computed.
    """
    fn = _item_fn(jnp.dtype(dtype).name, generator, traced)
    width = rows.shape[1]
    c = mesh.size * items_per_device
    todo = [np.flatnonzero(~done[gi, : g.n_chunks]) for gi, g in enumerate(groups)]
    n_todo = sum(len(t) for t in todo) * n_blocks

    def chunks():  # lazily: a million points × a thousand blocks is never a list
        for gi, pcs in enumerate(todo):
            items = ((gi, int(pc), b) for pc in pcs for b in range(n_blocks))
            while batch := list(itertools.islice(items, c)):
                yield batch

    sizes = [len(g.points) for g in groups]

    def real(gi, pc):
        return min(groups[gi].chunk, sizes[gi] - pc * groups[gi].chunk)

    points_done = sum(real(gi, pc) for gi, pc in zip(*np.nonzero(done), strict=False))
    acc: dict[tuple[int, int], list] = {}
    t0 = time.perf_counter()
    n_done = samples = 0

    def dispatch(chunk):
        g = groups[chunk[0][0]]
        pad = chunk + [chunk[-1]] * (c - len(chunk))
        items = {
            "block": np.asarray([b for _, _, b in pad], np.uint32),
            "values": np.stack([g.chunk_values(pc) for _, pc, _ in pad]).astype(dtype),
        }
        return map_items(fn, key=key, items=items, mesh=mesh, args=(g.scenario,))

    queue = chunks()
    chunk = next(queue, None)
    pending = dispatch(chunk) if chunk else None
    while chunk:
        following = next(queue, None)
        nxt = dispatch(following) if following else None
        out = to_rows(fetch_items(pending), width)  # [C, Pc, width]
        for j, (gi, pc, _) in enumerate(chunk):
            g, n_real = groups[gi], real(gi, pc)
            a = acc.setdefault((gi, pc), [np.zeros((g.chunk, width), np.int64), 0])
            a[0] += out[j]
            a[1] += 1
            samples += n_real * rng.BLOCK * g.scenario.system.lanes_per_engine
            if a[1] < n_blocks:
                continue
            part = acc.pop((gi, pc))[0][:n_real]
            idx = g.points[pc * g.chunk : pc * g.chunk + n_real]
            bad = np.flatnonzero(part[:, 2])
            if bad.size:
                n_bad = int(part[bad[0], 2])
                raise InvalidModelOutput(
                    _invalid_message(grid, int(idx[bad[0]]), n_bad), n_invalid=n_bad
                )
            rows[idx] = part
            done[gi, pc] = True
            points_done += n_real
            on_chunk_done(gi, pc, part)
        n_done += len(chunk)
        if progress is not None:
            elapsed = time.perf_counter() - t0
            progress(SweepProgress(points_done, len(rows), n_done, n_todo, samples, elapsed))
        pending, chunk = nxt, following
    return samples


def _share(ok: bool, rows: np.ndarray, done: np.ndarray) -> bool:
    """Process 0's status, rows and done flags on every process (in place)."""
    flat = np.concatenate([[int(ok)], done.ravel().astype(np.int64), rows.ravel()])
    got = distributed.broadcast(flat)
    done[...] = got[1 : 1 + done.size].reshape(done.shape).astype(bool)
    rows[...] = got[1 + done.size :].reshape(rows.shape)
    return bool(got[0])


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Any],
    *,
    key=None,
    seed: int | None = 0,
    n_engines: int = 16_384,
    level: str = "engine",
    method: str = "mc",
    zip: bool = False,
    devices=None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    structural: str = "group",
    point_chunk: int = 8,
    items_per_device: int = 1,
    dtype=jnp.float32,
    generator: str = "threefry",
    target_yield: float = 0.9,
    progress: Callable[[SweepProgress], None] | None = None,
    on_folder: Callable[[RunFolder], None] | None = None,
) -> SweepTable:
    """Lane / engine / switch yield at every point of a grid of scenario values.

    Args:
      scenario: the base scenario.
      grid: ``{dotted key: values}``, e.g. ``{"design.ring.heater_max_mw":
        np.linspace(30, 80, 20)}``; validated like ``--set``, every point before
        anything runs (:func:`make_grid`).
      key, seed: the random key, or the integer seed that makes it.
      n_engines: engines per point, rounded up to blocks of 4096; every point sees
        the same engines.
      level: the headline level (figures, terminal table); the table has all three.
      method: ``"mc"`` (streamed crude Monte Carlo; the only one for sweeps).
      zip: pair the i-th values of every key instead of the cartesian product.
      devices: None (every device, of every process under ``jax.distributed``), a
        device count or a list of devices. The numbers never depend on it.
      out: a run folder (written by process 0 only); see the module docstring.
      resume: finish the interrupted sweep in `out` (same arguments required).
      force: discard an unfinished run in `out`.
      structural: ``"group"`` (structural keys group the points) or ``"reject"``.
      point_chunk: grid points vmapped together per block (memory ∝ point_chunk);
        part of the numerics, like dtype: a different value may move floats by an ulp.
      items_per_device: (point chunk, block) items per device per call (speed only).
      dtype, generator: numerics of the physics and of :mod:`cpojax.rng`.
      target_yield: the contour drawn on heatmaps.
      progress: ``progress(SweepProgress)`` after every call (process 0 only).
      on_folder: called with the locked run folder before computing.

    Returns:
      :class:`SweepTable`, one row per point in grid order (the same on every process).

    Raises:
      ScenarioError: a bad grid (the message names the key); ValueError/TypeError:
      bad arguments; OutputError: unusable folder or refused resume;
      InvalidModelOutput: the model returned NaN/inf at some point (named).
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if method != "mc":
        raise ValueError(
            f"method={method!r}: sweeps support method='mc' only (the rare-event estimators "
            "adapt per point; call estimate_yield_rare per point instead)"
        )
    if structural not in ("group", "reject"):
        raise ValueError(f"structural must be 'group' or 'reject', got {structural!r}")
    point_chunk = as_count("point_chunk", point_chunk)
    items_per_device = as_count("items_per_device", items_per_device)
    if generator not in rng.GENERATORS:
        raise ValueError(f"generator must be one of {rng.GENERATORS}, got {generator!r}")
    if not (isinstance(target_yield, numbers.Real) and 0 < float(target_yield) < 1):
        raise ValueError(f"target_yield must be a number in (0, 1), got {target_yield!r}")
    for name, f in (("progress", progress), ("on_folder", on_folder)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be callable or None")
    if out is None and (resume or force):
        raise OutputError("resume/force need an output folder (out=...)")
    key, seed = resolve_key(key, seed)
    g = make_grid(scenario, grid, zip=zip, structural=structural)
    groups, traced = group_points(scenario, g, point_chunk)
    n_blocks = -(-n_engines // rng.BLOCK)
    multi = jax.process_count() > 1
    if multi and devices is not None:
        raise ValueError("devices must be None in a multi-process run (every process's devices)")
    devs = device_list(devices)
    if not multi:  # more devices than items would only compute padding
        devs = devs[: max(1, min(len(devs), max(x.n_chunks for x in groups) * n_blocks))]
    mesh = item_mesh(devs)
    record = run_record(scenario, g, key, seed, n_blocks, dtype, generator, point_chunk)
    fp = fingerprint(record)
    rows = np.zeros((len(g.points), row_width(groups)), np.int64)
    done = np.zeros((len(groups), max(x.n_chunks for x in groups)), bool)
    main = jax.process_index() == 0
    with contextlib.ExitStack() as stack:
        rf = None
        try:
            if out is not None and main:
                rf = open_folder(
                    stack, out, resume=resume, force=force, record=record, fp=fp,
                    groups=groups, rows=rows, done=done,
                )  # fmt: skip
                if on_folder is not None:
                    on_folder(rf)
        except Exception:
            if multi:
                _share(False, rows, done)
            raise
        if multi and not _share(True, rows, done):
            raise OutputError("process 0 could not use the output folder (see its message)")
        resumed = sum(
            min(x.chunk, len(x.points) - pc * x.chunk)
            for gi, x in enumerate(groups)
            for pc in range(x.n_chunks)
            if done[gi, pc]
        )

        def chunk_done(gi, pc, part):
            if rf is None:
                return
            x = groups[gi]
            idx = x.points[pc * x.chunk : pc * x.chunk + len(part)]
            write_part(rf, fp=fp, group=gi, chunk=pc, points=idx, rows=part)

        t0 = time.perf_counter()
        samples = _compute(
            grid=g, groups=groups, traced=traced, key=key, n_blocks=n_blocks, done=done,
            rows=rows, mesh=mesh, items_per_device=items_per_device, dtype=dtype,
            generator=generator, on_chunk_done=chunk_done,
            progress=progress if main else None,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        meta = {
            "scenario": record["scenario"],
            "seed": seed,
            "key": record["key"],
            "n_engines": n_blocks * rng.BLOCK,
            "method": method,
            **record["numerics"],
            "versions": versions(),
            "run": {**distributed.describe(devs), "groups": len(groups)},
            "points_resumed": resumed,
            "wall_s": wall,
            "lane_samples_per_s": samples / wall if wall > 0 and samples else None,
            "fingerprint": fp,
        }
        table = build_table(g, level, rows, point_info(g, groups, n_blocks), meta)
        if rf is not None:
            write_outputs(rf, table, scenario, float(target_yield))
            state = {"kind": "sweep", "fingerprint": fp, "next_block": 0, "totals": {}}
            rf.save_checkpoint({**state, "record": record}, finished=True)
    return table


def yield_curve(
    scenario: Scenario,
    param: str,
    values: Sequence[float],
    *,
    key=None,
    seed: int = 0,
    n_engines: int = 16_384,
    dtype=jnp.float32,
) -> dict[str, Any]:
    """Lane / engine / switch yield as a function of one continuous scenario value.

    A thin wrapper over :func:`sweep` (one key, structural keys refused) that keeps
    the original dict form.

    Args:
      scenario: base scenario.
      param: dotted key of a continuous value, e.g. ``window.engine_temp_max_c``.
      values: grid of values (validated like ``--set``).
      n_engines: engines per grid point (rounded up to whole blocks).

    Returns:
      dict with ``param``, ``values``, ``n_engines`` and, per level, ``yield`` and
      ``ci`` lists.

    Raises:
      InvalidModelOutput: the model returned NaN/inf at some grid value.
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    try:
        vals = [float(v) for v in np.asarray(values, dtype=object).ravel()]
    except (TypeError, ValueError):
        raise TypeError(f"values must be a sequence of numbers, got {values!r}") from None
    if not vals:
        raise ValueError("values must be a non-empty sequence")
    t = sweep(
        scenario, {param: vals}, key=key, seed=seed, n_engines=n_engines, dtype=dtype,
        structural="reject",
    )  # fmt: skip
    out: dict[str, Any] = {"param": param, "values": vals, "n_engines": t.meta["n_engines"]}
    for lv in LEVELS:
        y, lo, hi = t.yields(lv)
        out[lv] = {
            "yield": y.tolist(),
            "ci": [[a, b] for a, b in zip(lo.tolist(), hi.tolist(), strict=False)],
        }
    return out
