"""Binomial confidence intervals and small statistical helpers (host-side NumPy).

Yields are binomial proportions, so intervals are exact (Clopper-Pearson) for
reported results and Wilson score for cheap monitoring; the Wald interval
p ± z·sqrt(p(1-p)/n) is never used because it collapses to zero width at p = 0
or 1, exactly where yield work lives (Brown, Cai & DasGupta, Stat. Sci. 16, 101, 2001).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clopper_pearson", "norm_ppf", "wilson"]


def norm_ppf(p: float) -> float:
    """Standard normal quantile Φ⁻¹(p) on the host (Acklam's rational approximation
    refined by one Halley step on erfc; |error| < 1e-14 on (0, 1))."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"norm_ppf: p must be in [0, 1], got {p}")
    a = [
        -3.969683028665376e01,
        2.209460984245205e02,
        -2.759285104469687e02,
        1.383577518672690e02,
        -3.066479806614716e01,
        2.506628277459239e00,
    ]
    b = [
        -5.447609879822406e01,
        1.615858368580409e02,
        -1.556989798598866e02,
        6.680131188771972e01,
        -1.328068155288572e01,
    ]
    c = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e00,
        -2.549732539343734e00,
        4.374664141464968e00,
        2.938163982698783e00,
    ]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p > 1 - plow:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    # One Halley step against the exact CDF.
    e = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)


def _betainc_inv(a: float, b: float, y: float) -> float:
    """Inverse of the regularised incomplete beta function I_x(a, b) = y, by bisection
    on a continued-fraction evaluation of I_x (Numerical Recipes §6.4); 200 bisection
    steps give full double precision."""

    def betacf(a: float, b: float, x: float) -> float:
        tiny = 1e-300
        qab, qap, qam = a + b, a + 1.0, a - 1.0
        c, d = 1.0, 1.0 - qab * x / qap
        d = 1.0 / (d if abs(d) > tiny else tiny)
        h = d
        for m in range(1, 10000):
            m2 = 2 * m
            aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            de = d * c
            h *= de
            if abs(de - 1.0) < 1e-15:
                break
        return h

    def betainc(x: float) -> float:
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 1.0
        lbt = (
            math.lgamma(a + b)
            - math.lgamma(a)
            - math.lgamma(b)
            + a * math.log(x)
            + b * math.log1p(-x)
        )
        if x < (a + 1.0) / (a + b + 2.0):
            return math.exp(lbt) * betacf(a, b, x) / a
        return 1.0 - math.exp(lbt) * betacf(b, a, 1.0 - x) / b

    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if betainc(mid) < y:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-300:
            break
    return 0.5 * (lo + hi)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) two-sided interval for a binomial proportion k/n.

    lower = B⁻¹(α/2; k, n−k+1), upper = B⁻¹(1−α/2; k+1, n−k), with the
    conventions lower = 0 at k = 0 and upper = 1 at k = n.

    Args:
      k: number of successes (e.g. failing lanes), 0 <= k <= n.
      n: number of trials, n >= 1.
      confidence: two-sided coverage, in (0, 1).
    """
    k, n = int(k), int(n)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else _betainc_inv(k, n - k + 1, alpha / 2)
    hi = 1.0 if k == n else _betainc_inv(k + 1, n - k, 1 - alpha / 2)
    return lo, hi


def wilson(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval; accepts non-integer k (e.g. effective counts).

    (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), p = k/n.
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need n > 0 and 0 <= k <= n, got k={k}, n={n}")
    z = norm_ppf(0.5 + confidence / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_se(p: float, n: float) -> float:
    """Standard error sqrt(p(1−p)/n) of a proportion — for test tolerances only."""
    return float(np.sqrt(max(p * (1 - p), 0.0) / n))
