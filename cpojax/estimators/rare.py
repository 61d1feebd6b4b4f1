"""Rare-event failure-probability estimators: FORM, importance sampling, subset simulation.

All methods work on the generic interface of :mod:`cpojax.estimators`: a limit-state
function of standard normals ``limit_state(u: f[n, dim]) -> f[n] | f[n, k]``, failure
where ANY column is < 0. It must be jnp-traceable and row-wise (row i of the output
depends on row i of the input only; FORM relies on this to get all per-row gradients
from one reverse pass).

Methods (``method=``):

* ``"form"``: most probable failure point(s) by the improved HL-RF algorithm (Hasofer &
  Lind 1974, Rackwitz & Fiessler 1978, with the merit-function line search of Zhang &
  Der Kiureghian 1995, "Finite element reliability methods for inelastic structures",
  UCB/SEMM-97/05) run from several antithetic starts per limit-state column, batched.
  ``pf = 1 − Π_k (1 − Φ(−β_k))`` (first-order series system, independent columns).
  FORM is an approximation with no sampling error: ``ci = (pf, pf)``, ``cov = 0`` and
  ``reliable = False`` always (nothing validates it).
* ``"is"``: importance sampling with a Gaussian mixture centred on the distinct design
  points FORM found (one unit-covariance component per point), weights
  ``w = φ(u)/q(u)`` in log space, cross-entropy refinement (Rubinstein & Kroese 2004;
  Kurtz & Song 2013 for mixtures) of the mixture weights and of each mean *along its
  own design-point ray*. Restricting the mean update to the ray is deliberate: a full
  ``dim``-vector update from a few hundred weighted samples adds noise of order
  ``dim/ESS`` to ``|μ|²`` and inflates the weight variance by ``exp(dim/ESS)`` in high
  dimension (Papaioannou, Geyer & Straub 2019, "Improved cross entropy-based importance
  sampling with a flexible mixture model", RESS 191). All batches (those of the
  refinement included) enter the estimate: each is unbiased given the past, so the
  mean is unbiased and the pooled sample variance is a consistent (slightly
  conservative) estimate of its variance. Batches are added until ``cov ≤ target_cov``,
  the ESS ≥ ``min_ess`` and the largest weight share ≤ ``max_weight_share``, or the
  budget is spent, or the weights are degenerate (≥ 200 failing samples with a Kish
  ESS below 5 % of them: more samples will not help).
  ``ci``: normal on the log scale, ``pf·exp(±1.96·sqrt(log(1+cov²)))``.
  Health checks (``reliable = False`` when any fails): a FORM design point converged,
  ``cov ≤ target_cov``, Kish ESS of the failing weights ≥ ``min_ess``, largest weight
  share ≤ ``max_weight_share``, the two halves of the sample agree (|z| ≤ 4, false-alarm rate 6e-5), and the
  generalised-Pareto tail shape k̂ of the weights ≤ 0.7 (the PSIS diagnostic and
  threshold of Vehtari et al. 2024, "Pareto smoothed importance sampling", JMLR 25).
* ``"subset"``: subset simulation (Au & Beck 2001, "Estimation of small failure
  probabilities in high dimensions by subset simulation", Prob. Eng. Mech. 16) with
  level probability ``p0`` and the adaptive conditional sampler aCS of Papaioannou,
  Betz, Zwirglmaier & Straub 2015 ("MCMC algorithms for subset simulation", Prob. Eng.
  Mech. 41): a preconditioned Crank-Nicolson proposal ``v = ρ∘u + σ∘ξ``,
  ``σ_j = min(1, λ·σ̂_j)``, ``ρ_j = sqrt(1 − σ_j²)`` that leaves N(0, I) invariant, so
  a proposal is accepted iff it stays in the current intermediate domain; ``λ`` adapts
  towards 44 % acceptance. All chains of a level run in parallel (``lax.scan`` over
  steps); ``λ`` is adapted after every synchronous step from the acceptance rate of all
  chains (aCS adapts after groups of chains; the batched form trades that for
  parallelism and its dependence on any one chain is O(1/n_chains)).
  ``cov``: Au-Beck ``δ_i² = (1 − p_i)/(p_i N)(1 + γ_i)`` with ``γ_i`` from the
  indicator autocorrelation along the chains, combined over levels as
  ``(Σ_i δ_i)²``, the fully-correlated-levels upper bound of Au & Beck (2001, §5.3):
  conservative, because the usual ``Σ_i δ_i²`` ignores the positive correlation between
  levels and under-covers (measured at pf = 1e-6, dim 10, N = 1000: true cov 0.45,
  ``sqrt(Σδ_i²)`` 0.35, ``Σδ_i`` 0.87). Independent runs (N samples per level each) are
  averaged until the pooled cov meets ``target_cov``; from 10 runs on the between-run
  spread (with a Student-t factor) replaces the bound. ``ci`` on the log scale as for IS.
* ``"auto"``: FORM with multiple starts → IS on the mixture → health checks → on any
  failed check, subset simulation with the remaining budget. Subset reduces to crude
  Monte Carlo when pf is not small (its first level already has ≥ p0·N failures).
  When the final stage is itself unreliable the interval is widened ten-fold on each
  side and ``reliable = False``: a wide honest interval rather than a tight wrong one.

Every row passed to ``limit_state`` is counted in ``n_evals`` (FORM line-search trials
and gradient evaluations included: a value-and-gradient of one row counts as one
row). NaN/inf outputs are counted inside the jitted kernels and raised on the host as
:class:`InvalidModelOutput`.

The jit boundaries are the sampling/search kernels below, with ``limit_state`` a static
argument: they compile once per (limit_state, shape) and are reused across calls and
seeds, while adaptive stopping, health checks and error raising run on the host. Pass
the same function object (not a fresh lambda) on every call to avoid recompiling.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.result import FailureResult, InvalidModelOutput

__all__ = ["estimate_rare"]

_Z95 = 1.959963984540054
_METHODS = ("form", "is", "subset", "auto")
_ACCEPT_TARGET = 0.44  # aCS target acceptance (Papaioannou et al. 2015)
# Sequential stopping at the first batch whose estimated cov meets the target selects
# batches whose variance happens to be under-estimated (for IS weights the variance
# estimate is positively correlated with pf). Stopping at 0.9·target_cov buys margin.
_STOP_MARGIN = 0.9


def _norm_sf(x: float) -> float:
    """Φ(−x) on the host."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


# --------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class _Options:
    target_cov: float = 0.1
    max_evals: int = 200_000
    n_starts: int = 8
    n_batch: int = 100
    n_ce: int = 2
    n_per_level: int = 1000
    p0: float = 0.1
    max_iter: int = 50
    form_tol: float | None = None
    min_ess: float = 30.0
    max_weight_share: float = 0.1
    is_share: float = 0.25
    dtype: Any = jnp.float32


_INT_RANGES = {
    "max_evals": (1, 10**12),
    "n_starts": (1, 4096),
    "n_batch": (10, 10**7),
    "n_ce": (0, 1000),
    "n_per_level": (100, 10**7),
    "max_iter": (1, 10_000),
}
_FLOAT_RANGES = {  # open/closed noted in the message
    "target_cov": (0.0, 10.0),
    "p0": (0.0, 0.5),
    "min_ess": (1.0, 1e12),
    "max_weight_share": (0.0, 1.0),
    "is_share": (0.0, 1.0),
    "form_tol": (0.0, 1.0),
}


def _parse_options(kwargs: dict[str, Any]) -> _Options:
    names = {f.name for f in dataclasses.fields(_Options)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; allowed: {sorted(names)}")
    for name, (lo, hi) in _INT_RANGES.items():
        if name in kwargs:
            v = kwargs[name]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")
            kwargs[name] = int(v)
    for name, (lo, hi) in _FLOAT_RANGES.items():
        if name in kwargs and not (name == "form_tol" and kwargs[name] is None):
            v = kwargs[name]
            ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
            if not ok or not lo < float(v) <= hi:
                raise ValueError(f"{name} must be a number in ({lo}, {hi}], got {v!r}")
            kwargs[name] = float(v)
    if "dtype" in kwargs:
        dt = kwargs["dtype"]
        try:
            dt = jnp.dtype(dt)
        except TypeError as e:
            raise ValueError(f"dtype must be float32 or float64, got {dt!r}") from e
        if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        if dt == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError("dtype=float64 needs jax_enable_x64=True")
        kwargs["dtype"] = dt
    opts = _Options(**kwargs)
    n_chains = opts.n_per_level * opts.p0
    if abs(n_chains - round(n_chains)) > 1e-9 or round(n_chains) < 2:
        raise ValueError(
            f"n_per_level·p0 must be an integer ≥ 2 (number of chains), got "
            f"n_per_level={opts.n_per_level}, p0={opts.p0}"
        )
    if opts.n_per_level % round(n_chains) != 0:
        raise ValueError(
            f"n_per_level must be a multiple of n_per_level·p0 (chain length 1/p0), "
            f"got n_per_level={opts.n_per_level}, p0={opts.p0}"
        )
    return opts


def _check_limit_state(limit_state, dim: int, dtype) -> int:
    """Traces ``limit_state`` abstractly; returns the number of columns k."""
    if not callable(limit_state):
        raise ValueError(f"limit_state must be callable, got {type(limit_state).__name__}")
    try:
        out = jax.eval_shape(limit_state, jax.ShapeDtypeStruct((3, dim), dtype))
    except Exception as e:
        raise ValueError(
            f"limit_state could not be traced on an input of shape (n, dim) = (3, {dim}): {e}"
        ) from e
    shape = getattr(out, "shape", None)
    if shape is None or not (shape == (3,) or (len(shape) == 2 and shape[0] == 3)):
        raise ValueError(
            f"limit_state(u[n, dim]) must return shape (n,) or (n, k); for n=3 got {shape}"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"limit_state must return floats, got dtype {out.dtype}")
    k = 1 if len(shape) == 1 else int(shape[1])
    if k < 1:
        raise ValueError("limit_state must return at least one column (k >= 1)")
    return k


def _raise_invalid(n_bad: int, n_rows: int, stage: str) -> None:
    if n_bad:
        raise InvalidModelOutput(
            f"limit_state returned NaN or inf for {n_bad} of {n_rows} rows during {stage}; "
            "rare-event estimates cannot ignore them (the invalid region may be the failure "
            "region). Fix the model or clip its inputs."
        )


# --------------------------------------------------------------------------- kernels


def _gmat(limit_state, u, dtype):
    """Limit state as a 2-D array [n, k] in ``dtype``."""
    g = jnp.asarray(limit_state(u))
    if g.ndim == 1:
        g = g[:, None]
    return g.astype(dtype)


@functools.partial(jax.jit, static_argnames=("limit_state", "max_iter", "n_ls", "tol"))
def _form_search(limit_state, u0, cols, *, max_iter: int, n_ls: int, tol: float):
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
            gm = _gmat(limit_state, u, dtype)
            gs = jnp.take_along_axis(gm, sel, axis=1)[:, 0]
            return jnp.sum(gs), (gs, gm)

        (_, (gs, gm)), grad = jax.value_and_grad(f, has_aux=True)(u)
        bad = ~(jnp.all(jnp.isfinite(gm), axis=1) & jnp.all(jnp.isfinite(grad), axis=1))
        return gs, grad, bad

    def gval(u):
        gm = _gmat(limit_state, u, dtype)
        gs = jnp.take_along_axis(gm, sel, axis=1)[:, 0]
        return gs, ~jnp.all(jnp.isfinite(gm), axis=1)

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

    g_origin, bad_origin = gval(jnp.zeros((1, u0.shape[1]), dtype)[jnp.zeros(m, jnp.int32)])
    g, grad, bad = vg(u0)
    conv = is_converged(u0, g, grad) & ~bad
    hist = jnp.full((max_iter + 1, m), jnp.nan, dtype).at[0].set(jnp.linalg.norm(u0, axis=1))
    n_ev = jnp.asarray(2 * m, jnp.int32)
    n_bad = jnp.sum(bad).astype(jnp.int32) + jnp.sum(bad_origin).astype(jnp.int32)
    alive = ~bad

    def cond(s):
        conv, alive, it = s[3], s[4], s[5]
        return (it < max_iter) & jnp.any(~conv & alive)

    def body(s):
        u, g, grad, conv, alive, it, n_ev, n_bad, hist = s
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
            k, pending, u_new, n_ev, n_bad = t
            lam = jnp.asarray(0.5, dtype) ** k.astype(dtype)
            u_try = u + lam * d
            g_try, bad_try = gval(u_try)
            merit = 0.5 * jnp.sum(u_try**2, axis=1) + c * jnp.abs(g_try)
            ok = (merit <= merit0 + 1e-4 * lam * slope) & ~bad_try
            last = k == n_ls - 1
            take = pending & (ok | last)
            u_new = jnp.where(take[:, None], u_try, u_new)
            n_bad = n_bad + jnp.sum(bad_try & pending).astype(jnp.int32)
            return k + 1, pending & ~take, u_new, n_ev + m, n_bad

        _, _, u_new, n_ev, n_bad = jax.lax.while_loop(
            ls_cond, ls_body, (jnp.asarray(0, jnp.int32), active, u, n_ev, n_bad)
        )
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
        return u, g, grad, conv, alive, it + 1, n_ev, n_bad, hist

    state = (u0, g, grad, conv, alive, jnp.asarray(0, jnp.int32), n_ev, n_bad, hist)
    u, g, grad, conv, alive, it, n_ev, n_bad, hist = jax.lax.while_loop(cond, body, state)
    return {
        "u": u,
        "g": g,
        "g_origin": g_origin,
        "converged": conv,
        "iterations": it,
        "n_evals": n_ev,
        "n_invalid": n_bad,
        "history": hist,
    }


@functools.partial(jax.jit, static_argnames=("limit_state", "n"))
def _is_batch(limit_state, key, means, log_pi, *, n: int):
    """One batch from the unit-covariance Gaussian mixture; log-weights log φ − log q."""
    dtype = means.dtype
    k_comp, k_z = jax.random.split(key)
    comp = jax.random.categorical(k_comp, log_pi, shape=(n,))
    u = means[comp] + jax.random.normal(k_z, (n, means.shape[1]), dtype)
    uu = jnp.sum(u * u, axis=1)
    um = u @ means.T
    mm = jnp.sum(means * means, axis=1)
    # (2π)^(dim/2) cancels between φ and q.
    logq_j = log_pi[None, :] - 0.5 * (uu[:, None] - 2.0 * um + mm[None, :])
    logq = jax.scipy.special.logsumexp(logq_j, axis=1)
    logw = -0.5 * uu - logq
    resp = jnp.exp(logq_j - logq[:, None])
    gm = _gmat(limit_state, u, dtype)
    bad = ~jnp.all(jnp.isfinite(gm), axis=1)
    fail_k = (gm < 0) & ~bad[:, None]
    return {
        "logw": logw,
        "fail": jnp.any(fail_k, axis=1),
        "fail_k": fail_k,
        "resp": resp,
        "um": um,
        "n_invalid": jnp.sum(bad),
    }


@functools.partial(jax.jit, static_argnames=("limit_state", "n", "dim", "dtype"))
def _mc_batch(limit_state, key, *, n: int, dim: int, dtype):
    """Plain Monte Carlo batch: samples and min over columns of g (inf where invalid)."""
    u = jax.random.normal(key, (n, dim), dtype)
    gm = _gmat(limit_state, u, dtype)
    bad = ~jnp.all(jnp.isfinite(gm), axis=1)
    return u, jnp.where(bad, jnp.inf, jnp.min(gm, axis=1)), jnp.sum(bad)


@functools.partial(jax.jit, static_argnames=("limit_state", "n_steps"))
def _acs_chains(limit_state, key, seeds, g_seeds, b, log_lam, *, n_steps: int):
    """aCS conditional sampling (Papaioannou et al. 2015, Alg. 2), all chains at once.

    Returns the chain states after each of ``n_steps`` steps ([n_steps, n_chains, dim]),
    their min-g values, the acceptance rate per step, the adapted log λ and the number
    of invalid model outputs among the proposals.
    """
    dtype = seeds.dtype
    n_chains, dim = seeds.shape
    sig_hat = jnp.std(seeds, axis=0)

    def step(carry, t):
        u, g, log_lam = carry
        sig = jnp.minimum(jnp.exp(log_lam) * sig_hat, 1.0)
        rho = jnp.sqrt(1.0 - sig**2)
        xi = jax.random.normal(jax.random.fold_in(key, t), (n_chains, dim), dtype)
        v = rho[None, :] * u + sig[None, :] * xi
        gm = _gmat(limit_state, v, dtype)
        bad = ~jnp.all(jnp.isfinite(gm), axis=1)
        gv = jnp.where(bad, jnp.inf, jnp.min(gm, axis=1))
        acc = gv <= b
        u = jnp.where(acc[:, None], v, u)
        g = jnp.where(acc, gv, g)
        a_hat = jnp.mean(acc.astype(dtype))
        log_lam = log_lam + (a_hat - _ACCEPT_TARGET) / jnp.sqrt((t + 1).astype(dtype))
        return (u, g, log_lam), (u, g, a_hat, jnp.sum(bad))

    (_, _, log_lam), (us, gs, acc, bad) = jax.lax.scan(
        step, (seeds, g_seeds, log_lam), jnp.arange(n_steps)
    )
    return us, gs, acc, log_lam, jnp.sum(bad)


# --------------------------------------------------------------------------- FORM


def _run_form(limit_state, key, dim: int, n_cols: int, opts: _Options) -> dict[str, Any]:
    """Multi-start FORM on every column; returns design points and the FORM estimate."""
    dtype = opts.dtype
    s = opts.n_starts
    z = jax.random.normal(key, ((s + 1) // 2, dim), dtype)
    z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    starts = jnp.concatenate([z, -z], axis=0)[:s]  # antithetic pairs, radius 1
    u0 = jnp.tile(starts, (n_cols, 1))
    cols = jnp.repeat(jnp.arange(n_cols, dtype=jnp.int32), s)
    tol = opts.form_tol if opts.form_tol is not None else (1e-3 if dtype == jnp.float32 else 1e-5)
    out = jax.device_get(
        _form_search(limit_state, u0, cols, max_iter=opts.max_iter, n_ls=8, tol=tol)
    )
    n_evals = int(out["n_evals"])
    _raise_invalid(int(out["n_invalid"]), n_evals, "the FORM search")
    u = np.asarray(out["u"], np.float64)
    conv = np.asarray(out["converged"])
    sign = np.where(np.asarray(out["g_origin"]) >= 0, 1.0, -1.0)
    betas = sign * np.linalg.norm(u, axis=1)
    cols_np = np.repeat(np.arange(n_cols), s)
    beta_col = np.full(n_cols, np.inf)
    for k in range(n_cols):
        mk = conv & (cols_np == k)
        if mk.any():
            beta_col[k] = betas[mk].min()
    pf_col = np.array([_norm_sf(b) if np.isfinite(b) else 0.0 for b in beta_col])
    pf = float(1.0 - np.prod(1.0 - pf_col))
    # Distinct design points, most probable first (per column, per start).
    points: list[tuple[np.ndarray, float, int]] = []
    for i in np.argsort(betas):
        if not conv[i]:
            continue
        tol_i = 0.1 * max(1.0, abs(betas[i]))
        if all(np.linalg.norm(u[i] - p) > tol_i for p, _, _ in points):
            points.append((u[i], float(betas[i]), int(cols_np[i])))
    return {
        "pf": pf,
        "n_evals": n_evals,
        "points": points,
        "beta_columns": beta_col.tolist(),
        "pf_columns": pf_col.tolist(),
        "converged": conv.tolist(),
        "all_converged_columns": bool(np.all(np.isfinite(beta_col))),
        "iterations": int(out["iterations"]),
        "beta_history": np.asarray(out["history"], np.float64)[: int(out["iterations"]) + 1],
    }


def _given_points(design_points, dim: int, n_cols: int, method: str, prior_evals) -> dict[str, Any]:
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
    pf_pts = [_norm_sf(b) for _, b, _ in points]
    return {
        "pf": float(1.0 - np.prod(1.0 - np.asarray(pf_pts))) if points else 0.0,
        "n_evals": int(prior_evals),
        "points": points,
        "given": True,
    }


def _form_result(form: dict[str, Any]) -> FailureResult:
    pf = form["pf"]
    diag = {k: v for k, v in form.items() if k not in ("pf", "n_evals")}
    diag["design_points"] = [p for p, _, _ in form.pop("points", [])] or []
    diag["design_columns"] = [c for _, _, c in diag["points"]]
    diag["design_betas"] = [b for _, b, _ in diag.pop("points")]
    diag["note"] = "FORM is a first-order approximation without sampling error; not validated."
    return FailureResult(
        pf=pf,
        ci=(pf, pf),
        cov=0.0,
        n_evals=form["n_evals"],
        method="form",
        reliable=False,
        diagnostics=diag,
    )


# --------------------------------------------------------------------------- IS


def _log_ci(pf: float, cov: float) -> tuple[float, float]:
    """95 % interval normal on the log scale (log-normal with the given cov)."""
    if not pf > 0 or not math.isfinite(cov):
        return (0.0, 1.0)
    s = math.sqrt(math.log1p(cov * cov))
    return (pf * math.exp(-_Z95 * s), min(1.0, pf * math.exp(_Z95 * s)))


def _pareto_k(w: np.ndarray) -> float:
    """Generalised-Pareto shape k̂ of the upper tail of the positive weights, as in PSIS
    (Vehtari et al. 2024): tail size M = min(n/5, 3√n), fit by the empirical-Bayes method
    of Zhang & Stephens (2009, Technometrics 51) with the weakly informative prior on k
    used by PSIS. k̂ > 0.7 means the weight variance is (practically) infinite; bounded
    weights give k̂ < 0. NaN when fewer than 25 positive weights."""
    w = np.sort(w[w > 0])
    n = w.size
    m = int(min(n // 5, 3 * math.sqrt(n)))
    if m < 5 or n < 25:
        return float("nan")
    x = w[-m:] - w[-m - 1]
    x = x / max(x[-1], 1e-300)  # scale-free; k̂ is invariant to scaling
    if x[-1] <= 0:
        return float("nan")
    m_est = 30 + int(math.sqrt(m))
    bs = 1.0 - np.sqrt(m_est / (np.arange(1, m_est + 1) - 0.5))
    bs = bs / (3.0 * max(x[int(m / 4 + 0.5) - 1], 1e-12)) + 1.0 / x[-1]
    ks = np.mean(np.log1p(-bs[:, None] * x[None, :]), axis=1)
    ls = m * (np.log(-bs / ks) - ks - 1.0)
    wts = 1.0 / np.exp(ls[None, :] - ls[:, None]).sum(axis=1)
    wts = wts / wts.sum()
    b_post = float(np.sum(bs * wts))
    k = float(np.mean(np.log1p(-b_post * x)))
    return (m * k + 10 * 0.5) / (m + 10)


def _is_stats(wf: np.ndarray, n_batches_done: int) -> dict[str, float]:
    n = wf.size
    pf = float(wf.mean())
    var = float(wf.var(ddof=1)) / n if n > 1 else math.inf
    cov = math.sqrt(var) / pf if pf > 0 else math.inf
    s1, s2 = float(wf.sum()), float((wf * wf).sum())
    ess = s1 * s1 / s2 if s2 > 0 else 0.0
    share = float(wf.max()) / s1 if s1 > 0 else 1.0
    h = n // 2
    a, b = wf[:h], wf[h:]
    if n_batches_done >= 2 and h > 1:
        den = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        z = abs(a.mean() - b.mean()) / den if den > 0 else (0.0 if a.mean() == b.mean() else 99.0)
    else:
        z = float("nan")
    return {
        "pf": pf,
        "cov": cov,
        "ess": ess,
        "max_share": share,
        "halves_z": float(z),
        "tail": _pareto_k(wf),
        "n_fail": int(np.count_nonzero(wf)),
    }


def _run_is(
    limit_state,
    key,
    form: dict[str, Any],
    n_cols: int,
    budget: int,
    opts: _Options,
) -> FailureResult:
    """Mixture importance sampling around the FORM design points (module docstring)."""
    dtype = opts.dtype
    points = form["points"]
    form_ok = len(points) > 0
    if form_ok:
        means = np.stack([p for p, _, _ in points])
        pi = np.array([max(_norm_sf(bb), 1e-300) for _, bb, _ in points])
    else:  # nothing converged: centre on the origin (crude MC), flagged unreliable
        means = np.zeros((1, int(form["dim"])), np.float64)
        pi = np.ones(1)
    floor = 0.1 / means.shape[0]
    pi = _floor_normalise(pi, floor)
    n = opts.n_batch
    w_all: list[np.ndarray] = []
    fk_all: list[np.ndarray] = []
    um_all: list[np.ndarray] = []
    resp_all: list[np.ndarray] = []
    history = []
    n_evals = 0
    stats: dict[str, float] = {}
    b = 0
    while n_evals + n <= budget:
        out = jax.device_get(
            _is_batch(
                limit_state,
                jax.random.fold_in(key, b),
                jnp.asarray(means, dtype),
                jnp.asarray(np.log(pi), dtype),
                n=n,
            )
        )
        n_evals += n
        b += 1
        _raise_invalid(int(out["n_invalid"]), n, "importance sampling")
        fail = np.asarray(out["fail"])
        wf = np.where(fail, np.exp(np.asarray(out["logw"], np.float64)), 0.0)
        w_all.append(wf)
        fk_all.append(np.asarray(out["fail_k"]))
        if b <= opts.n_ce:
            um_all.append(np.asarray(out["um"], np.float64))
            resp_all.append(np.asarray(out["resp"], np.float64))
            means, pi = _ce_update(
                means,
                pi,
                np.concatenate(w_all),
                np.concatenate(um_all),
                np.concatenate(resp_all),
                floor,
            )
        wcat = np.concatenate(w_all)
        stats = _is_stats(wcat, b)
        history.append((n_evals, stats["pf"], stats["cov"], stats["ess"]))
        if (
            b >= 2
            and stats["n_fail"] >= 10
            and stats["cov"] <= _STOP_MARGIN * opts.target_cov
            and stats["ess"] >= opts.min_ess
            and stats["max_share"] <= opts.max_weight_share
        ):
            break
        if stats["n_fail"] >= 200 and stats["ess"] < 0.05 * stats["n_fail"]:
            break  # degenerate weights: more samples will not help, hand over
    if not w_all:
        raise ValueError(
            f"max_evals={opts.max_evals} leaves no room for one IS batch of n_batch={n}"
        )
    wcat = np.concatenate(w_all)
    fk = np.concatenate(fk_all)
    checks = {
        "form_converged": form_ok,
        "cov_target_met": stats["cov"] <= opts.target_cov,
        "ess_ok": stats["ess"] >= opts.min_ess,
        "weight_share_ok": stats["max_share"] <= opts.max_weight_share,
        "halves_agree": bool(stats["halves_z"] <= 4.0),
        "tail_ok": bool(stats["tail"] <= 0.7),
    }
    reliable = all(checks.values())
    pf = stats["pf"]
    diag = {
        "design_points": [m for m in means],
        "mixture_weights": pi.tolist(),
        "design_betas": [bb for _, bb, _ in points],
        "design_columns": [c for _, _, c in points],
        "form_pf": form["pf"],
        "ess": stats["ess"],
        "max_weight_share": stats["max_share"],
        "halves_z": stats["halves_z"],
        "tail_index": stats["tail"],
        "n_fail": stats["n_fail"],
        "checks": checks,
        "history": history,
        "pf_columns": [float(np.mean(np.where(fk[:, k], wcat, 0.0))) for k in range(n_cols)],
    }
    return FailureResult(
        pf=pf,
        ci=_log_ci(pf, stats["cov"]),
        cov=stats["cov"],
        n_evals=n_evals,
        method="is",
        reliable=reliable,
        n_fail=stats["n_fail"],
        diagnostics=diag,
    )


def _floor_normalise(pi: np.ndarray, floor: float) -> np.ndarray:
    pi = pi / pi.sum()
    pi = np.maximum(pi, floor)
    return pi / pi.sum()


def _ce_update(means, pi, w, um, resp, floor):
    """Cross-entropy update of the mixture weights and of each mean's position along its
    own ray (see the module docstring for why the update is restricted to the ray)."""
    wr = w[:, None] * resp  # [n, J]
    a = wr.sum(axis=0)
    if a.sum() <= 0:
        return means, pi
    ess_j = np.where((wr**2).sum(axis=0) > 0, a**2 / np.maximum((wr**2).sum(axis=0), 1e-300), 0)
    new_means = means.copy()
    for j in range(means.shape[0]):
        r = np.linalg.norm(means[j])
        if ess_j[j] >= 5 and r > 1e-6:
            t = float((wr[:, j] * um[:, j] / r).sum() / a[j])
            new_means[j] = means[j] / r * t
    new_pi = _floor_normalise(a + 1e-300, floor) if (ess_j >= 5).any() else pi
    return new_means, new_pi


# --------------------------------------------------------------------------- subset


def _chain_gamma(ind: np.ndarray) -> float:
    """Au & Beck (2001) eq. 29: γ = 2 Σ_τ (1 − τ/Ns) ρ(τ) from indicators [Ns, Nc]."""
    ns = ind.shape[0]
    p = float(ind.mean())
    r0 = p * (1.0 - p)
    if r0 <= 0 or ns < 2:
        return 0.0
    gam = 0.0
    for tau in range(1, ns):
        r = float(np.mean(ind[:-tau] * ind[tau:])) - p * p
        gam += 2.0 * (1.0 - tau / ns) * r / r0
    return max(gam, 0.0)


def _subset_once(limit_state, key, dim: int, budget: int, opts: _Options) -> dict[str, Any]:
    dtype = opts.dtype
    n = opts.n_per_level
    nc = round(n * opts.p0)
    ns = n // nc
    u, gmin, nbad = _mc_batch(limit_state, jax.random.fold_in(key, 0), n=n, dim=dim, dtype=dtype)
    _raise_invalid(int(nbad), n, "subset simulation (level 0)")
    n_evals = n
    g = np.asarray(gmin, np.float64)
    g_chain = None  # [ns, nc] layout of the current level when it came from chains
    log_lam = jnp.asarray(math.log(0.6), dtype)
    deltas, thresholds, probs, gammas, accept = [], [], [], [], []
    log_pf = 0.0
    converged = False
    for level in range(60):
        order = np.argsort(g, kind="stable")
        b = 0.5 * (g[order[nc - 1]] + g[order[nc]])
        final = b <= 0
        if final:
            ind = g < 0
            p = float(ind.mean())
        else:
            ind = g <= b
            p = nc / n
        gam = 0.0 if g_chain is None else _chain_gamma(ind.reshape(ns, nc).astype(np.float64))
        deltas.append(math.sqrt((1 - p) / (p * n) * (1 + gam)) if p > 0 else math.inf)
        probs.append(p)
        gammas.append(gam)
        thresholds.append(float(min(b, 0.0)) if final else float(b))
        log_pf += math.log(p) if p > 0 else -math.inf
        if final:
            converged = True
            break
        if n_evals + n - nc > budget:
            break
        seeds = jnp.asarray(np.asarray(u)[order[:nc]], dtype)
        g_seeds = jnp.asarray(g[order[:nc]], dtype)
        us, gs, acc, log_lam, nbad = _acs_chains(
            limit_state,
            jax.random.fold_in(key, level + 1),
            seeds,
            g_seeds,
            jnp.asarray(b, dtype),
            log_lam,
            n_steps=ns - 1,
        )
        n_evals += (ns - 1) * nc
        _raise_invalid(int(nbad), (ns - 1) * nc, f"subset simulation (level {level + 1})")
        accept.append(float(jnp.mean(acc)))
        u = jnp.concatenate([seeds[None], us], axis=0).reshape(n, dim)
        g = np.concatenate([np.asarray(g_seeds, np.float64)[None], np.asarray(gs, np.float64)])
        g_chain = g
        g = g.reshape(n)
    return {
        "pf": math.exp(log_pf),  # P[g ≤ b_last] when not converged
        "delta": float(sum(deltas)),  # fully-correlated-levels bound (Au & Beck 2001)
        "delta_indep": float(math.sqrt(sum(d * d for d in deltas))),
        "converged": converged,
        "n_evals": n_evals,
        "levels": len(probs),
        "thresholds": thresholds,
        "level_probs": probs,
        "gammas": gammas,
        "acceptance": accept,
    }


def _t975(nu: int) -> float:
    """Student-t 97.5 % quantile (Cornish-Fisher expansion in 1/ν, < 0.5 % error for ν ≥ 5)."""
    z = _Z95
    return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)


def _subset_pool(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Average of independent subset runs and its cov.

    Fewer than 10 runs: the Au-Beck fully-correlated bound ``Σ_i δ_i`` pooled over runs
    (conservative: about twice the true cov at pf = 1e-6). From 10 runs on, the spread
    between runs is a model-free estimate: cov = max(independent-levels formula,
    between-run standard error × t_{R−1}/z), the t factor paying for the estimated sd.
    """
    pfs = np.array([x["pf"] for x in runs])
    pf = float(pfs.mean())
    r = len(runs)
    if pf <= 0:
        return pf, math.inf
    if r < 10:
        return pf, math.sqrt(np.mean([x["delta"] ** 2 for x in runs]) / r)
    indep = math.sqrt(np.mean([x["delta_indep"] ** 2 for x in runs]) / r)
    emp = float(pfs.std(ddof=1)) / math.sqrt(r) / pf * _t975(r - 1) / _Z95
    return pf, max(indep, emp)


def _run_subset(limit_state, key, dim: int, budget: int, opts: _Options) -> FailureResult:
    runs: list[dict[str, Any]] = []
    n_evals = 0
    r = 0
    while True:
        run = _subset_once(limit_state, jax.random.fold_in(key, r), dim, budget - n_evals, opts)
        r += 1
        runs.append(run)
        n_evals += run["n_evals"]
        ok_runs = [x for x in runs if x["converged"]]
        if not run["converged"]:
            break
        pf, cov = _subset_pool(ok_runs)
        if cov <= opts.target_cov or n_evals + run["n_evals"] > budget:
            break
    ok_runs = [x for x in runs if x["converged"]]
    diag: dict[str, Any] = {"runs": runs, "n_runs": len(runs)}
    if not ok_runs:
        # Ran out of budget before reaching the failure domain: P[g ≤ b_last] bounds pf.
        bound = runs[0]["pf"]
        diag["note"] = "budget exhausted before the failure domain was reached; ci = (0, bound)"
        return FailureResult(
            pf=bound,
            ci=(0.0, min(1.0, bound)),
            cov=math.inf,
            n_evals=n_evals,
            method="subset",
            reliable=False,
            diagnostics=diag,
        )
    pf, cov = _subset_pool(ok_runs)
    acc = [a for x in ok_runs for a in x["acceptance"]]
    checks = {
        "cov_target_met": cov <= opts.target_cov,
        "all_runs_converged": len(ok_runs) == len(runs),
        "chains_mix": (min(acc) > 0.02) if acc else True,
    }
    diag["checks"] = checks
    diag["levels"] = ok_runs[0]["levels"]
    return FailureResult(
        pf=pf,
        ci=_log_ci(pf, cov),
        cov=cov,
        n_evals=n_evals,
        method="subset",
        reliable=all(checks.values()),
        diagnostics=diag,
    )


# --------------------------------------------------------------------------- entry


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
      method: "form", "is", "subset" or "auto" (see the module docstring).
      **kwargs: ``target_cov`` (0.1, in (0, 10]): sampling stops once the estimated cov
        is ≤ this; ``max_evals`` (200_000): limit-state rows allowed in total (the
        result is flagged unreliable when the cov target was not met within it);
        ``n_starts`` (8): FORM starts per column, antithetic pairs on the unit sphere;
        ``n_batch`` (100): IS batch size; ``n_ce`` (2): IS batches used for
        cross-entropy refinement; ``n_per_level`` (1000) and ``p0`` (0.1): subset
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
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an int ≥ 1, got {dim!r}")
    dim = int(dim)
    kwargs = dict(kwargs)
    design_points = kwargs.pop("design_points", None)
    prior_evals = kwargs.pop("prior_evals", 0)
    opts = _parse_options(kwargs)
    n_cols = _check_limit_state(limit_state, dim, opts.dtype)
    k_form, k_is, k_ss = jax.random.split(key, 3)
    if method == "subset":
        return _run_subset(limit_state, k_ss, dim, opts.max_evals, opts)
    if design_points is not None:
        form = _given_points(design_points, dim, n_cols, method, prior_evals)
    else:
        form = _run_form(limit_state, k_form, dim, n_cols, opts)
    form["dim"] = dim
    if method == "form":
        form.pop("dim")
        return _form_result(form)
    remaining = opts.max_evals - form["n_evals"]
    if method == "is":
        res = _run_is(limit_state, k_is, form, n_cols, remaining, opts)
        return dataclasses.replace(
            res,
            n_evals=res.n_evals + form["n_evals"],
            diagnostics={**res.diagnostics, "form_n_evals": form["n_evals"]},
        )
    # auto
    is_budget = min(remaining, max(int(opts.is_share * opts.max_evals), 2 * opts.n_batch))
    stages: dict[str, Any] = {"form": {"pf": form["pf"], "n_evals": form["n_evals"]}}
    used = form["n_evals"]
    if form["points"] and is_budget >= opts.n_batch:
        res = _run_is(limit_state, k_is, form, n_cols, is_budget, opts)
        used += res.n_evals
        stages["is"] = {
            "pf": res.pf,
            "ci": res.ci,
            "n_evals": res.n_evals,
            "reliable": res.reliable,
            "checks": res.diagnostics["checks"],
        }
        if res.reliable:
            return dataclasses.replace(
                res,
                n_evals=used,
                method="auto",
                diagnostics={**res.diagnostics, "stages": stages, "chosen": "is"},
            )
    res = _run_subset(limit_state, k_ss, dim, max(opts.max_evals - used, 0), opts)
    used += res.n_evals
    stages["subset"] = {
        "pf": res.pf,
        "ci": res.ci,
        "n_evals": res.n_evals,
        "reliable": res.reliable,
    }
    ci = res.ci
    if not res.reliable:
        ci = (ci[0] / 10.0, min(1.0, ci[1] * 10.0))
    return dataclasses.replace(
        res,
        ci=ci,
        n_evals=used,
        method="auto",
        diagnostics={**res.diagnostics, "stages": stages, "chosen": "subset"},
    )
