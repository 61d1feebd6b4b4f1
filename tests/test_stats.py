"""Binomial intervals and the normal distribution against published / closed-form values.

Reference values: Clopper-Pearson and Wilson intervals as published (e.g. Newcombe,
Stat. Med. 17, 857, 1998, table I style) and reproduced to all digits shown by
``scipy.stats.binomtest(k, n).proportion_ci`` (scipy 1.17); normal quantiles and tails
to 20 digits from mpmath (50-digit arithmetic).
"""

import math

import pytest
from scipy import special

from cpojax.estimators.stats import (
    Z95,
    binomial_se,
    clopper_pearson,
    norm_cdf,
    norm_ppf,
    norm_sf,
    wilson,
)

# (k, n, confidence, lower, upper)
CP_KNOWN = [
    (5, 100, 0.95, 0.016431879181728278, 0.11283491110546288),
    (1, 10, 0.95, 0.0025285785444625728, 0.44501611702819543),
    (0, 50, 0.95, 0.0, 0.07112173646420458),
    (37, 1000, 0.90, 0.027712066828402587, 0.04838992666597338),
]


@pytest.mark.parametrize(("k", "n", "conf", "lo", "hi"), CP_KNOWN)
def test_clopper_pearson_known_values(k, n, conf, lo, hi):
    got = clopper_pearson(k, n, conf)
    assert got[0] == pytest.approx(lo, rel=1e-9, abs=1e-15), f"lower for k={k}, n={n}"
    assert got[1] == pytest.approx(hi, rel=1e-9), f"upper for k={k}, n={n}"


def test_clopper_pearson_rounded_textbook_value():
    lo, hi = clopper_pearson(5, 100)
    assert round(lo, 5) == 0.01643 and round(hi, 5) == 0.11283


@pytest.mark.parametrize("n", [1, 7, 100, 10_000])
def test_clopper_pearson_edges_closed_form(n):
    alpha = 0.05
    lo, hi = clopper_pearson(0, n)
    assert lo == 0.0
    assert hi == pytest.approx(1 - (alpha / 2) ** (1 / n), rel=1e-10)
    lo, hi = clopper_pearson(n, n)
    assert hi == 1.0
    assert lo == pytest.approx((alpha / 2) ** (1 / n), rel=1e-10)


def test_clopper_pearson_symmetry_and_nesting():
    for k in (0, 3, 17, 50):
        lo, hi = clopper_pearson(k, 60)
        lo2, hi2 = clopper_pearson(60 - k, 60)
        assert lo == pytest.approx(1 - hi2, abs=1e-12)
        assert hi == pytest.approx(1 - lo2, abs=1e-12)
        lo99, hi99 = clopper_pearson(k, 60, 0.99)
        assert lo99 <= lo <= k / 60 <= hi <= hi99


def test_wilson_known_value_and_score_inversion():
    lo, hi = wilson(5, 100)
    assert lo == pytest.approx(0.021543679154367973, rel=1e-9)
    assert hi == pytest.approx(0.11175046923191914, rel=1e-9)
    # The endpoints p0 solve the score equation |p̂ − p0| = z·sqrt(p0(1 − p0)/n).
    z = 1.959963984540054
    for p0 in (lo, hi):
        assert abs(0.05 - p0) == pytest.approx(z * math.sqrt(p0 * (1 - p0) / 100), rel=1e-9)


def test_wilson_zero_successes_not_degenerate():
    lo, hi = wilson(0, 1000)
    z2 = 1.959963984540054**2
    assert lo == 0.0
    assert hi == pytest.approx(z2 / (1000 + z2), rel=1e-12)  # closed form at k = 0


def test_norm_ppf_known_values():
    assert norm_ppf(0.5) == pytest.approx(0.0, abs=1e-15)
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-14)
    assert norm_ppf(0.001) == pytest.approx(-3.090232306167813, rel=1e-13)
    assert norm_ppf(1e-9) == pytest.approx(-5.997807015007686, rel=1e-12)
    assert norm_ppf(0.0) == -math.inf and norm_ppf(1.0) == math.inf


@pytest.mark.parametrize("p", [1e-15, 1e-10, 3e-7, 1e-4, 0.02, 0.02425, 0.3, 0.5, 0.77, 0.999])
def test_norm_ppf_inverts_erfc(p):
    x = norm_ppf(p)
    # Φ(x) = erfc(−x/√2)/2; compare in the tail that carries the information.
    if p < 0.5:
        back = 0.5 * math.erfc(-x / math.sqrt(2))
        assert back == pytest.approx(p, rel=1e-12)
    else:
        back = 0.5 * math.erfc(x / math.sqrt(2))
        assert back == pytest.approx(1 - p, rel=1e-10)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="p must be in"):
        norm_ppf(1.5)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(5, 3)
    with pytest.raises(ValueError, match="n >= 1"):
        clopper_pearson(0, 0)
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson(1, 10, 1.0)
    with pytest.raises(ValueError, match="wilson"):
        wilson(-1, 10)


def test_binomial_se():
    assert binomial_se(0.1, 100) == pytest.approx(0.03, rel=1e-12)
    assert binomial_se(0.0, 100) == 0.0


# ------------------------------------------------------------------ scipy vs the former code


def _former_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) (Numerical Recipes §6.4), as formerly used."""
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


def _former_betainc_inv(a: float, b: float, y: float) -> float:
    """The former hand-written B⁻¹ (bisection on the continued fraction), kept here only
    as the reference the scipy version must reproduce."""

    def betainc(x: float) -> float:
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 1.0
        lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        lbt += a * math.log(x) + b * math.log1p(-x)
        if x < (a + 1.0) / (a + b + 2.0):
            return math.exp(lbt) * _former_cf(a, b, x) / a
        return 1.0 - math.exp(lbt) * _former_cf(b, a, 1.0 - x) / b

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


def _former_clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else _former_betainc_inv(k, n - k + 1, alpha / 2)
    hi = 1.0 if k == n else _former_betainc_inv(k + 1, n - k, 1 - alpha / 2)
    return lo, hi


CP_GRID = [
    (k, n)
    for n in (1, 2, 3, 5, 10, 37, 100, 1000)
    for k in sorted({0, 1, 2, n // 3, n // 2, n - 1, n})
    if 0 <= k <= n
]


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_clopper_pearson_agrees_with_former_implementation(confidence):
    """scipy's betaincinv/betainccinv reproduce the former bisection to 5e-12 where that
    one was accurate (n ≤ 1000; beyond, it drifts: see the large-n test)."""
    for k, n in CP_GRID:
        got = clopper_pearson(k, n, confidence)
        ref = _former_clopper_pearson(k, n, confidence)
        for g, r in zip(got, ref, strict=True):
            assert g == pytest.approx(r, rel=5e-12, abs=1e-300), (k, n, confidence, got, ref)


@pytest.mark.parametrize("n", [10**6, 2**31, 10**12])
def test_clopper_pearson_large_n_closed_form(n):
    """k = 1 and k = n − 1 have closed forms: lower(1) = 1 − (1 − α/2)^(1/n) and
    upper(n − 1) = (1 − α/2)^(1/n). The former code lost digits here (cancellation in
    lgamma(a + b) − lgamma(b)): 1.5e-6 relative at n = 2³¹."""
    alpha = 0.05
    lo_exact = -math.expm1(math.log1p(-alpha / 2) / n)
    hi_exact = math.exp(math.log1p(-alpha / 2) / n)
    assert clopper_pearson(1, n)[0] == pytest.approx(lo_exact, rel=1e-13)
    assert clopper_pearson(n - 1, n)[1] == pytest.approx(hi_exact, rel=1e-15)
    if n == 2**31:  # the defect, reproduced on the former implementation
        former = _former_clopper_pearson(1, n, 0.95)[0]
        assert abs(former / lo_exact - 1) > 1e-7


@pytest.mark.parametrize(("k", "n"), [(3, 10**7), (1000, 10**6), (10**5, 10**9)])
def test_clopper_pearson_solves_its_defining_equation(k, n):
    """I_lo(k, n−k+1) = α/2 and 1 − I_hi(k+1, n−k) = α/2 (forward functions)."""
    lo, hi = clopper_pearson(k, n)
    assert special.betainc(k, n - k + 1, lo) == pytest.approx(0.025, rel=1e-9)
    assert special.betaincc(k + 1, n - k, hi) == pytest.approx(0.025, rel=1e-9)


# 20-digit references from mpmath; the former Acklam + Halley code gave the second
# column (relative errors 1e-9 and 8e-11: the Halley step on erfc cancels for p → 1).
PPF_MP = [
    (1 - 1e-12, 7.0344869100478352057, 7.0344869026843035),
    (1 - 1e-8, 5.6120012433055049826, 5.612001242872915),
    (0.4999, -0.00025066283008800749239, -0.00025066283008794675),
    (1e-300, -37.047096299361199237, -37.0470962993612),
]


@pytest.mark.parametrize(("p", "exact", "former"), PPF_MP)
def test_norm_ppf_full_precision(p, exact, former):
    assert norm_ppf(p) == pytest.approx(exact, rel=4e-16)
    if abs(p - 0.5) > 1e-3 and p > 0.5:  # the defect of the former code, reproduced
        assert abs(former / exact - 1) > 1e-11


def test_z95_and_normal_tails():
    assert norm_ppf(0.975) == Z95
    # mpmath: Φ(−4.753), Φ(−10), Φ(−30)
    assert norm_sf(4.753) == pytest.approx(1.0021017399753209991e-6, rel=1e-14)
    assert norm_sf(10.0) == pytest.approx(7.619853024160526066e-24, rel=1e-14)
    assert norm_sf(30.0) == pytest.approx(4.9067139271481870595e-198, rel=1e-13)
    assert 1.0 - norm_cdf(30.0) == 0.0  # why the tail has its own function
    for x in (-3.0, 0.0, 0.7, 5.0):
        assert norm_cdf(x) == norm_sf(-x)
        assert norm_cdf(x) + norm_sf(x) == pytest.approx(1.0, rel=1e-15)
    assert norm_ppf(norm_cdf(-5.0)) == pytest.approx(-5.0, rel=1e-14)


def test_wilson_edges_exact():
    for n in (1, 7, 1000):
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0
