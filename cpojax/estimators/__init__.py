"""Generic failure-probability estimators, knowing nothing of photonics.

Every estimator takes a limit-state function of standard normals,
``limit_state(u: f32[n, dim]) -> f32[n]`` or ``f32[n, k]`` (failure where any
column is < 0), checked against ``dim`` by :func:`check_limit_state`, and returns a
:class:`FailureResult`.

Modules: :mod:`.mc` (streamed crude Monte Carlo), :mod:`.rare` (FORM, importance
sampling, subset simulation, the ``auto`` policy; one file per algorithm),
:mod:`.gradients` (∇Pf), :mod:`.streaming` (the shared streaming loop),
:mod:`.limit_state` (the contract check), :mod:`.stats` (binomial intervals, the
normal distribution on the host), :mod:`.result` (the result type).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cpojax.estimators.gradients import failure_grad
from cpojax.estimators.limit_state import check_limit_state
from cpojax.estimators.mc import estimate_mc
from cpojax.estimators.rare import estimate_rare
from cpojax.estimators.result import FailureResult, InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson, norm_cdf, norm_ppf, norm_sf, wilson

__all__ = [
    "METHODS",
    "FailureResult",
    "InvalidModelOutput",
    "check_limit_state",
    "clopper_pearson",
    "estimate_failure",
    "estimate_mc",
    "estimate_rare",
    "failure_grad",
    "norm_cdf",
    "norm_ppf",
    "norm_sf",
    "wilson",
]

#: The methods of :func:`estimate_failure`.
METHODS = ("mc", "form", "is", "subset", "auto")


def estimate_failure(
    limit_state, *, dim: int, key, method: str = "mc", **kwargs: Any
) -> FailureResult:
    """Estimate P[min_k g_k(U) < 0] for U ~ N(0, I_dim).

    Args:
      limit_state: ``g(u: f[n, dim]) -> f[n] | f[n, k]``, jnp-traceable, row-wise.
      dim: dimension of u, an int ≥ 1 (Python or NumPy integer).
      key: a ``jax.random`` key.
      method: "mc" (crude Monte Carlo, streamed), "form", "is", "subset" or "auto".
      **kwargs: passed to the method (:func:`estimate_mc`, :func:`estimate_rare`).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    dim = int(dim)
    if method == "mc":
        return estimate_mc(limit_state, dim=dim, key=key, **kwargs)
    return estimate_rare(limit_state, dim=dim, key=key, method=method, **kwargs)
