"""Rare-event yield of lanes and engines: FORM, importance sampling, subset simulation.

The photonic model is handed to the generic estimators of
:mod:`cpojax.estimators.rare` as a limit-state function of standard normals:

* lane level: u ∈ R^{lane_dim} (the lane's engine-wide, own and laser normals,
  :func:`cpojax.variation.lane_deviations`) → g ∈ R^4 (the four limit states);
* engine level: u ∈ R^{engine_dim} → g ∈ R^{lanes·4}: one column per (lane, limit
  state). An engine fails when any lane fails, so engine failure is the union of
  lanes × limit states failure regions; the estimators search a design point per
  column (several starts each) and importance-sample a mixture with one component
  per distinct design point, or fall back to subset simulation, which needs no
  design point at all.

Engines with spare lanes fail only when more than ``spare_lanes`` lanes fail, which
is not a union of per-column regions: the rare-event path requires
``spare_lanes = 0`` (crude Monte Carlo handles spares).

The FORM design point also gives an attribution: the importance factor
α_i² = u*_i²/β² of each coordinate says which spread pushed the most probable
failing lane over the edge (Ditlevsen & Madsen, Structural Reliability Methods,
1996, §5.3); factors are summed per spread variable.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import model, variation
from cpojax.estimators.rare import estimate_rare
from cpojax.estimators.result import FailureResult
from cpojax.estimators.stats import norm_sf
from cpojax.levels import LevelYield, switch_from_engine
from cpojax.scenario import Scenario
from cpojax.validate import check_scenario, resolve_key

__all__ = ["RareYieldResult", "estimate_yield_rare", "scale_spreads"]

METHODS = ("form", "is", "subset", "auto")


@dataclasses.dataclass(frozen=True)
class RareYieldResult:
    """Lane / engine / switch yield from a rare-event estimator.

    Attributes:
      lane, engine, switch: :class:`~cpojax.levels.LevelYield` (NaN for a level not
        estimated).
      method: the method asked for.
      reliable: False when any estimator's own checks failed.
      lane_result, engine_result: the generic estimators' results (failure
        probabilities), or None.
      n_evals: lane-model evaluations (an engine evaluation counts lanes_per_engine).
      failure_modes, attribution: from the FORM design points.
    """

    lane: LevelYield
    engine: LevelYield
    switch: LevelYield
    method: str
    reliable: bool
    lane_result: FailureResult | None
    engine_result: FailureResult | None
    n_evals: int
    failure_modes: dict[str, float]
    attribution: dict[str, float]
    wall_s: float
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the `cpojax yield --method ... --json` object)."""
        return {
            "lane": self.lane.to_dict(),
            "engine": self.engine.to_dict(),
            "switch": self.switch.to_dict(),
            "method": self.method,
            "reliable": self.reliable,
            "failure_modes": self.failure_modes,
            "attribution": self.attribution,
            "lane_evaluations": self.n_evals,
            "lane_pf": None if self.lane_result is None else self.lane_result.to_dict(),
            "engine_pf": None if self.engine_result is None else self.engine_result.to_dict(),
            "wall_s": self.wall_s,
            "seed": self.seed,
        }


def _form_breakdown(res: FailureResult, lay: variation.Layout, *, engine: bool):
    """Failure modes (share of β⁻² weight per limit state) and importance factors."""
    pts = res.diagnostics.get("design_points") or []
    betas = res.diagnostics.get("design_betas") or [float(np.linalg.norm(p)) for p in pts]
    if not pts:
        return {}, {}
    names = lay.column_names(engine=engine)
    var_of_col = [n.split(":", 1)[1].split("[")[0] for n in names]
    # map Deviations field names back to their spread variable
    field_to_var = {f: v.name for v in variation.VARIABLES for f in v.fields}
    var_of_col = [field_to_var.get(v, v) for v in var_of_col]
    pfs = np.asarray([norm_sf(b) for b in betas])
    w = pfs / pfs.sum() if pfs.sum() > 0 else np.ones_like(pfs) / len(pfs)
    attribution: dict[str, float] = {}
    for p, wi in zip(pts, w, strict=True):
        p = np.asarray(p, float)
        a2 = p**2 / max(float(p @ p), 1e-30)
        for v, a in zip(var_of_col, a2, strict=True):
            attribution[v] = attribution.get(v, 0.0) + float(wi * a)
    return w, dict(sorted(attribution.items(), key=lambda kv: -kv[1]))


def _modes_from_points(res: FailureResult, weights) -> dict[str, float]:
    """Failure-mode shares: each design point's limit state is its column mod K
    (columns are lane·K + limit state), weighted by its FORM probability."""
    cols = res.diagnostics.get("design_columns") or []
    if not cols or len(cols) != len(weights):
        return {}
    out = dict.fromkeys(model.LIMIT_NAMES, 0.0)
    for c, wi in zip(cols, weights, strict=True):
        out[model.limit_of_column(c)] += float(wi)
    return out


def _lane_points_in_engine(
    scenario: Scenario, lay, dtype_name: str, *, key, lane_result=None, **kwargs
):
    """Lane-level FORM design points mapped into every lane's slots of the engine u.

    Lane u = [wafer S | die S | own P | laser Q]; lane i of the engine uses the shared
    columns, its own P columns and the Q columns of laser i // lanes_per_laser.
    The points of ``lane_result`` (a lane-level FORM or IS result) are reused when it
    has them; otherwise a lane-level FORM search runs.
    Returns ([(u_engine, β, column K·i + k)], lane evaluations spent here).
    """
    d = lane_result.diagnostics if lane_result is not None else {}
    spent = 0
    if not d.get("design_columns"):
        form_kw = {
            k: v
            for k, v in kwargs.items()
            if k in ("n_starts", "max_iter", "form_tol", "dtype", "max_evals")
        }
        res = estimate_rare(
            model.limit_state(scenario, "lane", dtype_name),
            dim=lay.lane_dim,
            key=key,
            method="form",
            **form_kw,
        )
        d, spent = res.diagnostics, res.n_evals
    s2, p, q = 2 * lay.n_shared, len(lay.lane), len(lay.laser)
    own0 = s2
    laser0 = s2 + lay.lanes * p
    points = []
    for u, beta, col in zip(
        d["design_points"], d["design_betas"], d["design_columns"], strict=True
    ):
        u = np.asarray(u, np.float64)
        for i in range(lay.lanes):
            e = np.zeros(lay.engine_dim)
            e[:s2] = u[:s2]
            e[own0 + i * p : own0 + (i + 1) * p] = u[s2 : s2 + p]
            li = i // lay.lanes_per_laser
            e[laser0 + li * q : laser0 + (li + 1) * q] = u[s2 + p :]
            points.append((e, float(beta), model.N_LIMIT * i + int(col)))
    return points, spent


def estimate_yield_rare(
    scenario: Scenario,
    *,
    method: str = "auto",
    key=None,
    seed: int | None = 0,
    levels: tuple[str, ...] = ("lane", "engine"),
    dtype=jnp.float32,
    **kwargs: Any,
) -> RareYieldResult:
    """Lane, engine and switch yield by a rare-event method.

    Args:
      scenario: the scenario (``system.spare_lanes`` must be 0).
      method: "form", "is", "subset" or "auto" (:func:`cpojax.estimators.rare.estimate_rare`).
      key: ``jax.random`` key; default ``jax.random.key(seed)``.
      levels: which failure probabilities to estimate ("lane", "engine").
      **kwargs: passed to the estimator (target_cov, max_evals, n_starts, ...).

    Returns:
      :class:`RareYieldResult`; ``n_evals`` counts lane-model evaluations
      (an engine evaluation is ``lanes_per_engine`` lane evaluations).
    """
    scenario = check_scenario(scenario)
    if method not in METHODS:
        raise ValueError(
            f"method must be one of {METHODS} (use estimate_yield for 'mc'), got {method!r}"
        )
    if scenario.system.spare_lanes:
        raise ValueError(
            "rare-event methods need system.spare_lanes = 0 (k-of-n engines are not a union "
            "of failure regions); use the Monte Carlo method for spare lanes"
        )
    bad = [lv for lv in levels if lv not in ("lane", "engine")]
    if bad or not levels:
        raise ValueError(f"levels must name 'lane' and/or 'engine', got {levels!r}")
    key, seed = resolve_key(key, seed)
    lay = variation.layout(scenario)
    k_lane, k_points, k_eng = jax.random.split(key, 3)
    t0 = time.perf_counter()
    dn = jnp.dtype(dtype).name
    lane_res = eng_res = None
    evals = 0
    if "lane" in levels:
        lane_res = estimate_rare(
            model.limit_state(scenario, "lane", dn),
            dim=lay.lane_dim,
            key=k_lane,
            method=method,
            **kwargs,
        )
        evals += lane_res.n_evals
    if "engine" in levels:
        kw = dict(kwargs)
        if method in ("is", "auto") and lay.lanes > 1:
            # Engine failure is the union over lanes; lanes are copies of one another in
            # u-space, so the lane-level design points, placed in each lane's slots, are
            # the engine-level ones: FORM runs on the 48-D lane problem only.
            pts, lane_form_evals = _lane_points_in_engine(
                scenario, lay, dn, key=k_points, lane_result=lane_res, **kwargs
            )
            kw.update(design_points=pts, prior_evals=0)
            evals += lane_form_evals
        eng_res = estimate_rare(
            model.limit_state(scenario, "engine", dn),
            dim=lay.engine_dim,
            key=k_eng,
            method=method,
            **kw,
        )
        evals += eng_res.n_evals * lay.lanes
    wall = time.perf_counter() - t0

    def y(res) -> LevelYield:
        if res is None:
            return LevelYield.nan()
        ci = res.ci  # FORM itself claims none: (0, 1)
        if res.method != "form" and not res.reliable and res.diagnostics.get("chosen") is None:
            # an unreliable "is"/"subset" answer is widened tenfold each side, as
            # "auto" does, rather than shown as a tight wrong interval
            ci = (ci[0] / 10.0, min(1.0, ci[1] * 10.0))
        return LevelYield.from_failure(res.pf, ci)

    lane, engine = y(lane_res), y(eng_res)
    switch = switch_from_engine(engine, scenario.system.engines_per_switch)
    ref = eng_res if eng_res is not None else lane_res
    weights, attribution = _form_breakdown(ref, lay, engine=ref is eng_res)
    modes = _modes_from_points(ref, weights) if len(weights) else {}
    reliable = all(r.reliable for r in (lane_res, eng_res) if r is not None)
    return RareYieldResult(
        lane=lane,
        engine=engine,
        switch=switch,
        method=method,
        reliable=reliable,
        lane_result=lane_res,
        engine_result=eng_res,
        n_evals=int(evals),
        failure_modes=modes,
        attribution=attribution,
        wall_s=wall,
        seed=seed,
    )


def scale_spreads(scenario: Scenario, factor: float) -> Scenario:
    """Scenario with every spread (wafer, die, lane) multiplied by `factor` >= 0."""
    if not (factor >= 0 and math.isfinite(factor)):
        raise ValueError(f"factor must be a finite number >= 0, got {factor}")
    upd = {}
    for v in variation.VARIABLES:
        sp = getattr(scenario.spread, v.name)
        for lvl in ("wafer", "die", "lane"):
            upd[f"spread.{v.name}.{lvl}"] = getattr(sp, lvl) * factor
    return scenario.replace(upd)
