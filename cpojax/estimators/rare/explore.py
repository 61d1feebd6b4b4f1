"""A cheap exploratory stage: what does the failure domain look like beyond FORM?

Multi-start FORM finds the design points its starts lead to. From starts near the
origin, a series system written as ``min(g₁, …, g_m)`` leads HL-RF to whichever branch
is smallest *there*, so branches that dominate only further out are never found (the
four-branch series system of Waarts 2000: both β = 3.5 branches are missed and the
estimate is 20 % low), and when the failure domain surrounds the origin every start
finds "its own" design point and the Gaussian mixture built on them covers a sliver
of it (hypersphere exterior).

The probe: ``M`` antithetic directions (32 up to dimension 8, else 16) on the sphere
of radius ``ρ = β_min + 1`` just beyond the most probable design point found, each
evaluated with its gradient (one value-and-gradient counts as one evaluation). The
linearisation at each probe point, ``u_lin = ((∇g·u − g)/|∇g|²)∇g`` (one HL-RF step),
predicts the design point of the branch active there. A prediction is *relevant* when
its β is below ``sqrt(β_min² + 2 ln 100)`` (the branch could hold ≥ 1 % of the leading
one's probability) and *new* when its direction is more than 25° from every known
design point. Then:

* **surrounding**: more than 8 new directions 25° apart from *failing* probe points,
  or (from dimension 3 on, where a half-space covers a small cap of the sphere) at
  least half the probe points fail: FORM's picture (a few points) is meaningless; the
  caller switches to the spherical sampler (:mod:`.spherical`). Predictions from
  safe probe points do not count: on a curved surface they scatter (below);
* **new branches**: HL-RF runs from each new direction (at most 16, as one batched
  search; from the probe point itself when it fails, else from its prediction) and the
  distinct converged or near points are added; a failing probe point whose direction
  no point then covers becomes a centre itself;
* nothing new: the design points found by FORM stand (a linear limit state costs the
  ``M`` probe evaluations, nothing else).

A prediction from a curved branch lands off its design point (tangent planes of a
curved surface pass closer to the origin); the extra HL-RF search then converges back
to the known point and is deduplicated: it costs evaluations, never correctness.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.rare.common import Options, eval_columns, raise_invalid
from cpojax.estimators.rare.form import distinct, search

__all__ = ["explore", "probe_size"]

_NEW_DEG = 25.0  # a prediction this far (in angle) from every known point is new
_MAX_NEW = 8  # more new directions than this: the domain surrounds the origin
_MAX_SEARCH = 16  # HL-RF searches from new directions, at most
_SEARCH_SIZES = (2, 4, 8, 16)  # batch sizes of those searches (few compilations)


def probe_size(dim: int) -> int:
    """Probe points: 32 up to dimension 8, else 16 (in high dimension random directions
    cannot find a local branch anyway; they still see a surrounding domain)."""
    return 32 if dim <= 8 else 16


@functools.partial(jax.jit, static_argnames=("limit_state",))
def _probe(limit_state, u):
    """min over columns of g, the active column and the gradient of its value."""

    def f(u):
        gm = eval_columns(limit_state, u, u.dtype)
        gmin = jnp.min(gm, axis=1)
        return jnp.sum(gmin), (gm, gmin)

    (_, (gm, gmin)), grad = jax.value_and_grad(f, has_aux=True)(u)
    bad = ~(jnp.all(jnp.isfinite(gm), axis=1) & jnp.all(jnp.isfinite(grad), axis=1))
    return {"g": gmin, "col": jnp.argmin(gm, axis=1), "grad": grad, "n_invalid": jnp.sum(bad)}


def _cos_max(v: np.ndarray, dirs: list[np.ndarray]) -> float:
    return max((float(v @ d) for d in dirs), default=-1.0)


def explore(limit_state, key, form: dict[str, Any], dim: int, opts: Options) -> dict[str, Any]:
    """Run the probe (module docstring) after the FORM stage ``form``.

    Returns a dict: ``points`` (FORM's converged and near points plus new ones),
    ``geometry`` ("local", "surrounding" or "none": no relevant point found),
    ``radius`` (the β the probe suggests for a surrounding domain), ``seeds`` (the
    failing probe points, as (u, |u|, column)), ``n_evals`` and diagnostics.
    """
    known = list(form["points"]) + list(form.get("near_points", []))
    pos = [b for _, b, _ in known if b > 0]
    beta0 = min(pos) if pos else None
    rho = beta0 + 1.0 if beta0 is not None else 4.0
    m = probe_size(dim)
    z = np.array(jax.random.normal(key, (m // 2, dim), opts.dtype), np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    dirs = np.concatenate([z, -z])
    out = jax.device_get(_probe(limit_state, jnp.asarray(rho * dirs, opts.dtype)))
    n_evals = m
    raise_invalid(int(out["n_invalid"]), m, "the exploratory probe")
    g = np.asarray(out["g"], np.float64)
    grad = np.asarray(out["grad"], np.float64)
    u = rho * dirs
    gn2 = np.sum(grad * grad, axis=1)
    ok = gn2 > 0
    lam = np.where(ok, (np.sum(grad * u, axis=1) - g) / np.where(ok, gn2, 1.0), 0.0)
    u_lin = lam[:, None] * grad
    b_lin = np.linalg.norm(u_lin, axis=1)
    b_ref = beta0 if beta0 is not None else rho
    b_cut = math.sqrt(b_ref * b_ref + 2.0 * math.log(100.0))
    relevant = ok & (b_lin > 1e-9) & (b_lin <= b_cut)
    cos_new = math.cos(math.radians(_NEW_DEG))
    known_dirs = [p / np.linalg.norm(p) for p, b, _ in known if b > 0 and b <= b_cut]
    new_dirs: list[np.ndarray] = []
    new_rows: list[int] = []
    for i in np.argsort(b_lin, kind="stable"):
        if not relevant[i]:
            continue
        d = u_lin[i] / b_lin[i]
        if _cos_max(d, known_dirs) >= cos_new or _cos_max(d, new_dirs) >= cos_new:
            continue
        new_dirs.append(d)
        new_rows.append(int(i))
    # failing probe points: seeds of the spherical sampler when no design point helps
    seeds = [(u[i], float(rho), int(out["col"][i])) for i in np.flatnonzero(g < 0)]
    frac_fail = float(np.mean(g < 0))
    fail_lin = b_lin[(g < 0) & relevant]
    n_new_fail = sum(bool(g[i] < 0) for i in new_rows)
    diag: dict[str, Any] = {
        "radius_probed": rho,
        "n_probe": m,
        "frac_fail": frac_fail,
        "n_new_directions": len(new_dirs),
        "n_new_failing": n_new_fail,
        "n_relevant": int(relevant.sum()),
    }
    if n_new_fail > _MAX_NEW or (frac_fail >= 0.5 and dim >= 3):
        radius = float(np.median(fail_lin)) if fail_lin.size else float(np.median(b_lin[relevant]))
        return {
            "points": known,
            "geometry": "surrounding",
            "radius": radius,
            "seeds": seeds,
            "n_evals": n_evals,
            "diagnostics": diag,
        }
    points = known
    if new_rows:
        rows = new_rows[:_MAX_SEARCH]
        size = next(s for s in _SEARCH_SIZES if s >= len(rows))
        rows = (rows * size)[:size]  # pad by repetition: one compilation per size
        # From a failing probe point, search from the point itself: its branch is the
        # active one there, while the linearised point may lie where another branch of
        # a min(...) column is smaller (and HL-RF would follow that one).
        starts = np.where((g[rows] < 0)[:, None], u[rows], u_lin[rows])
        res = search(
            limit_state,
            starts,
            np.asarray(out["col"])[rows],
            opts,
            loose=True,
            stage="the HL-RF searches from the probe",
        )
        n_evals += res["n_evals"]
        mask = res["conv"] | res["near"]
        points = distinct(known, res["u"], res["betas"], res["cols"], mask)
        diag["searches"] = len(set(rows))
        diag["found"] = len(points) - len(known)
        # A failing probe direction that no point covers still gets a centre: the
        # probe point itself (in the failure domain, if not at its most probable point).
        dirs_now = [q / np.linalg.norm(q) for q, b, _ in points if b > 0]
        extra = [
            (u[i], rho, int(out["col"][i]))
            for i in new_rows
            if g[i] < 0 and _cos_max(dirs[i], dirs_now) < cos_new
        ]
        points = points + extra
        diag["uncovered_failing"] = len(extra)
    geometry = "local" if any(b > 0 for _, b, _ in points) else "none"
    return {
        "points": points,
        "geometry": geometry,
        "radius": rho,
        "seeds": seeds,
        "n_evals": n_evals,
        "diagnostics": diag,
    }
