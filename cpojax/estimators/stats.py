"""Binomial confidence intervals and the normal distribution on the host.

Yields are binomial proportions, so intervals are exact (Clopper-Pearson) for
reported results and Wilson score for cheap monitoring; the Wald interval
p ± z·sqrt(p(1-p)/n) is never used because it collapses to zero width at p = 0
or 1, exactly where yield work lives (Brown, Cai & DasGupta, Stat. Sci. 16, 101, 2001).

Special functions come from :mod:`scipy.special` (installed with JAX; only the
``special`` submodule is imported: ``scipy.stats`` alone takes about 1 s to import):

* the normal quantile is ``scipy.special.ndtri``, relative error below 4e-16 on
  (0, 1), where the former hand-written Acklam + Halley version reached 1e-9 for
  p → 1 (measured against 50-digit mpmath);
* Clopper-Pearson bounds are ``scipy.special.betaincinv`` (lower) and
  ``betainccinv`` (upper, solved for the upper tail α/2 itself rather than for
  1 − α/2, which rounding would perturb), relative error below 5e-16 where the former
  continued fraction + bisection lost up to 3 digits for large n and small k (n = 1e12,
  k = 2: 2.5e-3; n = 2³¹, k = 1: 1.5e-6; n = 1e7, k = 3: 5e-9) through cancellation in
  ``lgamma(a + b) − lgamma(b)``;
* the normal tail Φ(−x) stays ``0.5·erfc(x/√2)`` from the C library:
  ``scipy.special.ndtr`` computes the same expression, is no more accurate (both
  ≤ 2.2e-13 relative on [−5, 37], limited by rounding x/√2) and differs in the last
  bits, which would move every seeded FORM and importance-sampling number.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = [
    "Z95",
    "binomial_se",
    "clopper_pearson",
    "norm_cdf",
    "norm_ppf",
    "norm_sf",
    "wilson",
]

#: Φ⁻¹(0.975), the two-sided 95 % normal quantile (equal to ``norm_ppf(0.975)``).
Z95 = 1.959963984540054


def norm_ppf(p: float) -> float:
    """Standard normal quantile Φ⁻¹(p) on the host (``scipy.special.ndtri``).

    Args:
      p: probability in [0, 1]; Φ⁻¹(0) = −inf, Φ⁻¹(1) = +inf.

    Raises:
      ValueError: p outside [0, 1] or NaN.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"norm_ppf: p must be in [0, 1], got {p}")
    return float(special.ndtri(p))


def norm_sf(x: float) -> float:
    """Standard normal upper tail Φ(−x) = ½·erfc(x/√2) on the host (accurate in the
    far tail, where 1 − Φ(x) would cancel; see the module docstring)."""
    return 0.5 * math.erfc(float(x) / math.sqrt(2.0))


def norm_cdf(x: float) -> float:
    """Standard normal CDF Φ(x) = ½·erfc(−x/√2) on the host."""
    return 0.5 * math.erfc(-float(x) / math.sqrt(2.0))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) two-sided interval for a binomial proportion k/n.

    lower = B⁻¹(α/2; k, n−k+1), upper = B⁻¹(1−α/2; k+1, n−k), with the
    conventions lower = 0 at k = 0 and upper = 1 at k = n; B⁻¹ is the inverse
    regularised incomplete beta function (``scipy.special.betaincinv``; the upper
    bound as ``betainccinv(k+1, n−k, α/2)``, the same number without rounding 1 − α/2).

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
    lo = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    hi = 1.0 if k == n else float(special.betainccinv(k + 1, n - k, alpha / 2))
    return lo, hi


def wilson(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval; accepts non-integer k (e.g. effective counts).

    (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), p = k/n, z = Φ⁻¹(½ + c/2);
    the lower bound is exactly 0 at k = 0 and the upper exactly 1 at k = n (where the
    two terms cancel analytically, not always in floating point).
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need n > 0 and 0 <= k <= n, got k={k}, n={n}")
    z = norm_ppf(0.5 + confidence / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def binomial_se(p: float, n: float) -> float:
    """Standard error sqrt(p(1−p)/n) of a proportion — for test tolerances only."""
    return float(np.sqrt(max(p * (1 - p), 0.0) / n))
