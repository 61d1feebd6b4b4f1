"""Cross-entropy importance sampling with a von Mises–Fisher × log-normal mixture.

The sampler for failure domains a few Gaussians cannot cover: domains surrounding the
origin (hypersphere exterior: every direction fails beyond some radius), many-branch
series systems, strongly curved or badly scaled limit states, and the fallback when
the Gaussian mixture of :mod:`.importance` fails its health checks. Following
Papaioannou, Geyer & Straub (2019, "Improved cross entropy-based importance sampling
with a flexible mixture model", RESS 191), u is written in polar form u = r·θ and each
mixture component is a von Mises–Fisher law of the direction θ (mean direction μ_j,
concentration κ_j; κ = 0 is the uniform law, which a domain surrounding the origin
needs) times a law of the radius r:

    q(u) = π₀·φ(u) + Σ_j π_j · vMF(θ; μ_j, κ_j) · LN(r; a_j, s_j) / r^(dim−1).

The radius law is log-normal, ln r ~ N(a, s²), where Papaioannou et al. use a
Nakagami law: sampling it is exact and cheap (a Nakagami radius needs a Gamma variate,
whose rejection sampler costs ~10 s of XLA compilation per kernel on a CPU), its
cross-entropy fit is the weighted mean and variance of ln r, and its right tail is
heavier than the standard normal's radius law, so the radial weight ratio stays
bounded as r → ∞ for every fitted (a, s) (a Nakagami law needs the cap m < Ω to keep a
finite weight variance).

The first term is a *defensive* component (Hesterberg 1995): the standard normal with
a fixed share π₀ = 0.05, so that w = φ/q ≤ 1/π₀ everywhere and the estimator has
finite variance whatever the fitted components miss; a failure it finds far from them
shows up as a dominant weight and fails the health checks.

Fitting (cross entropy, Rubinstein & Kroese 2004): levels of ``n_ce_level`` samples;
at each level the threshold b = max(0, 10 % quantile of min_k g_k) and one weighted EM
step (weights ``w·1{g ≤ b}``) updates each component: the weighted mean direction
gives μ, its length R̄ (debiased for the effective sample size) gives
κ = R̄(dim − R̄²)/(1 − R̄²) (Banerjee et al. 2005, JMLR 6), the weighted mean and
variance of ln r give (a, s²), s ≥ 0.01; components with an effective sample size
below 5 keep their parameters, and each update is smoothed, 0.7·new + 0.3·old
(Rubinstein & Kroese 2004, §3.4; κ and s on the log scale), so that a fit to few
elite samples cannot collapse a component. The levels stop, unreliable, when the
threshold has not decreased for three levels. Once b = 0, batches of ``n_batch`` are added up to planned sample sizes
(:class:`~.health.Stopper`) until the health checks of :mod:`.health` pass with
``cov ≤ target_cov``, or the budget is spent; the first ``n_ce`` of them still
refine the mixture. Every batch drawn once b = 0 enters the estimate (each is unbiased
given the past).

Directions are drawn by Wood's (1994) rejection algorithm for the vMF law, all rows
at once in a ``while_loop``; its Beta((d−1)/2, (d−1)/2) variate is (1 + t)/2 with t
the first coordinate of a uniform direction (a normalised N(0, I_d) vector), again to
avoid the Gamma sampler.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from cpojax.estimators.rare.common import Options, eval_columns, raise_invalid
from cpojax.estimators.rare.health import Stopper, is_checks, is_ci, weight_stats
from cpojax.estimators.result import FailureResult
from cpojax.estimators.stats import norm_sf

__all__ = ["Mixture", "init_mixture", "run_spherical", "spread_out"]

_DEFENSIVE = 0.05  # share of the standard-normal component
_RHO = 0.1  # CE level probability
_MAX_LEVELS = 25
_KAPPA_MAX = 1e5
_STOP_MARGIN = 0.95  # sample sizes are planned for this share of target_cov
_MIN_COMP_ESS = 5.0
_SMOOTH = 0.7  # weight of a new fit in the smoothed update
_STALL = 3  # levels without progress of the threshold before giving up


def log_norm_const(kappa: float, dim: int) -> float:
    """log of the vMF normaliser w.r.t. the surface measure of S^(dim−1), plus κ:
    log C_d(κ) + κ with C_d(κ) = κ^(d/2−1) / ((2π)^(d/2) I_(d/2−1)(κ)); the density
    at θ is then exp(that + κ(μ·θ − 1)), free of cancellation for large κ."""
    nu = dim / 2.0 - 1.0
    if kappa < 1e-8:
        # uniform: 1/|S^(d−1)| = Γ(d/2) / (2 π^(d/2))
        return math.lgamma(dim / 2.0) - math.log(2.0) - (dim / 2.0) * math.log(math.pi)
    ive = float(special.ive(nu, kappa))
    if ive > 0 and math.isfinite(ive):
        log_i_scaled = math.log(ive)  # log I_ν(κ) − κ
    else:  # small κ, large ν: the leading term of the series
        log_i_scaled = nu * math.log(kappa / 2.0) - math.lgamma(nu + 1.0) - kappa
    return nu * math.log(kappa) - (dim / 2.0) * math.log(2.0 * math.pi) - log_i_scaled


_S_MIN = 0.01  # floor of the log-radius spread
# The fitted log-radius spread is inflated: the CE fit matches the body of the failing
# radii, and its Gaussian (in ln r) tail is lighter than the roughly exponential tail
# of the conditional radius law (rate ≈ R beyond a failure radius R), which makes the
# weights heavy-tailed (measured k̂ up to 0.6 on the 10-D hypersphere without it).
_S_INFLATE = 1.5


class Mixture:
    """Parameters of the vMF × log-normal mixture (host, float64); the component
    weights ``pi`` exclude the fixed defensive share."""

    def __init__(self, mu, kappa, a, s, pi):
        self.mu = np.asarray(mu, np.float64)
        self.kappa = np.asarray(kappa, np.float64)
        self.a = np.asarray(a, np.float64)
        self.s = np.maximum(np.asarray(s, np.float64), _S_MIN)
        self.pi = np.asarray(pi, np.float64) / np.sum(pi)

    @property
    def n(self) -> int:
        return self.mu.shape[0]

    def device_args(self, dtype):
        dim = self.mu.shape[1]
        log_c = np.array([log_norm_const(k, dim) for k in self.kappa])
        log_pi = np.log(np.concatenate([(1.0 - _DEFENSIVE) * self.pi, [_DEFENSIVE]]))
        return tuple(
            jnp.asarray(x, dtype) for x in (self.mu, self.kappa, self.a, self.s, log_c, log_pi)
        )

    def summary(self) -> dict[str, Any]:
        return {
            "weights": self.pi.tolist(),
            "kappa": self.kappa.tolist(),
            "radius": np.exp(self.a).tolist(),
            "log_radius_sd": self.s.tolist(),
        }


def _kappa_from_rbar(rbar: float, dim: int) -> float:
    rbar = min(max(rbar, 0.0), 1.0 - 1e-9)
    return float(min(_KAPPA_MAX, rbar * (dim - rbar * rbar) / (1.0 - rbar * rbar)))


def _unit(dim: int) -> np.ndarray:
    e = np.zeros(dim)
    e[0] = 1.0
    return e


def init_mixture(points, dim: int, *, radius: float | None = None) -> Mixture:
    """Components from design points [(u, β, col)] and, when ``radius`` is given, a
    uniform-direction component at that radius (a domain surrounding the origin).

    A point p (β = |p|) gets the moments of N(p, I): E r² = β² + dim,
    Var r² = 2·dim + 4β², mean direction p/β with R̄ ≈ β/√(β² + dim). With neither
    points nor radius: one uniform component with the mean and spread of the radius
    of N(0, I).
    """
    mu, kappa, a, s, pi = [], [], [], [], []
    for p, _, _ in points:
        b = float(np.linalg.norm(p))
        if b <= 1e-9:
            continue
        om = b * b + dim
        mu.append(np.asarray(p, np.float64) / b)
        kappa.append(_kappa_from_rbar(b / math.sqrt(om), dim))
        a.append(0.5 * math.log(om))
        s.append(math.sqrt(2.0 * dim + 4.0 * b * b) / (2.0 * om))
        pi.append(max(norm_sf(b), 1e-300))
    if radius is not None:
        rad = max(radius, 0.5)
        mu.append(_unit(dim))
        kappa.append(0.0)
        a.append(math.log(rad + 1.0 / rad))
        s.append(0.5 / rad)
        pi.append(max(sum(pi), 1e-300) if pi else 1.0)
    if not mu:
        mu, kappa, a, s, pi = [_unit(dim)], [0.0], [0.5 * math.log(dim)], [0.7 / dim**0.5], [1.0]
    pi = np.asarray(pi) / np.sum(pi)
    pi = np.maximum(pi, 0.02 / len(pi))
    return Mixture(mu, kappa, a, s, pi)


def spread_out(points, k: int, min_deg: float = 25.0):
    """At most ``k`` of ``points`` [(u, β, col)] whose directions are ≥ ``min_deg`` apart
    (greedy, in the given order)."""
    cos_min = math.cos(math.radians(min_deg))
    kept: list = []
    for p in points:
        d = np.asarray(p[0], np.float64)
        d = d / max(np.linalg.norm(d), 1e-300)
        if all(float(d @ (q[0] / np.linalg.norm(q[0]))) < cos_min for q in kept):
            kept.append(p)
        if len(kept) >= k:
            break
    return kept


def _sample_vmf(key, mu, kappa):
    """Wood (1994): directions from vMF(μ_i, κ_i), one per row of ``mu`` [n, d]."""
    n, d = mu.shape
    dtype = mu.dtype
    dm1 = jnp.asarray(d - 1, dtype)
    b = dm1 / (2.0 * kappa + jnp.sqrt(4.0 * kappa * kappa + dm1 * dm1))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + dm1 * jnp.log1p(-x0 * x0)
    k_loop, k_v = jax.random.split(key)

    def cond(s):
        return jnp.any(~s[1]) & (s[2] < 1000)

    def body(s):
        w, done, it = s
        kz, ku = jax.random.split(jax.random.fold_in(k_loop, it))
        x = jax.random.normal(kz, (n, d), dtype)
        z = 0.5 * (1.0 + x[:, 0] / jnp.linalg.norm(x, axis=1))  # Beta((d−1)/2, (d−1)/2)
        logu = jnp.log(jax.random.uniform(ku, (n,), dtype, minval=1e-30))
        w_new = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        acc = kappa * w_new + dm1 * jnp.log1p(-x0 * w_new) - c >= logu
        take = acc & ~done
        return jnp.where(take, w_new, w), done | acc, it + 1

    w, _, _ = jax.lax.while_loop(
        cond, body, (jnp.zeros(n, dtype), jnp.zeros(n, bool), jnp.asarray(0, jnp.int32))
    )
    v = jax.random.normal(k_v, (n, d), dtype)
    v = v - jnp.sum(v * mu, axis=1, keepdims=True) * mu
    v = v / jnp.linalg.norm(v, axis=1, keepdims=True)
    w = jnp.clip(w, -1.0, 1.0)
    return w[:, None] * mu + jnp.sqrt(jnp.maximum(1.0 - w * w, 0.0))[:, None] * v


@functools.partial(jax.jit, static_argnames=("limit_state", "n"))
def _vmfn_batch(limit_state, key, mu, kappa, a, s, log_c, log_pi, *, n: int):
    """One batch from the mixture with its defensive N(0, I) component (the last entry
    of ``log_pi``); log-weights log φ − log q and responsibilities."""
    dtype = mu.dtype
    n_comp, d = mu.shape
    k_c, k_dir, k_r, k_z = jax.random.split(key, 4)
    comp = jax.random.categorical(k_c, log_pi, shape=(n,))
    j = jnp.minimum(comp, n_comp - 1)
    theta = _sample_vmf(k_dir, mu[j], kappa[j])
    r = jnp.exp(a[j] + s[j] * jax.random.normal(k_r, (n,), dtype))
    z = jax.random.normal(k_z, (n, d), dtype)
    u = jnp.where((comp == n_comp)[:, None], z, r[:, None] * theta)
    rr = jnp.maximum(jnp.linalg.norm(u, axis=1), jnp.asarray(1e-30, dtype))
    th = u / rr[:, None]
    log_r = jnp.log(rr)
    half_log_2pi = jnp.asarray(0.5 * math.log(2.0 * math.pi), dtype)
    log_phi = -0.5 * rr * rr - d * half_log_2pi
    # μ·θ − 1 = −|θ − μ|²/2 for unit vectors (no cancellation at large κ)
    dev = -0.5 * jnp.sum((th[:, None, :] - mu[None, :, :]) ** 2, axis=2)
    zr = (log_r[:, None] - a[None, :]) / s[None, :]
    lq = (
        log_pi[None, :n_comp]
        + log_c[None, :]
        + kappa[None, :] * dev
        - 0.5 * zr * zr
        - jnp.log(s)[None, :]
        - half_log_2pi
        - d * log_r[:, None]  # 1/r of the log-normal density and the Jacobian r^(d−1)
    )
    lq = jnp.concatenate([lq, (log_pi[n_comp] + log_phi)[:, None]], axis=1)
    logq = jax.scipy.special.logsumexp(lq, axis=1)
    gm = eval_columns(limit_state, u, dtype)
    bad = ~jnp.all(jnp.isfinite(gm), axis=1)
    fail_k = (gm < 0) & ~bad[:, None]
    return {
        "u": u,
        "logw": log_phi - logq,
        "gmin": jnp.where(bad, jnp.inf, jnp.min(gm, axis=1)),
        "fail": jnp.any(fail_k, axis=1),
        "fail_k": fail_k,
        "resp": jnp.exp(lq - logq[:, None]),
        "n_invalid": jnp.sum(bad),
    }


def _em_step(mix: Mixture, u: np.ndarray, w: np.ndarray, resp: np.ndarray) -> Mixture:
    """One weighted EM step of the components (the defensive share is fixed)."""
    dim = u.shape[1]
    r = np.sqrt(np.maximum(np.sum(u * u, axis=1), 1e-300))
    th = u / r[:, None]
    lr = np.log(r)
    gam = np.asarray(resp, np.float64)[:, : mix.n]
    gam = gam / np.maximum(gam.sum(axis=1, keepdims=True), 1e-300)
    wts = w[:, None] * gam
    tot = wts.sum(axis=0)
    ess = np.where(tot > 0, tot * tot / np.maximum((wts * wts).sum(axis=0), 1e-300), 0.0)
    mu, kappa, a, s = mix.mu.copy(), mix.kappa.copy(), mix.a.copy(), mix.s.copy()
    for j in range(mix.n):
        if ess[j] < _MIN_COMP_ESS:
            continue
        aj = wts[:, j] / tot[j]
        res = aj @ th
        rbar = float(np.linalg.norm(res))
        # R̄² of n_eff uniform directions is ≈ 1/n_eff: debias before estimating κ
        rb2 = max(0.0, (ess[j] * rbar * rbar - 1.0) / (ess[j] - 1.0))
        if rbar > 0:
            mu[j] = res / rbar
        kappa[j] = _kappa_from_rbar(math.sqrt(rb2), dim)
        a[j] = float(aj @ lr)
        s[j] = _S_INFLATE * math.sqrt(max(float(aj @ (lr - a[j]) ** 2), 0.0))
    pi = np.where(ess >= _MIN_COMP_ESS, tot, 0.0)
    pi = mix.pi if pi.sum() <= 0 else pi / pi.sum()
    pi = np.maximum(pi, 0.01 / mix.n)
    # smoothed update (Rubinstein & Kroese 2004, §3.4): a fit to a few elite samples
    # must not collapse the mixture (κ → ∞, s → 0) and freeze the levels
    t = _SMOOTH
    mu = t * mu + (1.0 - t) * mix.mu
    mu /= np.maximum(np.linalg.norm(mu, axis=1, keepdims=True), 1e-300)
    kappa = np.exp(t * np.log1p(kappa) + (1.0 - t) * np.log1p(mix.kappa)) - 1.0
    a = t * a + (1.0 - t) * mix.a
    s = np.exp(t * np.log(np.maximum(s, _S_MIN)) + (1.0 - t) * np.log(mix.s))
    pi = t * pi + (1.0 - t) * mix.pi
    return Mixture(mu, kappa, a, s, pi)


def run_spherical(
    limit_state, key, mix: Mixture, n_cols: int, budget: int, opts: Options
) -> FailureResult:
    """Cross-entropy vMFN importance sampling from the initial mixture ``mix`` (module
    docstring); at most ``budget`` evaluations."""
    dtype = opts.dtype
    dim = mix.mu.shape[1]
    n_evals = 0
    b_hist = []
    call = 0

    n = opts.n_batch
    n_level = n * max(1, round(opts.n_ce_level / n))

    def draw(mix, n_rows):
        """``n_rows`` samples as batches of ``n_batch`` (one compiled kernel)."""
        nonlocal n_evals, call
        args = mix.device_args(dtype)
        outs = []
        for _ in range(n_rows // n):
            out = _vmfn_batch(limit_state, jax.random.fold_in(key, call), *args, n=n)
            outs.append(jax.device_get(out))
            call += 1
        n_evals += n_rows
        out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0] if k != "n_invalid"}
        raise_invalid(sum(int(o["n_invalid"]) for o in outs), n_rows, "vMFN sampling")
        return out

    reached = False
    pool: list[dict[str, np.ndarray]] = []
    for _ in range(_MAX_LEVELS):
        if n_evals + n_level > budget:
            break
        out = draw(mix, n_level)
        g = np.asarray(out["gmin"], np.float64)
        logw = np.asarray(out["logw"], np.float64)
        b = max(0.0, float(np.quantile(g, _RHO)))
        b_hist.append(b)
        if len(b_hist) > _STALL and b > 0 and b >= 0.99 * b_hist[-1 - _STALL]:
            break  # the levels stall: the mixture cannot move towards the failure domain
        sel = g <= b
        w = np.where(sel, np.exp(logw - logw[sel].max()), 0.0)
        new = _em_step(mix, np.asarray(out["u"], np.float64), w, np.asarray(out["resp"]))
        if b <= 0.0:
            reached = True
            pool.append(out)
            mix = new
            break
        mix = new
    diag: dict[str, Any] = {"levels": len(b_hist), "thresholds": b_hist}
    if not reached:
        diag["note"] = "the CE levels did not reach the failure domain within the budget"
        return FailureResult(
            pf=0.0,
            ci=(0.0, 1.0),
            cov=math.inf,
            n_evals=n_evals,
            method="spherical",
            reliable=False,
            diagnostics={**diag, "mixture": mix.summary()},
        )
    n_after = 0
    stats = _pooled_stats(pool)
    history = [(n_evals, stats["pf"], stats["cov"], stats["ess"])]
    stopper = Stopper(opts, pilot=1, margin=_STOP_MARGIN)
    while True:
        while not stopper.done(stats, n_evals, len(pool)) and n_evals + n <= budget:
            if stats["n_fail"] >= 200 and stats["ess"] < 0.05 * stats["n_fail"]:
                break  # degenerate weights: more samples will not help
            out = draw(mix, n)
            pool.append(out)
            n_after += 1
            if n_after <= opts.n_ce:
                u = np.concatenate([np.asarray(o["u"], np.float64) for o in pool])
                lw = np.concatenate([np.asarray(o["logw"], np.float64) for o in pool])
                f = np.concatenate([np.asarray(o["fail"]) for o in pool])
                rs = np.concatenate([np.asarray(o["resp"], np.float64) for o in pool])
                w = np.where(f, np.exp(lw - lw[f].max()), 0.0) if f.any() else np.zeros_like(lw)
                if f.any():
                    mix = _em_step(mix, u, w, rs)
            stats = _pooled_stats(pool)
            history.append((n_evals, stats["pf"], stats["cov"], stats["ess"]))
        if not stopper.extend(is_checks(stats, opts), n_evals):
            break
    wcat = np.concatenate(
        [np.where(o["fail"], np.exp(np.asarray(o["logw"], np.float64)), 0.0) for o in pool]
    )
    fk = np.concatenate([np.asarray(o["fail_k"]) for o in pool])
    checks = is_checks(stats, opts)
    pf = stats["pf"]
    diag.update(
        {
            "mixture": mix.summary(),
            "ess": stats["ess"],
            "max_weight_share": stats["max_share"],
            "halves_z": stats["halves_z"],
            "tail_index": stats["tail"],
            "n_fail": stats["n_fail"],
            "checks": checks,
            "history": history,
            "pf_columns": [float(np.mean(np.where(fk[:, k], wcat, 0.0))) for k in range(n_cols)],
            "dim": dim,
        }
    )
    return FailureResult(
        pf=pf,
        ci=is_ci(pf, stats["cov"]),
        cov=stats["cov"],
        n_evals=n_evals,
        method="spherical",
        reliable=all(checks.values()),
        n_fail=stats["n_fail"],
        diagnostics=diag,
    )


def _pooled_stats(pool) -> dict[str, float]:
    wcat = np.concatenate(
        [np.where(o["fail"], np.exp(np.asarray(o["logw"], np.float64)), 0.0) for o in pool]
    )
    # the first pool entry is a whole CE level (several batches): its halves compare
    return weight_stats(wcat, max(len(pool), 2))
