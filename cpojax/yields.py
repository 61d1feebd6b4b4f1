"""Photonic yield: lane, engine and switch yield by streamed Monte Carlo over engines.

One sample is one engine: its normals (``variation.layout(sc).engine_dim`` per
engine, sample-indexed by :mod:`cpojax.rng`) become the deviations of its lanes
(:mod:`cpojax.variation`), each lane is evaluated at every operating corner
(:mod:`cpojax.physics.link`), and per block of engines only integer counters come
back (:func:`cpojax.estimators.mc.stream_counts`), so memory is flat and the
result is bit-identical for any chunk size and after a resume.

Levels:

* lane yield = passing lanes / lanes (lanes of an engine are correlated through
  die-level variation, so its Clopper-Pearson interval, which assumes
  independent lanes, is computed on the effective count n_lanes/deff with the
  design effect deff estimated from the failing-lanes-per-engine histogram);
* engine yield = engines with at most ``spare_lanes`` failing lanes / engines
  (engines are i.i.d.: exact Clopper-Pearson);
* switch yield = engine_yield ** engines_per_switch: a switch is assembled from
  engines drawn from the population (many wafers), so its engines are independent;
  the interval maps the engine interval through the same monotone power, which
  keeps its exact coverage. If the engines of one switch came from one wafer, the
  wafer-level variation would correlate them and the true switch yield would be
  higher (E[y_w^N] >= E[y_w]^N); this model does not cover that assembly flow.

Failure breakdown: per limit state, the share of failing lanes that violate it
(shares can sum to more than 1: a lane can fail several); per variable, the
excess E[z² | fail] − 1 of its standardized deviation z among failing lanes
(0 for a variable unrelated to the failures, since z ~ N(0, 1) unconditionally)
and its mean E[z | fail]; and the die-level share: a failing engine counts as
die-level when its median lane (only the engine-wide wafer + die deviations,
lane and laser deviations at zero) already fails, i.e. the shared variation alone
sinks a typical lane of that engine.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import rng, variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson
from cpojax.estimators.streaming import stream_counts
from cpojax.physics.link import LIMIT_STATES, lane_budget
from cpojax.scenario import Scenario, ScenarioError

__all__ = ["HIST_RANGES", "YieldResult", "estimate_yield", "yield_curve"]

# Histogram ranges (lo, hi, bins) of each limit state's g, for the figures.
HIST_RANGES = {
    "optical": (-10.0, 15.0, 200),
    "thermal": (-40.0, 60.0, 200),
    "modulator": (-5.0, 10.0, 150),
    "power": (-2.0, 3.0, 100),
}
_FIXED = 1000.0  # fixed-point scale of float sums kept as exact integers per block


@dataclasses.dataclass(frozen=True)
class YieldResult:
    """Yields with 95 % intervals, failure breakdown and the raw counters."""

    lane: tuple[float, tuple[float, float]]
    engine: tuple[float, tuple[float, float]]
    switch: tuple[float, tuple[float, float]]
    n_engines: int
    n_lanes: int
    seed: int | None
    failure_modes: dict[str, float]
    lane_fail_fraction: dict[str, float]
    attribution: dict[str, dict[str, float]]
    die_level_share: float
    yield_vs_lanes: list[float]
    independent_vs_lanes: list[float]
    histograms: dict[str, dict[str, Any]]
    counts: dict[str, Any]
    wall_s: float
    lane_samples_per_s: float
    lane_design_effect: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the `cpojax yield --json` object)."""
        lvl = level_dict
        return {
            "lane": lvl(self.lane),
            "engine": lvl(self.engine),
            "switch": lvl(self.switch),
            "failure_modes": self.failure_modes,
            "lane_fail_fraction": self.lane_fail_fraction,
            "attribution": self.attribution,
            "die_level_share": self.die_level_share,
            "yield_vs_lanes": self.yield_vs_lanes,
            "independent_vs_lanes": self.independent_vs_lanes,
            "n_engines": self.n_engines,
            "n_lanes": self.n_lanes,
            "seed": self.seed,
            "wall_s": self.wall_s,
            "lane_samples_per_s": self.lane_samples_per_s,
            "lane_design_effect": self.lane_design_effect,
        }


def level_dict(t) -> dict[str, Any]:
    """(yield, (lo, hi)) → {"yield", "ci"} for JSON output."""
    return {"yield": t[0], "ci": list(t[1])}


def switch_from_engine(engine, engines_per_switch: int):
    """Switch yield y^N and its interval mapped through the same monotone power
    (exact coverage when the switch's engines are independent draws)."""
    y, (lo, hi) = engine
    n = engines_per_switch
    return (y**n, (lo**n, hi**n))


def _limit_g(scenario: Scenario, dev, dtype):
    """Limit states g[..., 4] of a batch of lanes (evaluated flattened: XLA compiles a
    1-D elementwise graph noticeably faster than the same graph on [B, L] arrays)."""
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree_util.tree_leaves(dev)))
    flat = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).reshape(-1), dev)
    g = lane_budget(
        design=scenario.design,
        dev=flat,
        system=scenario.system,
        window=scenario.window,
        limits=scenario.limits,
        dtype=dtype,
    ).g
    return g.reshape(*shape, g.shape[-1])


def _hist(x, lo, hi, bins):
    idx = jnp.clip(jnp.floor((x - lo) / (hi - lo) * bins).astype(jnp.int32) + 1, 0, bins + 1)
    return jnp.bincount(idx.ravel(), length=bins + 2).astype(jnp.int32)


def _concat_lanes(a, b):
    """Join two Deviations along the lane axis (last axis)."""
    return jax.tree_util.tree_map(lambda x, y: jnp.concatenate([x, y], axis=-1), a, b)


@functools.lru_cache(maxsize=16)
def _block_fn(dtype_name: str, generator: str) -> Callable:
    """Per-block counter function fn(key, block, scenario) for the full yield analysis.

    Module-level and cached per (dtype, generator), with the scenario as a traced
    argument: one compilation serves every scenario of the same structure.
    """
    dtype = jnp.dtype(dtype_name)

    def fn(key, b, scenario):
        lay = variation.layout(scenario)
        lanes = lay.lanes
        names = [v.name for v in variation.VARIABLES]
        u = rng.block_normals(key, b, lay.engine_dim, dtype, generator=generator)
        dev = variation.engine_deviations(scenario, u)  # [B, L]
        # One extra lane per engine with only the engine-wide (wafer + die) deviations,
        # evaluated in the same link call: it tells die-level from lane-level failures.
        u_die = jnp.concatenate(
            [
                u[:, : 2 * lay.n_shared],
                jnp.zeros((u.shape[0], lay.lane_dim - 2 * lay.n_shared), dtype),
            ],
            axis=-1,
        )
        dev_die = jax.tree_util.tree_map(
            lambda x: x[:, None], variation.lane_deviations(scenario, u_die)
        )
        g_all = _limit_g(scenario, _concat_lanes(dev, dev_die), dtype)  # [B, L + 1, 4]
        g, g_die = g_all[:, :lanes], g_all[:, lanes]
        finite = jnp.all(jnp.isfinite(g_all), axis=-1)
        fail_k = g < 0
        lane_fail = jnp.any(fail_k, axis=-1) | ~finite[:, :lanes]
        nf = jnp.sum(lane_fail, axis=-1)
        eng_fail = nf > scenario.system.spare_lanes
        prefix_fail = jnp.cumsum(lane_fail, axis=-1) > 0  # [B, L]
        die_fail = jnp.any(g_die < 0, axis=-1)
        z = variation.standardized(scenario, u)  # {var: [B, L, F]}
        z2 = jnp.stack([jnp.mean(z[n] ** 2, axis=-1) for n in names], axis=-1)  # [B, L, V]
        z1 = jnp.stack([jnp.mean(z[n], axis=-1) for n in names], axis=-1)
        w = lane_fail.astype(dtype)[..., None]
        wk = fail_k.astype(dtype)  # [B, L, 4]

        def fx(x):  # per-block float sums as exact fixed-point integers (chunk-invariant)
            return jnp.round(x * _FIXED).astype(jnp.int32)

        out = {
            "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
            "state_fail": jnp.sum(fail_k, axis=(0, 1)).astype(jnp.int32),
            "invalid": jnp.sum(~finite).astype(jnp.int32),
            "engine_fail": jnp.sum(eng_fail).astype(jnp.int32),
            "nfail_hist": jnp.bincount(nf, length=lanes + 1).astype(jnp.int32),
            "prefix_fail": jnp.sum(prefix_fail, axis=0).astype(jnp.int32),
            "die_fail_engines": jnp.sum(die_fail & eng_fail).astype(jnp.int32),
            "z2_fail": fx(jnp.sum(w * jnp.minimum(z2, 1e3), axis=(0, 1))),
            "z1_fail": fx(jnp.sum(w * z1, axis=(0, 1))),
            "z2_state": fx(jnp.einsum("blk,blv->kv", wk, jnp.minimum(z2, 1e3))),
        }
        for j, name in enumerate(LIMIT_STATES):
            lo, hi, bins = HIST_RANGES[name]
            out[f"hist_{name}"] = _hist(g[..., j], lo, hi, bins)
        return out

    return fn


def _run_fingerprint(scenario: Scenario, key, dtype, generator: str, n_blocks: int) -> str:
    """Hash of everything that determines a run's numbers (for safe resumes)."""
    import hashlib

    kd = np.asarray(jax.random.key_data(key)).tobytes()
    text = f"{scenario.to_toml(comments=False)}|{jnp.dtype(dtype).name}|{generator}|{n_blocks}"
    return hashlib.sha256(text.encode() + kd).hexdigest()


def _check_args(n_engines: int, chunk_blocks: int | None):
    if isinstance(n_engines, bool) or not isinstance(n_engines, int) or n_engines < 1:
        raise ValueError(f"n_engines must be an int >= 1, got {n_engines!r}")
    if chunk_blocks is not None and (not isinstance(chunk_blocks, int) or chunk_blocks < 1):
        raise ValueError(f"chunk_blocks must be an int >= 1, got {chunk_blocks!r}")


def _lane_interval(k_lane: int, n_lanes: int, nfail_hist, lanes: int):
    """Approximate 95 % interval of the lane failure probability for clustered lanes.

    Lanes of one engine share its variation, so failures cluster and an exact
    binomial interval on n_lanes would under-cover. The design effect
    deff = var(failing lanes per engine) / (lanes·p·(1 − p)) (Kish 1965), estimated
    from the histogram of failing lanes per engine, shrinks the sample to
    n_lanes/deff, on which the Clopper-Pearson interval is taken.

    Returns:
      (lo, hi, deff) for the failure probability.
    """
    hist = np.asarray(nfail_hist, np.float64)
    n_eng = hist.sum()
    kk = np.arange(lanes + 1)
    p_lane = k_lane / n_lanes
    mean_nf = (hist * kk).sum() / n_eng
    var_nf = (hist * kk**2).sum() / n_eng - mean_nf**2
    binom_var = lanes * p_lane * (1 - p_lane)
    deff = max(1.0, var_nf / binom_var) if binom_var > 0 else 1.0
    lo, hi = clopper_pearson(round(k_lane / deff), max(1, round(n_lanes / deff)))
    return lo, hi, deff


def _finish(scenario: Scenario, totals: dict, n_blocks: int, seed, wall: float) -> YieldResult:
    lanes = scenario.system.lanes_per_engine
    n_eng = n_blocks * rng.BLOCK
    n_lanes = n_eng * lanes
    if int(totals["invalid"]):
        raise InvalidModelOutput(
            f"the lane model returned NaN/inf for {int(totals['invalid'])} of {n_lanes} lanes; "
            "check the scenario for values that break the physics (e.g. zero power, zero efficiency)"
        )
    k_lane = int(totals["lane_fail"])
    k_eng = int(totals["engine_fail"])
    p_lane = k_lane / n_lanes
    lo, hi, deff = _lane_interval(k_lane, n_lanes, totals["nfail_hist"], lanes)
    lane = (1 - p_lane, (1 - hi, 1 - lo))
    lo, hi = clopper_pearson(k_eng, n_eng)
    p_eng = k_eng / n_eng
    engine = (1 - p_eng, (1 - hi, 1 - lo))
    e = scenario.system.engines_per_switch
    switch = switch_from_engine(engine, e)
    state = np.asarray(totals["state_fail"], np.int64)
    modes = {
        name: (float(state[j]) / k_lane if k_lane else 0.0) for j, name in enumerate(LIMIT_STATES)
    }
    lane_frac = {name: float(state[j]) / n_lanes for j, name in enumerate(LIMIT_STATES)}
    names = [v.name for v in variation.VARIABLES]
    z2 = np.asarray(totals["z2_fail"], np.float64) / _FIXED
    z1 = np.asarray(totals["z1_fail"], np.float64) / _FIXED
    z2s = np.asarray(totals["z2_state"], np.float64) / _FIXED
    attribution = {}
    for i, n in enumerate(names):
        attribution[n] = {
            "excess_z2": float(z2[i] / k_lane - 1.0) if k_lane else 0.0,
            "mean_z": float(z1[i] / k_lane) if k_lane else 0.0,
            **{
                f"excess_z2_{s}": (float(z2s[j, i] / state[j] - 1.0) if state[j] else 0.0)
                for j, s in enumerate(LIMIT_STATES)
            },
        }
    prefix = np.asarray(totals["prefix_fail"], np.float64)
    yield_vs_lanes = [float(1 - prefix[i] / n_eng) for i in range(lanes)]
    indep = [float((1 - p_lane) ** (i + 1)) for i in range(lanes)]
    hists = {}
    for name in LIMIT_STATES:
        lo_, hi_, _bins = HIST_RANGES[name]
        hists[name] = {"lo": lo_, "hi": hi_, "counts": [int(c) for c in totals[f"hist_{name}"]]}
    die_share = int(totals["die_fail_engines"]) / k_eng if k_eng else 0.0
    counts = {k: (v.tolist() if isinstance(v, np.ndarray) else int(v)) for k, v in totals.items()}
    return YieldResult(
        lane=lane,
        engine=engine,
        switch=switch,
        n_engines=n_eng,
        n_lanes=n_lanes,
        seed=seed,
        failure_modes=modes,
        lane_fail_fraction=lane_frac,
        attribution=attribution,
        die_level_share=die_share,
        yield_vs_lanes=yield_vs_lanes,
        independent_vs_lanes=indep,
        histograms=hists,
        counts=counts,
        wall_s=wall,
        lane_samples_per_s=(n_lanes / wall if wall > 0 else float("nan")),
        lane_design_effect=float(deff),
    )


def estimate_yield(
    scenario: Scenario,
    *,
    key=None,
    seed: int | None = 0,
    n_engines: int = 65_536,
    chunk_blocks: int | None = None,
    dtype=jnp.float32,
    generator: str = "threefry",
    progress: Callable[[int, int], None] | None = None,
    state: dict | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    devices=None,
) -> YieldResult:
    """Monte Carlo yield of lanes, engines and switches, with failure breakdown.

    Args:
      scenario: the scenario.
      key: a ``jax.random`` key; default ``jax.random.key(seed)``.
      seed: integer seed used when ``key`` is None (reported in the result).
      n_engines: engines to simulate, rounded up to whole blocks of
        ``cpojax.rng.BLOCK`` (= 4096) engines.
      chunk_blocks: blocks per jitted call (speed/memory only, never the result).
      dtype: float dtype of the physics.
      generator: normal generator of :mod:`cpojax.rng` ("threefry" or "hash").
      progress: ``progress(engines_done, engines_total)`` after each chunk.
      state: a checkpoint previously given to ``checkpoint``, to resume a run.
      checkpoint: called after each chunk with a small JSON-friendly dict
        (next block and counters) that ``state=`` accepts; resuming from it gives
        the same result as an uninterrupted run.
      devices: None, a device count or a list of devices to shard each chunk's
        blocks over (``chunk_blocks`` must be a multiple); results are identical
        for any device count.

    Returns:
      :class:`YieldResult`.
    """
    _check_args(n_engines, chunk_blocks)
    if key is None:
        if seed is None:
            raise ValueError("give a key or an integer seed")
        key = jax.random.key(seed)
    else:
        seed = None  # the result reports a seed only when it made the key
    n_blocks = -(-n_engines // rng.BLOCK)
    fingerprint = _run_fingerprint(scenario, key, dtype, generator, n_blocks)
    if chunk_blocks is None:
        chunk_blocks = 1
    fn = _block_fn(jnp.dtype(dtype).name, generator)
    start, init, elapsed = 0, None, 0.0
    if state is not None:
        if state.get("fingerprint") != fingerprint:
            raise ValueError(
                f"resume state belongs to another run (n_blocks={state.get('n_blocks')}, "
                f"seed={state.get('seed')}, or another scenario, key, dtype or generator); "
                f"this run has n_blocks={n_blocks}, seed={seed}"
            )
        start = int(state["next_block"])
        init = {k: np.asarray(v, np.int64) for k, v in state["totals"].items()}
        elapsed = float(state.get("elapsed_s", 0.0))
    t0 = time.perf_counter()

    def _progress(done, totals):
        if checkpoint is not None:
            checkpoint(
                {
                    "n_blocks": n_blocks,
                    "seed": seed,
                    "fingerprint": fingerprint,
                    "next_block": int(done),
                    "elapsed_s": elapsed + time.perf_counter() - t0,
                    "totals": {k: np.asarray(v).tolist() for k, v in totals.items()},
                }
            )
        if progress is not None:
            progress(int(done) * rng.BLOCK, n_blocks * rng.BLOCK)

    totals, _ = stream_counts(
        fn,
        key=key,
        n_blocks=n_blocks,
        chunk_blocks=chunk_blocks,
        start_block=start,
        init=init,
        progress=_progress,
        args=(scenario,),
        devices=devices,
    )
    wall = elapsed + time.perf_counter() - t0
    return _finish(scenario, totals, n_blocks, seed, wall)


def _leaf_setter(scenario: Scenario, param: str):
    """(flat leaves, index of `param`, treedef) for a numeric, non-static scenario key."""
    scenario.get(param)  # raises ScenarioError for unknown keys
    flat, treedef = jax.tree_util.tree_flatten_with_path(scenario)
    for i, (path, _) in enumerate(flat):
        name = ".".join(getattr(p, "name", str(p)) for p in path)
        if name == param:
            return [v for _, v in flat], i, treedef
    raise ScenarioError(
        f"{param} is structural (static), not a continuous value: sweep it with a loop over scenarios"
    )


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
    """Lane / engine / switch yield as a function of one scenario value, in one call.

    The grid is vmapped inside each block and every grid point sees the same
    engines (common random numbers), so curves are smooth and differences between
    grid points are far more precise than each point's own interval.

    Args:
      scenario: base scenario.
      param: dotted key of a continuous value, e.g. ``window.engine_temp_max_c`` or
        ``spread.ring_resonance_nm.die``.
      values: grid of values (validated like ``--set``).
      n_engines: engines per grid point (rounded up to whole blocks).

    Returns:
      dict with ``values`` and, per level, ``yield`` and ``ci`` lists (lane
      intervals corrected for clustering as in :func:`estimate_yield`).

    Raises:
      InvalidModelOutput: the model returned NaN/inf at some grid value.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must be a non-empty sequence")
    for v in values:  # host-side validation of every grid value
        scenario.replace({param: v})
    leaves, idx, treedef = _leaf_setter(scenario, param)
    if key is None:
        key = jax.random.key(seed)
    lay = variation.layout(scenario)
    spares = scenario.system.spare_lanes
    grid = jnp.asarray(values, dtype)

    def fn(k, b):
        u = rng.block_normals(k, b, lay.engine_dim, dtype)

        def at(val):
            sc = jax.tree_util.tree_unflatten(treedef, [*leaves[:idx], val, *leaves[idx + 1 :]])
            g = _limit_g(sc, variation.engine_deviations(sc, u), dtype)
            finite = jnp.all(jnp.isfinite(g), axis=-1)
            lane_fail = jnp.any(g < 0, axis=-1) | ~finite
            nf = jnp.sum(lane_fail, axis=-1)
            return {
                "lane_fail": jnp.sum(lane_fail).astype(jnp.int32),
                "engine_fail": jnp.sum(nf > spares).astype(jnp.int32),
                "nfail_hist": jnp.bincount(nf, length=lay.lanes + 1).astype(jnp.int32),
                "invalid": jnp.sum(~finite).astype(jnp.int32),
            }

        return jax.vmap(at)(grid)

    n_blocks = -(-n_engines // rng.BLOCK)
    totals, _ = stream_counts(fn, key=key, n_blocks=n_blocks, chunk_blocks=1)
    n_eng = n_blocks * rng.BLOCK
    n_lanes = n_eng * lay.lanes
    e = scenario.system.engines_per_switch
    out: dict[str, Any] = {"param": param, "values": values, "n_engines": n_eng}
    for level in ("lane", "engine", "switch"):
        out[level] = {"yield": [], "ci": []}
    bad = np.asarray(totals["invalid"])
    if bad.any():
        j = int(np.argmax(bad > 0))
        raise InvalidModelOutput(
            f"the lane model returned NaN/inf for {int(bad[j])} lanes at {param} = {values[j]}"
        )
    for j in range(len(values)):
        kl, ke = int(totals["lane_fail"][j]), int(totals["engine_fail"][j])
        lo, hi, _ = _lane_interval(kl, n_lanes, totals["nfail_hist"][j], lay.lanes)
        out["lane"]["yield"].append(1 - kl / n_lanes)
        out["lane"]["ci"].append([1 - hi, 1 - lo])
        lo, hi = clopper_pearson(ke, n_eng)
        out["engine"]["yield"].append(1 - ke / n_eng)
        out["engine"]["ci"].append([1 - hi, 1 - lo])
        sy, sci = switch_from_engine((1 - ke / n_eng, (1 - hi, 1 - lo)), e)
        out["switch"]["yield"].append(sy)
        out["switch"]["ci"].append(list(sci))
    return out
