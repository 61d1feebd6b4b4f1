"""The ``auto`` policy and :func:`estimate_rare`, the entry point of every method.

``"auto"`` (issue 13: fast where FORM's picture holds, never a tight wrong interval
where it does not):

1. FORM with multiple starts (:mod:`.form`, "loose": near points count too).
2. Geometry (:mod:`.explore`): a probe of 16–32 points just beyond the most probable
   design point finds branches FORM missed and recognises a failure domain that
   surrounds the origin; if the origin itself fails, FORM is meaningless ("origin").
3. "local" geometry: importance sampling on the Gaussian mixture of all design
   points (:mod:`.importance`), trusted when its health checks pass (:mod:`.health`).
4. Otherwise, or when those checks fail: cross-entropy importance sampling with a
   von Mises–Fisher × log-normal mixture (:mod:`.spherical`), started from the design
   points, a uniform-direction component for a surrounding domain, the failing probe
   points, or N(0, I) itself when the origin fails; trusted when its checks pass.
5. Otherwise subset simulation (:mod:`.subset`) with the remaining budget; it reduces
   to crude Monte Carlo when pf is not small. When it is itself unreliable the interval
   is widened ten-fold on each side and ``reliable = False``: a wide honest interval
   rather than a tight wrong one.

Each sampling stage gets at most ``is_share·max_evals`` evaluations. On a hyperplane
(and a union of half-spaces) this is FORM + probe + one Gaussian IS run: fewer
evaluations than before the probe existed (the planned stopping of :mod:`.health`
saves more than the probe costs). The key of a call is split once into (FORM, IS,
subset) keys, and the IS key into (probe, Gaussian IS, spherical) keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from cpojax.estimators.limit_state import check_limit_state
from cpojax.estimators.rare.common import METHODS, Options, parse_options
from cpojax.estimators.rare.explore import explore
from cpojax.estimators.rare.form import form_result, given_points, run_form
from cpojax.estimators.rare.importance import run_is
from cpojax.estimators.rare.spherical import init_mixture, run_spherical, spread_out
from cpojax.estimators.rare.subset import run_subset
from cpojax.estimators.result import FailureResult

__all__ = ["estimate_rare", "run_auto"]


def estimate_rare(
    limit_state, *, dim: int, key, method: str = "auto", **kwargs: Any
) -> FailureResult:
    """Rare-event estimate of P[min_k g_k(U) < 0], U ~ N(0, I_dim).

    Args:
      limit_state: ``g(u: f[n, dim]) -> f[n] | f[n, k]``, jnp-traceable, row-wise; failure
        where any column is < 0. Pass the same function object across calls (it is a
        static jit argument).
      dim: dimension of u, ≥ 1.
      key: ``jax.random`` key.
      method: "form", "is", "subset" or "auto" (one module each in
        :mod:`cpojax.estimators.rare`; "auto" is the policy of this module).
      **kwargs: ``target_cov`` (0.1, in (0, 10]): sampling stops once the estimated cov
        is ≤ this; ``max_evals`` (200_000): limit-state rows allowed in total (the
        result is flagged unreliable when the cov target was not met within it);
        ``n_starts`` (8): FORM starts per column, antithetic pairs on the unit sphere;
        ``n_batch`` (100): IS batch size; ``n_ce`` (2): IS batches used for
        cross-entropy refinement; ``n_ce_level`` (500): samples per cross-entropy
        level of the spherical sampler; ``n_per_level`` (2000) and ``p0`` (0.1): subset
        samples per level and level probability; ``max_iter`` (50): FORM iterations;
        ``form_tol``: FORM tolerance in u units (1e-3 for float32, 1e-5 for float64);
        ``min_ess`` (30), ``max_weight_share`` (0.1): IS health thresholds;
        ``is_share`` (0.25): share of ``max_evals`` the IS stage of "auto" may use;
        ``dtype`` (float32): sampling dtype; ``design_points``: list of
        (u f[dim], β, column) that replaces the FORM search (for "is"/"auto", e.g. found
        on a smaller problem and mapped by symmetry), with ``prior_evals`` the
        evaluations spent finding them (added to ``n_evals``).

    Returns:
      A :class:`FailureResult`; ``diagnostics`` holds design points, ESS, weight-tail
      and agreement checks, per-level subset data and convergence histories.

    Raises:
      ValueError: bad arguments (named, with the allowed range).
      InvalidModelOutput: the limit state returned NaN or inf.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an int ≥ 1, got {dim!r}")
    dim = int(dim)
    kwargs = dict(kwargs)
    design_points = kwargs.pop("design_points", None)
    prior_evals = kwargs.pop("prior_evals", 0)
    opts = parse_options(kwargs)
    n_cols = check_limit_state(limit_state, dim, opts.dtype)
    k_form, k_is, k_ss = jax.random.split(key, 3)
    if method == "subset":
        return run_subset(limit_state, k_ss, dim, opts.max_evals, opts)
    if design_points is not None:
        form = given_points(design_points, dim, n_cols, method, prior_evals)
    else:
        form = run_form(limit_state, k_form, dim, n_cols, opts, loose=method != "form")
    form["dim"] = dim
    if method == "form":
        form.pop("dim")
        return form_result(form)
    remaining = opts.max_evals - form["n_evals"]
    if method == "is":
        res = run_is(limit_state, k_is, form, n_cols, remaining, opts)
        return dataclasses.replace(
            res,
            n_evals=res.n_evals + form["n_evals"],
            diagnostics={**res.diagnostics, "form_n_evals": form["n_evals"]},
        )
    return run_auto(limit_state, k_is, k_ss, form, n_cols, opts)


def run_auto(
    limit_state, k_is, k_ss, form: dict[str, Any], n_cols: int, opts: Options
) -> FailureResult:
    """The auto policy after the FORM stage (module docstring)."""
    dim = int(form["dim"])
    k_probe, k_is, k_sph = jax.random.split(k_is, 3)
    stage_budget = max(int(opts.is_share * opts.max_evals), 2 * opts.n_batch)
    stages: dict[str, Any] = {"form": {"pf": form["pf"], "n_evals": form["n_evals"]}}
    used = form["n_evals"]
    points = list(form["points"]) + list(form.get("near_points", []))
    geometry, radius, seeds = "local", None, []
    if form.get("origin_fails"):
        geometry = "origin"  # FORM is meaningless: the failure domain holds the origin
    elif dim >= 2:
        ex = explore(limit_state, k_probe, form, dim, opts)
        used += ex["n_evals"]
        points, geometry, radius, seeds = ex["points"], ex["geometry"], ex["radius"], ex["seeds"]
        stages["explore"] = {**ex["diagnostics"], "geometry": geometry, "n_evals": ex["n_evals"]}
    if geometry == "local" and not any(b > 0 for _, b, _ in points):
        geometry = "none"  # no usable design point (every FORM search failed)

    def finish(res: FailureResult, chosen: str, widen: bool = False) -> FailureResult:
        ci = res.ci
        if widen and not res.reliable:
            ci = (ci[0] / 10.0, min(1.0, ci[1] * 10.0))
        return dataclasses.replace(
            res,
            ci=ci,
            n_evals=used,
            method="auto",
            diagnostics={
                **res.diagnostics,
                "stages": stages,
                "chosen": chosen,
                "geometry": geometry,
            },
        )

    def record(name: str, res: FailureResult) -> None:
        stages[name] = {
            "pf": res.pf,
            "ci": res.ci,
            "n_evals": res.n_evals,
            "reliable": res.reliable,
            "checks": res.diagnostics.get("checks"),
        }

    if geometry == "local":
        budget = min(opts.max_evals - used, stage_budget)
        if budget >= opts.n_batch:
            res = run_is(limit_state, k_is, {**form, "points": points}, n_cols, budget, opts)
            used += res.n_evals
            record("is", res)
            if res.reliable:
                return finish(res, "is")
    if dim >= 2:
        budget = min(opts.max_evals - used, stage_budget)
        if budget >= opts.n_batch * max(1, round(opts.n_ce_level / opts.n_batch)):
            centres = [] if geometry == "origin" else [p for p in points if p[1] > 0]
            if geometry in ("none", "local"):
                centres = centres + spread_out(seeds, 8)  # failing probe points
            mix = init_mixture(centres, dim, radius=radius if geometry == "surrounding" else None)
            res = run_spherical(limit_state, k_sph, mix, n_cols, budget, opts)
            used += res.n_evals
            record("spherical", res)
            if res.reliable:
                return finish(res, "spherical")
    res = run_subset(limit_state, k_ss, dim, max(opts.max_evals - used, 0), opts)
    used += res.n_evals
    record("subset", res)
    return finish(res, "subset", widen=True)
