"""FORM: most probable failure point(s) by the improved HL-RF algorithm.

Hasofer & Lind 1974, Rackwitz & Fiessler 1978, with the merit-function line search of
Zhang & Der Kiureghian 1995 ("Finite element reliability methods for inelastic
structures", UCB/SEMM-97/05), run from several antithetic starts per limit-state
column, batched. ``pf = 1 − Π_k (1 − Φ(−β_k))`` (first-order series system,
independent columns). FORM is an approximation with no sampling error and no error
estimate, so it claims no interval: ``ci = (0, 1)``, ``cov = inf`` and
``reliable = False`` always (nothing validates it); ``pf`` is the FORM value. Its
design points seed the importance sampler (:mod:`.importance`).

The search relies on the limit state being row-wise: all per-row gradients come from
one reverse pass of ``sum(g)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.rare.common import Options, eval_columns, raise_invalid
from cpojax.estimators.result import FailureResult
from cpojax.estimators.stats import norm_sf

__all__ = ["distinct", "form_result", "given_points", "run_form", "search"]

#: A search end point within this share of its radius from the surface is "near".
_NEAR_SURFACE = 0.05
#: Iterations after which ``loose`` searches stop rows that are near the surface.
_NEAR_AFTER = 10


@functools.partial(
    jax.jit, static_argnames=("limit_state", "max_iter", "n_ls", "tol", "near_after")
)
def _form_search(
    limit_state, u0, cols, *, max_iter: int, n_ls: int, tol: float, near_after: int = 0
):
    """Batched improved HL-RF searches, one per row of ``u0`` on column ``cols[row]``.

    Step (Rackwitz & Fiessler 1978): ``d = ((∇g·u − g)/|∇g|²)∇g − u``; merit
    ``m(u) = ½|u|² + c|g(u)|`` with ``c = 2·max(|u|/|∇g|, ½|u+d|²/|g|)`` and Armijo
    backtracking ``λ = 1, ½, ...`` (Zhang & Der Kiureghian 1995). Converged when the
    distance to the surface ``|g|/|∇g|`` and the distance of ``u`` from the ray
    ``−∇g`` are both ≤ tol (in u units).
    """
    dtype = u0.dtype
    m = u0.shape[0]
    sel = cols[:, None]

    def vg(u):
        def f(u):
            gm = eval_columns(limit_state, u, dtype)
            gs = jnp.take_along_axis(gm, sel, axis=1)[:, 0]
            return jnp.sum(gs), (gs, gm)

        (_, (gs, gm)), grad = jax.value_and_grad(f, has_aux=True)(u)
        bad = ~(jnp.all(jnp.isfinite(gm), axis=1) & jnp.all(jnp.isfinite(grad), axis=1))
        return gs, grad, bad

    def gval(u):
        gm = eval_columns(limit_state, u, dtype)
        gs = jnp.take_along_axis(gm, sel, axis=1)[:, 0]
        return gs, ~jnp.all(jnp.isfinite(gm), axis=1)

    def surface_dist(g, grad):
        gn = jnp.linalg.norm(grad, axis=1)
        return jnp.where(gn > 0, jnp.abs(g) / jnp.where(gn > 0, gn, 1.0), jnp.inf)

    def is_converged(u, g, grad):
        gn = jnp.linalg.norm(grad, axis=1)
        ok = gn > 0
        gns = jnp.where(ok, gn, 1.0)
        alpha = -grad / gns[:, None]
        perp = u - jnp.sum(alpha * u, axis=1, keepdims=True) * alpha
        un = jnp.linalg.norm(u, axis=1)
        return (
            ok
            & (jnp.abs(g) / gns <= tol)
            & (jnp.linalg.norm(perp, axis=1) <= tol * jnp.maximum(un, 1.0))
        )

    # The origin once (one row), its value read for every start's column.
    gm0 = eval_columns(limit_state, jnp.zeros((1, u0.shape[1]), dtype), dtype)
    g_origin = gm0[0, cols]
    bad_origin = ~jnp.all(jnp.isfinite(gm0))
    g, grad, bad = vg(u0)
    conv = is_converged(u0, g, grad) & ~bad
    hist = jnp.full((max_iter + 1, m), jnp.nan, dtype).at[0].set(jnp.linalg.norm(u0, axis=1))
    # best distance to the surface |g|/|∇g| so far and the iteration it last improved by
    # ≥ 10 % (stall detection of loose searches)
    d_best = surface_dist(g, grad)
    it_best = jnp.zeros(m, jnp.int32)
    n_ev = jnp.asarray(m + 1, jnp.int32)
    n_bad = jnp.sum(bad).astype(jnp.int32) + bad_origin.astype(jnp.int32)
    alive = ~bad

    def cond(s):
        u, g, grad, conv, alive, it = s[:6]
        it_best, n_noprog = s[10], s[11]
        pending = ~conv & alive
        if near_after:
            # loose: rows on the surface after near_after iterations count as done, and
            # so do stalled rows (HL-RF cycling at a kink): three line searches in a row
            # without sufficient decrease, or no 10 % gain on the best distance to the
            # surface for five iterations
            d_now = surface_dist(g, grad)
            scale = jnp.maximum(jnp.linalg.norm(u, axis=1), 1.0)
            stalled = (n_noprog >= 3) | (it - it_best >= 5)
            on_surface = (it >= near_after) & (d_now <= _NEAR_SURFACE * scale)
            pending = pending & ~on_surface & ~stalled
        return (it < max_iter) & jnp.any(pending)

    def body(s):
        u, g, grad, conv, alive, it, n_ev, n_bad, hist, d_best, it_best, n_noprog = s
        gn2 = jnp.sum(grad * grad, axis=1)
        active = ~conv & alive & (gn2 > 0)
        gn2s = jnp.where(gn2 > 0, gn2, 1.0)
        d = (jnp.sum(grad * u, axis=1) - g)[:, None] / gn2s[:, None] * grad - u
        d = jnp.where(active[:, None], d, 0.0)
        un = jnp.linalg.norm(u, axis=1)
        c = 2.0 * jnp.maximum(
            un / jnp.sqrt(gn2s),
            0.5 * jnp.sum((u + d) ** 2, axis=1) / jnp.maximum(jnp.abs(g), 1e-30),
        )
        merit0 = 0.5 * un**2 + c * jnp.abs(g)
        slope = jnp.sum(u * d, axis=1) + c * jnp.sign(g) * jnp.sum(grad * d, axis=1)

        def ls_cond(t):
            k, pending, *_ = t
            return (k < n_ls) & jnp.any(pending)

        def ls_body(t):
            k, pending, u_new, n_ev, n_bad, armijo = t
            lam = jnp.asarray(0.5, dtype) ** k.astype(dtype)
            u_try = u + lam * d
            g_try, bad_try = gval(u_try)
            merit = 0.5 * jnp.sum(u_try**2, axis=1) + c * jnp.abs(g_try)
            ok = (merit <= merit0 + 1e-4 * lam * slope) & ~bad_try
            last = k == n_ls - 1
            take = pending & (ok | last)
            u_new = jnp.where(take[:, None], u_try, u_new)
            n_bad = n_bad + jnp.sum(bad_try & pending).astype(jnp.int32)
            armijo = armijo | (pending & ok)
            return k + 1, pending & ~take, u_new, n_ev + m, n_bad, armijo

        _, _, u_new, n_ev, n_bad, armijo = jax.lax.while_loop(
            ls_cond,
            ls_body,
            (jnp.asarray(0, jnp.int32), active, u, n_ev, n_bad, jnp.zeros(m, bool)),
        )
        # consecutive iterations whose line search found no sufficient decrease
        n_noprog = jnp.where(active & ~armijo, n_noprog + 1, 0)
        g2, grad2, bad2 = vg(u_new)
        n_ev = n_ev + m
        n_bad = n_bad + jnp.sum(bad2 & active).astype(jnp.int32)
        upd = active & ~bad2
        u = jnp.where(upd[:, None], u_new, u)
        g = jnp.where(upd, g2, g)
        grad = jnp.where(upd[:, None], grad2, grad)
        alive = alive & ~(active & bad2)
        conv = conv | (upd & is_converged(u, g, grad))
        hist = hist.at[it + 1].set(jnp.linalg.norm(u, axis=1))
        d_now = surface_dist(g, grad)
        better = d_now < 0.9 * d_best
        d_best = jnp.where(better, d_now, d_best)
        it_best = jnp.where(better, it + 1, it_best)
        return u, g, grad, conv, alive, it + 1, n_ev, n_bad, hist, d_best, it_best, n_noprog

    state = (
        u0,
        g,
        grad,
        conv,
        alive,
        jnp.asarray(0, jnp.int32),
        n_ev,
        n_bad,
        hist,
        d_best,
        it_best,
        jnp.zeros(m, jnp.int32),
    )
    u, g, grad, conv, alive, it, n_ev, n_bad, hist = jax.lax.while_loop(cond, body, state)[:9]
    gn = jnp.linalg.norm(grad, axis=1)
    gns = jnp.where(gn > 0, gn, 1.0)
    return {
        "u": u,
        "g": g,
        "alive": alive & (gn > 0),
        "surface_dist": jnp.abs(g) / gns,
        "g_origin": g_origin,
        "converged": conv,
        "iterations": it,
        "n_evals": n_ev,
        "n_invalid": n_bad,
        "history": hist,
    }


def search(
    limit_state, u0, cols, opts: Options, *, loose: bool = False, stage: str = "the FORM search"
):
    """Batched HL-RF searches from the rows of ``u0`` (column ``cols[row]``), on the host.

    Returns the end points with their signed β (negative where the origin fails that
    column), which converged, and which are *near* design points: not converged (HL-RF
    is slow on strongly curved surfaces and cycles at kinks such as the corner of a
    parallel system) but within 5 % of their radius of the surface after the search,
    where the merit-function line search has brought them close to the most probable
    point — good enough as importance-sampling centres (the sampler corrects for where
    its centres are), not for the FORM estimate itself. ``loose``: stop rows once they
    are near after 10 iterations instead of running all ``max_iter`` (every row of the
    batch is evaluated at every iteration, so one cycling row costs the whole batch).
    """
    dtype = opts.dtype
    tol = opts.form_tol if opts.form_tol is not None else (1e-3 if dtype == jnp.float32 else 1e-5)
    out = jax.device_get(
        _form_search(
            limit_state,
            jnp.asarray(u0, dtype),
            jnp.asarray(cols, jnp.int32),
            max_iter=opts.max_iter,
            n_ls=8,
            tol=tol,
            near_after=_NEAR_AFTER if loose else 0,
        )
    )
    n_evals = int(out["n_evals"])
    raise_invalid(int(out["n_invalid"]), n_evals, stage)
    u = np.asarray(out["u"], np.float64)
    conv = np.asarray(out["converged"])
    sign = np.where(np.asarray(out["g_origin"]) >= 0, 1.0, -1.0)
    un = np.linalg.norm(u, axis=1)
    scale = np.maximum(un, 1.0)
    near = (
        np.asarray(out["alive"])
        & ~conv
        & (sign > 0)
        & (np.asarray(out["surface_dist"], np.float64) <= _NEAR_SURFACE * scale)
    )
    return {
        "u": u,
        "betas": sign * un,
        "conv": conv,
        "near": near,
        "cols": np.asarray(cols),
        "n_evals": n_evals,
        "iterations": int(out["iterations"]),
        "history": np.asarray(out["history"], np.float64),
        "origin_fails": bool(np.any(sign < 0)),
    }


def distinct(points, u, betas, cols, mask):
    """``points`` extended by the rows of ``u`` selected by ``mask`` that are not within
    ``0.1·max(1, |β|)`` of a point already there, most probable first."""
    points = list(points)
    for i in np.argsort(betas, kind="stable"):
        if not mask[i]:
            continue
        tol_i = 0.1 * max(1.0, abs(betas[i]))
        if all(np.linalg.norm(u[i] - p) > tol_i for p, _, _ in points):
            points.append((u[i], float(betas[i]), int(cols[i])))
    return points


def run_form(
    limit_state, key, dim: int, n_cols: int, opts: Options, *, loose: bool = False
) -> dict[str, Any]:
    """Multi-start FORM on every column; returns design points and the FORM estimate.

    ``points`` are the distinct converged design points (they make the FORM estimate);
    ``near_points`` the distinct end points that did not converge but lie near a design
    point (:func:`search`), used as extra importance-sampling centres by ``is`` and
    ``auto``, which run the search ``loose``.
    """
    dtype = opts.dtype
    s = opts.n_starts
    z = jax.random.normal(key, ((s + 1) // 2, dim), dtype)
    z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    starts = jnp.concatenate([z, -z], axis=0)[:s]  # antithetic pairs, radius 1
    u0 = jnp.tile(starts, (n_cols, 1))
    cols = np.repeat(np.arange(n_cols, dtype=np.int32), s)
    out = search(limit_state, u0, cols, opts, loose=loose)
    u, betas, conv = out["u"], out["betas"], out["conv"]
    beta_col = np.full(n_cols, np.inf)
    for k in range(n_cols):
        mk = conv & (cols == k)
        if mk.any():
            beta_col[k] = betas[mk].min()
    pf_col = np.array([norm_sf(b) if np.isfinite(b) else 0.0 for b in beta_col])
    pf = float(1.0 - np.prod(1.0 - pf_col))
    points = distinct([], u, betas, cols, conv)
    near = distinct(points, u, betas, cols, out["near"])[len(points) :]
    return {
        "pf": pf,
        "n_evals": out["n_evals"],
        "points": points,
        "near_points": near,
        "origin_fails": out["origin_fails"],
        "beta_columns": beta_col.tolist(),
        "pf_columns": pf_col.tolist(),
        "converged": conv.tolist(),
        "all_converged_columns": bool(np.all(np.isfinite(beta_col))),
        "iterations": out["iterations"],
        "beta_history": out["history"][: out["iterations"] + 1],
    }


def given_points(design_points, dim: int, n_cols: int, method: str, prior_evals) -> dict[str, Any]:
    """FORM stage replaced by design points the caller found (e.g. by symmetry).

    Each entry is (u f[dim], β, column); ``prior_evals`` (the evaluations the caller
    spent finding them) is counted in ``n_evals``.
    """
    if method == "form":
        raise ValueError("design_points are for method 'is' or 'auto', not 'form'")
    if (
        isinstance(prior_evals, bool)
        or not isinstance(prior_evals, (int, np.integer))
        or prior_evals < 0
    ):
        raise ValueError(f"prior_evals must be an int >= 0, got {prior_evals!r}")
    points = []
    for entry in design_points:
        u, beta, col = entry
        u = np.asarray(u, np.float64)
        if u.shape != (dim,):
            raise ValueError(f"design_points: each point must have shape ({dim},), got {u.shape}")
        if not 0 <= int(col) < n_cols:
            raise ValueError(f"design_points: column must be in [0, {n_cols - 1}], got {col}")
        points.append((u, float(beta), int(col)))
    points.sort(key=lambda p: p[1])
    pf_pts = [norm_sf(b) for _, b, _ in points]
    return {
        "pf": float(1.0 - np.prod(1.0 - np.asarray(pf_pts))) if points else 0.0,
        "n_evals": int(prior_evals),
        "points": points,
        "given": True,
    }


def form_result(form: dict[str, Any]) -> FailureResult:
    """The FORM stage as a result: the FORM pf with no interval (``ci = (0, 1)``,
    ``cov = inf``: FORM has no error estimate) and ``reliable = False``."""
    pf = form["pf"]
    diag = {k: v for k, v in form.items() if k not in ("pf", "n_evals")}
    diag["design_points"] = [p for p, _, _ in form.pop("points", [])] or []
    diag["design_columns"] = [c for _, _, c in diag["points"]]
    diag["design_betas"] = [b for _, b, _ in diag.pop("points")]
    diag["note"] = (
        "FORM is a first-order approximation without sampling error and without an "
        "error estimate: no interval is claimed (ci = (0, 1), cov = inf); not validated."
    )
    return FailureResult(
        pf=pf,
        ci=(0.0, 1.0),
        cov=math.inf,
        n_evals=form["n_evals"],
        method="form",
        reliable=False,
        diagnostics=diag,
    )
