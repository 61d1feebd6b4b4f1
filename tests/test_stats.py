"""Binomial intervals and the normal quantile against published / closed-form values.

Reference values: Clopper-Pearson and Wilson intervals as published (e.g. Newcombe,
Stat. Med. 17, 857, 1998, table I style) and reproduced to all digits shown by
``scipy.stats.binomtest(k, n).proportion_ci`` (scipy 1.17); scipy itself is not a
test dependency.
"""

import math

import pytest

from cpojax.estimators.stats import binomial_se, clopper_pearson, norm_ppf, wilson

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
