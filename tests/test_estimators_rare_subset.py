"""Subset simulation (cpojax.estimators.rare.subset)."""

from __future__ import annotations

import pytest
from test_estimators_rare import PF_LIN, check, linear, runs


@pytest.mark.slow
def test_subset_linear_1e6():
    res = runs(linear, 10, "subset", target_cov=0.3)
    check(res, PF_LIN, max_median_rel_err=0.3)
    assert all(r.diagnostics["levels"] in (6, 7) for r in res)
