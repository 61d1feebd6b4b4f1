"""FORM (cpojax.estimators.rare.form): design points, the first-order pf, no interval."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
from test_estimators_rare import B1, B2, BETA, PF_LIN, PF_UNION, linear, union

from cpojax.estimators import estimate_failure


def test_form_linear_is_exact_but_claims_no_interval():
    """Issue 15, item 18: FORM returned ci = (pf, pf) and cov = 0, a zero-width interval
    it does not have. It now claims none: ci = (0, 1), cov = inf, never reliable."""
    r = estimate_failure(linear, dim=10, key=jax.random.key(0), method="form")
    assert r.pf == pytest.approx(PF_LIN, rel=1e-2)  # float32, tol 1e-3 in u
    assert r.ci == (0.0, 1.0) and r.cov == math.inf
    assert not r.reliable  # FORM alone is never validated
    assert r.beta == pytest.approx(BETA, rel=1e-3)
    d = r.to_dict()
    assert d["ci"] == [0.0, 1.0] and d["cov"] is None
    json.dumps(d, allow_nan=False)  # valid JSON: no Infinity
    u_star = r.diagnostics["design_points"][0]
    np.testing.assert_allclose(u_star, np.full(10, BETA / math.sqrt(10)), atol=2e-3)
    assert 0 < r.n_evals <= 100  # 8 starts × (grad + line search + grad) + origin


def test_form_union_finds_both_design_points():
    r = estimate_failure(union, dim=10, key=jax.random.key(0), method="form")
    assert sorted(r.diagnostics["design_betas"]) == pytest.approx([B1, B2], rel=1e-3)
    assert r.pf == pytest.approx(PF_UNION, rel=1e-3)  # independent columns: series formula exact
    assert r.ci == (0.0, 1.0) and r.cov == math.inf and not r.reliable


def test_design_points_are_not_for_form():
    with pytest.raises(ValueError, match="design_points"):
        estimate_failure(
            linear,
            dim=10,
            key=jax.random.key(0),
            method="form",
            design_points=[(np.zeros(10), 1.0, 0)],
        )
