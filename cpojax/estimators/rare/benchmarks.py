"""Reliability benchmark problems with exact or high-precision reference values.

Two sets, kept apart on purpose:

* :data:`SUITE` — the validation suite of ``benchmarks/bench_rare_suite.py``: classic
  problems of the structural-reliability literature, most of them from the RPrepo
  collection (Rozsas & Slobbe 2019, "Repository and black-box reliability challenge
  2019", TU Delft / TNO; problem numbers "RP n"; the problem definitions as in
  OpenTURNS' ``otbenchmark``). They were not used to tune the estimators.
* :data:`DEV` — the problems the estimators were developed and tuned on (variants
  of the same geometric classes at other sizes, dimensions and probabilities).

Every limit state is ``g(u: f[n, dim]) -> f[n] | f[n, k]`` of standard normals
(failure where a column is < 0); non-normal inputs enter through their exact
transform ``x = F⁻¹(Φ(u))``. Reference values are **computed here** — closed forms,
chi-square / gamma tails, or one-dimensional adaptive quadrature to ~1e-10 relative
(:func:`reference`) — and the published value is quoted next to each (RPrepo lists
several of them to three digits from Monte Carlo); :data:`Problem.pf` is the value
computed here. ``tests/test_rare_problems.py`` recomputes every reference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate, special

__all__ = ["DEV", "SUITE", "Problem", "by_name", "reference"]

_SQ2 = math.sqrt(2.0)


def _phi(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _cdf(x):
    return float(special.ndtr(x))


def _sf(x):
    return float(special.ndtr(-x))


def _quad(f, a, b, points=None):
    v, _ = integrate.quad(f, a, b, points=points, limit=500, epsabs=0.0, epsrel=1e-11)
    return float(v)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
      name: short identifier.
      limit_state: ``g(u) -> f[n] | f[n, k]`` (module-level function: a static jit key).
      dim: number of standard-normal inputs.
      pf: reference failure probability (computed by :func:`reference`).
      kind: geometric class ("linear", "two-region", "series", "curved",
        "surrounding", "parallel", "non-normal", "badly-scaled", "high-dim-curved").
      source: where the problem (and its published value) comes from.
      published: the published reference value quoted by the source (None if none).
      kwargs: extra options the benchmark passes to the estimator (e.g. ``dtype``).
    """

    name: str
    limit_state: Callable
    dim: int
    pf: float
    kind: str
    source: str
    published: float | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------- linear


def _linear_factory(beta: float):
    def g(u):
        a = jnp.full((u.shape[1],), 1.0 / math.sqrt(u.shape[1]), u.dtype)
        return beta - u @ a

    return g


B_1E6 = 4.753424308822899  # Φ(−β) = 1e-6
B_1E8 = 5.612001244174789  # Φ(−β) = 1e-8
linear_1e6 = _linear_factory(B_1E6)
linear_1e8 = _linear_factory(B_1E8)
linear_b5 = _linear_factory(5.0)

# ---------------------------------------------------------------- two regions (columns)

UB1, UB2 = 3.5, 4.5


def union(u):
    """Two half-spaces in two columns: β = 3.5 along u₁, β = 4.5 along −u₂."""
    return jnp.stack([UB1 - u[:, 0], UB2 + u[:, 1]], axis=1)


# ---------------------------------------------------------------- series systems


def _four_branch_factory(k: float):
    def g(u):
        x1, x2 = u[:, 0], u[:, 1]
        d2 = 0.1 * (x1 - x2) ** 2
        s = (x1 + x2) / _SQ2
        return jnp.minimum(
            jnp.minimum(3.0 + d2 - s, 3.0 + d2 + s),
            jnp.minimum((x1 - x2) + k / _SQ2, (x2 - x1) + k / _SQ2),
        )

    return g


four_branch_k7 = _four_branch_factory(7.0)
four_branch_k6 = _four_branch_factory(6.0)


def _four_branch_pf(k: float) -> float:
    # v₁ = (x₁+x₂)/√2, v₂ = (x₁−x₂)/√2 independent N(0, 1); safe iff |v₁| < 3 + 0.2 v₂²
    # and |v₂| < k/2.
    safe = _quad(lambda v: _phi(v) * (1.0 - 2.0 * _sf(3.0 + 0.2 * v * v)), -k / 2, k / 2)
    return 1.0 - safe


def rp33(u):
    """RP33: min(−x₁ − x₂ − x₃ + 3√3, −x₃ + 3), x ~ N(0, I₃)."""
    return jnp.minimum(-u[:, 0] - u[:, 1] - u[:, 2] + 3.0 * math.sqrt(3.0), 3.0 - u[:, 2])


def _rp33_pf() -> float:
    # Y₁ = (x₁+x₂+x₃)/√3, Y₂ = x₃: standard bivariate normal, ρ = 1/√3; pf = 1 − Φ₂(3, 3; ρ).
    rho = 1.0 / math.sqrt(3.0)
    s = math.sqrt(1.0 - rho * rho)
    both = _quad(lambda y: _phi(y) * _cdf((3.0 - rho * y) / s), -40.0, 3.0)
    return 1.0 - both


def rp75(u):
    """RP75: 3 − x₁x₂ (two hyperbolic branches, quadrants 1 and 3)."""
    return 3.0 - u[:, 0] * u[:, 1]


def rp111(u):
    """RP111: 12.5 − |x₁x₂| (four hyperbolic branches, one per quadrant)."""
    return 12.5 - jnp.abs(u[:, 0] * u[:, 1])


def _product_tail(c: float) -> float:
    # X₁X₂ of independent standard normals has density K₀(|z|)/π: P[X₁X₂ > c] = ∫_c^∞ K₀/π.
    return _quad(lambda z: float(special.k0(z)) / math.pi, c, np.inf)


def rp35(u):
    """RP35: min(2 − x₂ + exp(−0.1 x₁²) + (0.2 x₁)⁴, 4.5 − x₁x₂)."""
    x1, x2 = u[:, 0], u[:, 1]
    return jnp.minimum(2.0 - x2 + jnp.exp(-0.1 * x1 * x1) + (0.2 * x1) ** 4, 4.5 - x1 * x2)


def _rp35_pf() -> float:
    def h(x1):
        return 2.0 + math.exp(-0.1 * x1 * x1) + (0.2 * x1) ** 4

    def pos(x1):  # x₁ > 0: fail iff x₂ > min(h, 4.5/x₁)
        return _phi(x1) * _sf(min(h(x1), 4.5 / x1))

    def neg(x1):  # x₁ < 0: fail iff x₂ > h or x₂ < 4.5/x₁ (disjoint: h > 0 > 4.5/x₁)
        return _phi(x1) * (_sf(h(x1)) + _cdf(4.5 / x1))

    # the switch h(x₁) = 4.5/x₁ lies near x₁ = 1.4
    return _quad(neg, -40.0, 0.0) + _quad(pos, 0.0, 40.0, points=[1.0, 1.5, 2.0, 3.0])


# ---------------------------------------------------------------- curved


def rp22(u):
    """RP22: 2.5 − (x₁ + x₂)/√2 + 0.1 (x₁ − x₂)²."""
    x1, x2 = u[:, 0], u[:, 1]
    return 2.5 - (x1 + x2) / _SQ2 + 0.1 * (x1 - x2) ** 2


def _rp22_pf() -> float:
    return _quad(lambda v: _phi(v) * _sf(2.5 + 0.2 * v * v), -40.0, 40.0)


def rp31(u):
    """RP31: 2 − x₂ + 256 x₁⁴ (a very narrow failure domain)."""
    return 2.0 - u[:, 1] + 256.0 * u[:, 0] ** 4


def _rp31_pf() -> float:
    return _quad(lambda x: _phi(x) * _sf(2.0 + 256.0 * x**4), -5.0, 5.0, points=[0.0])


def kiureghian(u):
    """Der Kiureghian & Dakessian (1998) parabola with two design points:
    b − x₂ − κ(x₁ − e)², b = 5, κ = 0.5, e = 0.1."""
    return 5.0 - u[:, 1] - 0.5 * (u[:, 0] - 0.1) ** 2


def _kiureghian_pf() -> float:
    return _quad(lambda x: _phi(x) * _sf(5.0 - 0.5 * (x - 0.1) ** 2), -40.0, 40.0)


def rp63(u):
    """RP63: 0.1 Σ_{i≥2} x_i² − x₁ − 4.5 in 100 dimensions (the origin fails)."""
    return 0.1 * jnp.sum(u[:, 1:] ** 2, axis=1) - u[:, 0] - 4.5


def _rp63_pf() -> float:
    # pf = E[Φ(4.5 − 0.1 S)], S ~ χ²₉₉
    k = 99

    def f(s):
        logpdf = (k / 2 - 1) * math.log(s) - s / 2 - (k / 2) * math.log(2.0) - math.lgamma(k / 2)
        return math.exp(logpdf) * _cdf(4.5 - 0.1 * s)

    return _quad(f, 0.0, 400.0, points=[45.0, 60.0, 80.0, 99.0])


def concave10(u):
    """Concave paraboloid in 10-D: β − u₁₀ − (κ/2) Σ_{i<10} u_i², β = 4, κ = 0.1."""
    return 4.0 - u[:, -1] - 0.05 * jnp.sum(u[:, :-1] ** 2, axis=1)


def _concave10_pf() -> float:
    k = 9

    def f(s):
        logpdf = (k / 2 - 1) * math.log(s) - s / 2 - (k / 2) * math.log(2.0) - math.lgamma(k / 2)
        return math.exp(logpdf) * _sf(4.0 - 0.05 * s)

    return _quad(f, 0.0, 400.0, points=[5.0, 9.0, 20.0, 80.0])


# ---------------------------------------------------------------- surrounding the origin

#: P[χ²₁₀ > R²] = 1e-6
R2_SPHERE10 = 2.0 * float(special.gammainccinv(5.0, 1e-6))
#: P[χ²₆ > R²] = 1e-4
R2_SPHERE6 = 2.0 * float(special.gammainccinv(3.0, 1e-4))
R2_SPHERE10_40 = 40.0


def sphere10(u):
    """Outside the hypersphere of radius R in 10-D, pf = 1e-6."""
    return R2_SPHERE10 - jnp.sum(u * u, axis=1)


def sphere6(u):
    """Outside the hypersphere of radius R in 6-D, pf = 1e-4."""
    return R2_SPHERE6 - jnp.sum(u * u, axis=1)


def sphere10_40(u):
    """Outside |u|² = 40 in 10-D (the existing test problem), pf ≈ 1.7e-5."""
    return R2_SPHERE10_40 - jnp.sum(u * u, axis=1)


C_CUBE5 = 4.0


def cube5(u):
    """Outside the cube max|u_i| < 4 in 5-D: a series system of 10 half-spaces."""
    return C_CUBE5 - jnp.max(jnp.abs(u), axis=1)


def ellipsoid8(u):
    """Outside an ellipsoid in 8-D, semi-axes 4.5 (×4), 6 (×4)."""
    s = jnp.asarray([1.0 / 4.5**2] * 4 + [1.0 / 36.0] * 4, u.dtype)
    return 1.0 - (u * u) @ s


def _ellipsoid8_pf() -> float:
    # |u|² over the axes: 4.5⁻² χ²₄ + 6⁻² χ²₄ > 1, via the χ²₄ density of the first sum.
    def f(s):  # s = Σ_{i<4} u_i², density s/4 e^{−s/2}
        rest = max(0.0, 36.0 * (1.0 - s / 4.5**2))
        return 0.25 * s * math.exp(-s / 2) * float(special.gammaincc(2.0, rest / 2))

    return _quad(f, 0.0, 4.5**2) + float(special.gammaincc(2.0, 4.5**2 / 2))


# ---------------------------------------------------------------- parallel system


def rp25(u):
    """RP25: max(x₁² − 8x₂ + 16, −16x₁ + x₂ + 32) (an intersection: a corner)."""
    x1, x2 = u[:, 0], u[:, 1]
    return jnp.maximum(x1 * x1 - 8.0 * x2 + 16.0, -16.0 * x1 + x2 + 32.0)


def _rp25_pf() -> float:
    # fail iff 2 + x₁²/8 < x₂ < 16x₁ − 32, non-empty for x₁ between the roots of
    # x₁²/8 − 16x₁ + 34 = 0.
    d = math.sqrt(256.0 - 4.0 * 34.0 / 8.0)
    lo, hi = 4.0 * (16.0 - d), 4.0 * (16.0 + d)

    def f(x1):
        a, b = 2.0 + x1 * x1 / 8.0, 16.0 * x1 - 32.0
        return _phi(x1) * max(0.0, _cdf(b) - _cdf(a)) if b > a else 0.0

    return _quad(f, lo, min(hi, 40.0), points=[lo + 0.1, lo + 0.5, 3.0, 4.0])


# ---------------------------------------------------------------- non-normal inputs

C_EXP6 = math.log(1e6)


def exponential(u):
    """x = −log Φ(−u₁) ~ Exp(1) in 4-D; failure where x > ln 1e6 (pf = 1e-6)."""
    return C_EXP6 + jax.scipy.special.log_ndtr(-u[:, 0])


def rp54(u):
    """RP54: Σ_{i≤20} x_i − 8.951, x_i ~ Exp(1) = −log Φ(−u_i) (failure: a small sum)."""
    return -jnp.sum(jax.scipy.special.log_ndtr(-u), axis=1) - 8.951


def lognormal_rs(u):
    """R − S with R ~ LN(median 5, σ_ln 0.2), S ~ LN(median 1.5, σ_ln 0.3) (normals of
    ln R and ln S): failure iff ln R − ln S < 0, a hyperplane in u (closed form)."""
    return 5.0 * jnp.exp(0.2 * u[:, 0]) - 1.5 * jnp.exp(0.3 * u[:, 1])


# ---------------------------------------------------------------- badly scaled

RP28_M1, RP28_S1, RP28_M2, RP28_S2, RP28_T = 78064.4, 11709.7, 0.0104, 0.00156, 146.14


def rp28(u):
    """RP28: x₁x₂ − 146.14, x₁ ~ N(78064.4, 11709.7), x₂ ~ N(0.0104, 0.00156)."""
    x1 = RP28_M1 + RP28_S1 * u[:, 0]
    x2 = RP28_M2 + RP28_S2 * u[:, 1]
    return x1 * x2 - RP28_T


def _rp28_pf() -> float:
    def f(u1):
        x1 = RP28_M1 + RP28_S1 * u1
        if x1 == 0.0:
            return 0.0
        z = (RP28_T / x1 - RP28_M2) / RP28_S2
        return _phi(u1) * (_cdf(z) if x1 > 0 else _sf(z))

    zero = -RP28_M1 / RP28_S1
    return _quad(f, -40.0, zero) + _quad(f, zero, 40.0, points=[-4.0, -3.0, -2.0, -1.0, 0.0])


# ---------------------------------------------------------------- the sets


def reference(name: str) -> float:
    """The reference failure probability of problem ``name``, computed (see the
    module docstring); the numbers stored in :data:`SUITE` and :data:`DEV`."""
    return _REFERENCE[name]()


_REFERENCE: dict[str, Callable[[], float]] = {
    "linear10_1e-6": lambda: _sf(B_1E6),
    "linear100_1e-6": lambda: _sf(B_1E6),
    "linear10_1e-8": lambda: _sf(B_1E8),
    "rp107_linear10": lambda: _sf(5.0),
    "union10": lambda: _sf(UB1) + _sf(UB2) - _sf(UB1) * _sf(UB2),
    "four_branch_k7": lambda: _four_branch_pf(7.0),
    "four_branch_k6": lambda: _four_branch_pf(6.0),
    "rp33": _rp33_pf,
    "rp75": lambda: _product_tail(3.0),
    "rp111": lambda: 2.0 * _product_tail(12.5),
    "rp35": _rp35_pf,
    "rp22": _rp22_pf,
    "rp31": _rp31_pf,
    "kiureghian": _kiureghian_pf,
    "rp63": _rp63_pf,
    "concave10": _concave10_pf,
    "sphere10_1e-6": lambda: float(special.gammaincc(5.0, R2_SPHERE10 / 2)),
    "sphere6_1e-4": lambda: float(special.gammaincc(3.0, R2_SPHERE6 / 2)),
    "sphere10_r40": lambda: float(special.gammaincc(5.0, R2_SPHERE10_40 / 2)),
    "cube5": lambda: 1.0 - (1.0 - 2.0 * _sf(C_CUBE5)) ** 5,
    "ellipsoid8": _ellipsoid8_pf,
    "rp25": _rp25_pf,
    "exponential4_1e-6": lambda: math.exp(-C_EXP6),
    "rp54": lambda: float(special.gammainc(20.0, 8.951)),
    "lognormal_rs": lambda: _sf(math.log(5.0 / 1.5) / math.hypot(0.2, 0.3)),
    "rp28": _rp28_pf,
}

# Published values as quoted (RPrepo: Rozsas & Slobbe 2019; otbenchmark).
_RP = "RPrepo (Rozsas & Slobbe 2019)"


def _p(name, g, dim, kind, source, published=None, **kwargs) -> Problem:
    return Problem(name, g, dim, reference(name), kind, source, published, kwargs)


#: Validation suite (not used for tuning).
SUITE: tuple[Problem, ...] = (
    _p("linear10_1e-6", linear_1e6, 10, "linear", "hyperplane β = 4.753, exact Φ(−β)"),
    _p("linear100_1e-6", linear_1e6, 100, "linear", "hyperplane β = 4.753, exact Φ(−β)"),
    _p("linear10_1e-8", linear_1e8, 10, "linear", "hyperplane β = 5.612, exact Φ(−β)"),
    _p("union10", union, 10, "two-region", "two half-spaces (two columns), exact"),
    _p(
        "four_branch_k7",
        four_branch_k7,
        2,
        "series",
        "Waarts 2000 (DARS thesis, p. 58); Schueremans & Van Gemert 2005; otbenchmark",
        2.2227950661944e-3,
    ),
    _p("rp33", rp33, 3, "series", f"RP33, {_RP}", 2.57e-3),
    _p("rp35", rp35, 2, "series", f"RP35, {_RP}", 3.47894632e-3),
    _p("rp75", rp75, 2, "series", f"RP75, {_RP}", 9.81929872154689e-3),
    _p("rp111", rp111, 2, "series", f"RP111, {_RP}", 7.65e-7),
    _p("rp22", rp22, 2, "curved", f"RP22, {_RP}", 4.20730551129962e-3),
    _p("rp31", rp31, 2, "curved", f"RP31, {_RP}", 3.226681209587691e-3),
    _p("rp63", rp63, 100, "high-dim-curved", f"RP63, {_RP}", 3.79e-4),
    _p(
        "sphere10_1e-6",
        sphere10,
        10,
        "surrounding",
        "hypersphere exterior, exact χ²₁₀ tail (issue 13)",
    ),
    _p("rp25", rp25, 2, "parallel", f"RP25, {_RP}", 4.148566293759747e-5),
    _p("rp54", rp54, 20, "non-normal", f"RP54, {_RP}; exact Gamma(20, 1) CDF", 9.98e-4),
    _p("rp28", rp28, 2, "badly-scaled", f"RP28, {_RP}", 1.46e-7),
)

#: Development set: the problems the estimators were tuned on.
DEV: tuple[Problem, ...] = (
    _p("rp107_linear10", linear_b5, 10, "linear", f"RP107, {_RP}; exact Φ(−5)", 2.92e-7),
    _p(
        "four_branch_k6",
        four_branch_k6,
        2,
        "series",
        "Waarts 2000 / Echard et al. 2011 (AK-MCS) with k = 6",
        4.416e-3,
    ),
    _p("cube5", cube5, 5, "series", "cube exterior, exact 1 − (1 − 2Φ(−4))⁵"),
    _p(
        "kiureghian",
        kiureghian,
        2,
        "curved",
        "Der Kiureghian & Dakessian 1998 (b = 5, κ = 0.5, e = 0.1)",
        3.0e-3,
    ),
    _p("concave10", concave10, 10, "curved", "concave paraboloid, exact χ²₉ integral"),
    _p("sphere6_1e-4", sphere6, 6, "surrounding", "hypersphere exterior, exact χ²₆ tail"),
    _p("sphere10_r40", sphere10_40, 10, "surrounding", "hypersphere |u|² > 40, exact"),
    _p("ellipsoid8", ellipsoid8, 8, "surrounding", "ellipsoid exterior, exact χ²₄ integral"),
    _p("exponential4_1e-6", exponential, 4, "non-normal", "Exp(1) tail e^{−c}, exact"),
    _p("lognormal_rs", lognormal_rs, 2, "non-normal", "log-normal R − S, exact"),
)


def by_name(name: str) -> Problem:
    """The problem of :data:`SUITE` or :data:`DEV` called ``name``."""
    for p in SUITE + DEV:
        if p.name == name:
            return p
    raise KeyError(name)
