"""Generic failure-probability estimators, knowing nothing of photonics.

Every estimator takes a limit-state function of standard normals,
``limit_state(u: f32[n, dim]) -> f32[n]`` or ``f32[n, k]`` (failure where any
column is < 0), and returns a :class:`FailureResult`.
"""

from __future__ import annotations

from typing import Any

from cpojax.estimators.gradients import failure_grad
from cpojax.estimators.result import FailureResult, InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson, norm_ppf, wilson

__all__ = [
    "FailureResult",
    "InvalidModelOutput",
    "clopper_pearson",
    "estimate_failure",
    "failure_grad",
    "norm_ppf",
    "wilson",
]

_METHODS = ("mc", "form", "is", "subset", "auto")


def estimate_failure(
    limit_state, *, dim: int, key, method: str = "mc", **kwargs: Any
) -> FailureResult:
    """Estimate P[min_k g_k(U) < 0] for U ~ N(0, I_dim).

    Args:
      limit_state: ``g(u: f[n, dim]) -> f[n] | f[n, k]``, jnp-traceable, row-wise.
      dim: dimension of u.
      key: a ``jax.random`` key.
      method: "mc" (crude Monte Carlo, streamed), "form", "is", "subset" or "auto".
      **kwargs: passed to the method (see each module).
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    if method == "mc":
        from cpojax.estimators.mc import estimate_mc

        return estimate_mc(limit_state, dim=dim, key=key, **kwargs)
    from cpojax.estimators import rare

    return rare.estimate_rare(limit_state, dim=dim, key=key, method=method, **kwargs)
