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
import hashlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import counters, kernels, model, rng, variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson
from cpojax.estimators.streaming import stream_counts
from cpojax.levels import LevelYield, switch_from_engine
from cpojax.physics.functional import engine_functional_yield
from cpojax.scenario import Scenario
from cpojax.validate import as_count, check_scenario, resolve_key

__all__ = ["YieldResult", "estimate_yield", "lane_interval"]


@dataclasses.dataclass(frozen=True)
class YieldResult:
    """Yields with 95 % intervals, failure breakdown and the raw counters.

    Attributes:
      lane, engine, switch: :class:`~cpojax.levels.LevelYield` ``(value, lo, hi)``.
      n_engines, n_lanes: samples simulated.
      seed: the seed that made the key (None when a key was given).
      failure_modes: per limit state, the share of failing lanes that violate it.
      lane_fail_fraction: per limit state, the fraction of all lanes that violate it.
      attribution: per spread variable, ``excess_z2`` = E[z²|fail] − 1, ``mean_z`` =
        E[z|fail], and ``excess_z2_<state>`` among lanes failing that state.
      die_level_share: share of failing engines whose median lane already fails.
      yield_vs_lanes: engine yield if the engine had only its first 1, 2, … lanes.
      independent_vs_lanes: the same for independent lanes (lane_yield^k).
      histograms: per limit state, ``{"lo", "hi", "counts"}`` (under/overflow bins
        first and last).
      counts: the raw integer counters.
      wall_s, lane_samples_per_s: wall time (compilation included) and rate.
      lane_design_effect: design effect of lanes clustered in engines.
      thermal_edges: thermal failures split by edge, as shares of failing lanes like
        ``failure_modes`` (``blue`` + ``red`` = ``failure_modes["thermal"]``): ``red``
        the heater runs out, ``blue`` the ring is fabricated too red (it crosses the
        lock point with the heater off and the next order is out of reach).
      functional: defect-limited and assembly yield factors of one engine
        (:func:`cpojax.physics.functional.engine_functional_yield`; empty when
        ``system.functional_yield`` is off).
      implementation: what computed the counters: ``"xla"`` (everything above), or
        ``"pallas"`` / ``"pallas-interpret"`` (the fused kernel of :mod:`cpojax.kernels`:
        yields, failure modes, thermal edges, die-level share, yield vs lanes; it does not
        compute the attribution sums or the histograms of g, so ``attribution`` and
        ``histograms`` are empty and their counters absent from ``counts``).
      engine_total, switch_total: parametric × functional yield (the functional factor
        is a model input, so the interval is the parametric one times it); None when
        ``system.functional_yield`` is off.
    """

    lane: LevelYield
    engine: LevelYield
    switch: LevelYield
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
    thermal_edges: dict[str, float] = dataclasses.field(default_factory=dict)
    functional: dict[str, float] = dataclasses.field(default_factory=dict)
    engine_total: LevelYield | None = None
    switch_total: LevelYield | None = None
    implementation: str = "xla"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the `cpojax yield --json` object)."""
        return {
            "lane": self.lane.to_dict(),
            "engine": self.engine.to_dict(),
            "switch": self.switch.to_dict(),
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
            "thermal_edges": self.thermal_edges,
            "functional": self.functional,
            "engine_total": None if self.engine_total is None else self.engine_total.to_dict(),
            "switch_total": None if self.switch_total is None else self.switch_total.to_dict(),
            # only when the kernel computed the counters (the XLA path's JSON is unchanged)
            **({} if self.implementation == "xla" else {"implementation": self.implementation}),
        }


#: Version of the checkpoint's counters (bumped when the block function's output changes).
STATE_VERSION = 3


def _resume_point(state: Any, fingerprint: str, n_blocks: int, seed) -> tuple[int, dict, float]:
    """(next block, totals, elapsed seconds) of a checkpoint, or ValueError naming it."""
    try:
        if state.get("fingerprint") != fingerprint:
            raise ValueError(
                f"resume state belongs to another run (n_blocks={state.get('n_blocks')}, "
                f"seed={state.get('seed')}, or another scenario, key, dtype, generator or "
                f"cpojax version); this run has n_blocks={n_blocks}, seed={seed}"
            )
        start = int(state["next_block"])
        init = {k: np.asarray(v, np.int64) for k, v in state["totals"].items()}
        elapsed = float(state.get("elapsed_s", 0.0))
    except (AttributeError, KeyError, TypeError) as e:
        raise ValueError(
            f"state is not a checkpoint made by estimate_yield ({type(e).__name__}: {e})"
        ) from None
    if not 0 <= start <= n_blocks:
        raise ValueError(f"state: next_block must be in [0, {n_blocks}], got {start}")
    return start, init, elapsed


def run_fingerprint(scenario: Scenario, key, dtype, generator: str, n_blocks: int) -> str:
    """Hash of everything that determines a run's numbers (guards resumes)."""
    kd = np.asarray(jax.random.key_data(key)).tobytes()
    text = (
        f"{scenario.to_toml(comments=False)}|{jnp.dtype(dtype).name}|{generator}|{n_blocks}"
        f"|v{STATE_VERSION}"
    )
    return hashlib.sha256(text.encode() + kd).hexdigest()


def lane_interval(k_lane: int, n_lanes: int, nfail_hist, lanes: int):
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


def level_yields(
    k_lane: int, k_eng: int, n_eng: int, nfail_hist, lanes: int, engines_per_switch: int
) -> tuple[LevelYield, LevelYield, LevelYield, float]:
    """(lane, engine, switch, lane design effect) from failure counts.

    Engine: exact Clopper-Pearson (engines are i.i.d.); lane: Clopper-Pearson on the
    design-effect-shrunk sample (:func:`lane_interval`); switch: engine^N
    (:func:`~cpojax.levels.switch_from_engine`).
    """
    n_lanes = n_eng * lanes
    lo, hi, deff = lane_interval(k_lane, n_lanes, nfail_hist, lanes)
    lane = LevelYield.from_failure(k_lane / n_lanes, (lo, hi))
    engine = LevelYield.from_failure(k_eng / n_eng, clopper_pearson(k_eng, n_eng))
    return lane, engine, switch_from_engine(engine, engines_per_switch), deff


def invalid_message(scenario: Scenario, totals: dict, n_lanes: int) -> str:
    """What went NaN/inf, where, and which spread was most extreme in those lanes."""
    n_bad = int(totals["invalid"])
    states = np.asarray(totals["invalid_state"], np.int64)
    which = ", ".join(
        f"{name} {int(c)}" for name, c in zip(model.LIMIT_NAMES, states, strict=True) if c
    )
    msg = f"the lane model returned NaN/inf for {n_bad} of {n_lanes} lanes"
    if which:
        msg += f" (limit states: {which})"
    if n_bad and "z2_invalid" in totals:
        z2 = counters.combine(totals["z2_invalid"]) / counters.FIXED / n_bad - 1.0
        names = list(variation.active_variables(scenario))
        top = sorted(zip(names, z2, strict=True), key=lambda t: -t[1])[:3]
        msg += "; the spreads most extreme in those lanes (E[z²] − 1): " + ", ".join(
            f"spread.{n} {v:.2f}" for n, v in top
        )
    probe = int(totals.get("invalid_probe", 0))
    if probe:
        msg += f"; {probe} engines' median lanes (shared variation only) were invalid too"
    return msg + ". Check the scenario for values that break the physics."


def _finish(
    scenario: Scenario,
    totals: dict,
    n_blocks: int,
    seed,
    wall: float,
    implementation: str = "xla",
) -> YieldResult:
    lanes = scenario.system.lanes_per_engine
    n_eng = n_blocks * rng.BLOCK
    n_lanes = n_eng * lanes
    if int(totals["invalid"]) or int(totals.get("invalid_probe", 0)):
        err = InvalidModelOutput(invalid_message(scenario, totals, n_lanes))
        err.n_invalid = int(totals["invalid"])
        raise err
    k_lane = int(totals["lane_fail"])
    k_eng = int(totals["engine_fail"])
    p_lane = k_lane / n_lanes
    lane, engine, switch, deff = level_yields(
        k_lane, k_eng, n_eng, totals["nfail_hist"], lanes, scenario.system.engines_per_switch
    )
    state = np.asarray(totals["state_fail"], np.int64)
    modes = {
        name: (float(state[j]) / k_lane if k_lane else 0.0)
        for j, name in enumerate(model.LIMIT_NAMES)
    }
    lane_frac = {name: float(state[j]) / n_lanes for j, name in enumerate(model.LIMIT_NAMES)}
    names = list(variation.active_variables(scenario))
    attribution = {}
    if "z2_fail" not in totals:  # counters of the Pallas kernel: no attribution sums
        names = []
    else:
        z2 = counters.combine(totals["z2_fail"]) / counters.FIXED
        z1 = counters.combine(totals["z1_fail"]) / counters.FIXED
        z2s = counters.combine(totals["z2_state"]) / counters.FIXED
    for i, n in enumerate(names):
        attribution[n] = {
            "excess_z2": float(z2[i] / k_lane - 1.0) if k_lane else 0.0,
            "mean_z": float(z1[i] / k_lane) if k_lane else 0.0,
            **{
                f"excess_z2_{s}": (float(z2s[j, i] / state[j] - 1.0) if state[j] else 0.0)
                for j, s in enumerate(model.LIMIT_NAMES)
            },
        }
    prefix = np.asarray(totals["prefix_fail"], np.float64)
    yield_vs_lanes = [float(1 - prefix[i] / n_eng) for i in range(lanes)]
    indep = [float((1 - p_lane) ** (i + 1)) for i in range(lanes)]
    hists = {}
    for ls in model.LIMIT_STATES:
        if f"hist_{ls.name}" not in totals:  # not computed by the Pallas kernel
            continue
        lo_, hi_, _bins = ls.hist
        hists[ls.name] = {
            "lo": lo_,
            "hi": hi_,
            "counts": [int(c) for c in totals[f"hist_{ls.name}"]],
        }
    die_share = int(totals["die_fail_engines"]) / k_eng if k_eng else 0.0
    n_red = int(totals.get("thermal_red_fail", 0))
    n_thermal = int(state[counters.THERMAL])
    edges = {
        "blue": (n_thermal - n_red) / k_lane if k_lane else 0.0,
        "red": n_red / k_lane if k_lane else 0.0,
    }
    functional_factors, engine_total, switch_total = {}, None, None
    if scenario.system.functional_yield:
        functional_factors = engine_functional_yield(
            scenario.functional,
            n_lasers=scenario.system.lanes_per_engine // scenario.system.lanes_per_laser,
        )
        f = functional_factors["engine"]
        engine_total = LevelYield(engine.value * f, engine.lo * f, engine.hi * f)
        switch_total = switch_from_engine(engine_total, scenario.system.engines_per_switch)
    counts = {k: (np.asarray(v).tolist() if np.ndim(v) else int(v)) for k, v in totals.items()}
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
        thermal_edges=edges,
        functional=functional_factors,
        engine_total=engine_total,
        switch_total=switch_total,
        implementation=implementation,
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
    implementation: str | None = None,
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
      generator: normal generator of :mod:`cpojax.rng` ("threefry", "hash" or "counter").
      progress: ``progress(engines_done, engines_total)`` after each chunk.
      state: a checkpoint previously given to ``checkpoint``, to resume a run.
      checkpoint: called after each chunk with a small JSON-friendly dict
        (next block and counters) that ``state=`` accepts; resuming from it gives
        the same result as an uninterrupted run.
      devices: None, a device count or a list of devices to shard each chunk's
        blocks over (``chunk_blocks`` must be a multiple); results are identical
        for any device count.
      implementation: what evaluates the blocks (docs/kernels.md): ``"xla"`` (the jnp
        path, every counter), ``"pallas"`` (the fused kernel of :mod:`cpojax.kernels`,
        compiled; GPU), ``"pallas-interpret"`` (the same kernel in Pallas interpret mode,
        any backend, slow) or None (automatic: ``"xla"`` until the kernel is validated
        on a GPU, see ``cpojax.kernels.select.AUTO_PALLAS_BACKENDS``). The kernel draws the ``"counter"``
        stream and computes the yield counters only (no attribution, no histograms;
        ``YieldResult.implementation`` says which ran); with the same seed its counts are
        those of the XLA path. It runs on one device (``devices`` must be None).

    Returns:
      :class:`YieldResult`.
    """
    scenario = check_scenario(scenario)
    n_engines = as_count("n_engines", n_engines)
    chunk_blocks = 1 if chunk_blocks is None else as_count("chunk_blocks", chunk_blocks)
    if generator not in rng.GENERATORS:
        raise ValueError(f"generator must be one of {rng.GENERATORS}, got {generator!r}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable or None")
    if checkpoint is not None and not callable(checkpoint):
        raise TypeError("checkpoint must be callable or None")
    implementation = kernels.resolve_implementation(implementation, generator=generator)
    if implementation != "xla" and devices is not None:
        raise ValueError(
            f"implementation={implementation!r} runs on one device: devices must be None, "
            f"got {devices!r}"
        )
    key, seed = resolve_key(key, seed)
    n_blocks = -(-n_engines // rng.BLOCK)
    # The kernel's counters are another set than the XLA path's: a checkpoint of one
    # cannot resume the other (the XLA path's fingerprint is unchanged).
    fp_gen = generator if implementation == "xla" else f"{generator}|{implementation}"
    fingerprint = run_fingerprint(scenario, key, dtype, fp_gen, n_blocks)
    fn = counters.block_fn(jnp.dtype(dtype).name, generator)
    start, init, elapsed = 0, None, 0.0
    if state is not None:
        start, init, elapsed = _resume_point(state, fingerprint, n_blocks, seed)
    t0 = time.perf_counter()

    def _progress(done, totals):
        if checkpoint is not None:
            checkpoint(
                {
                    "version": STATE_VERSION,
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

    if implementation != "xla":
        totals = kernels.yield_counts(
            scenario,
            key=key,
            n_engines=n_blocks * rng.BLOCK,
            dtype=dtype,
            interpret=implementation == "pallas-interpret",
            chunk_blocks=chunk_blocks if chunk_blocks > 1 else None,
            start_block=start,
            init=init,
            progress=_progress,
        )
        totals = {k: v for k, v in totals.items() if k not in ("n_blocks", "wall_s")}
        wall = elapsed + time.perf_counter() - t0
        return _finish(scenario, totals, n_blocks, seed, wall, implementation)
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
