"""Shared pieces of the rare-event estimators: options, the limit-state column view,
invalid-output errors and the log-normal interval.

Options are parsed and range-checked here once for every method (``estimate_rare``
documents each); NaN/inf outputs are counted inside the jitted kernels of each method
and raised on the host by :func:`raise_invalid` as :class:`InvalidModelOutput`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.limit_state import as_columns
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import Z95

__all__ = ["METHODS", "Options", "eval_columns", "log_ci", "parse_options", "raise_invalid"]

METHODS = ("form", "is", "subset", "auto")


@dataclasses.dataclass(frozen=True)
class Options:
    """Options of every rare-event method, with their defaults (documented in
    :func:`~cpojax.estimators.rare.auto.estimate_rare`)."""

    target_cov: float = 0.1
    max_evals: int = 200_000
    n_starts: int = 8
    n_batch: int = 100
    n_ce: int = 2
    n_per_level: int = 2000
    n_ce_level: int = 500
    p0: float = 0.1
    max_iter: int = 50
    form_tol: float | None = None
    min_ess: float = 30.0
    max_weight_share: float = 0.1
    is_share: float = 0.25
    dtype: Any = jnp.float32


_INT_RANGES = {
    "max_evals": (1, 10**12),
    "n_starts": (1, 4096),
    "n_batch": (10, 10**7),
    "n_ce": (0, 1000),
    "n_per_level": (100, 10**7),
    "n_ce_level": (100, 10**7),
    "max_iter": (1, 10_000),
}
_FLOAT_RANGES = {  # open/closed noted in the message
    "target_cov": (0.0, 10.0),
    "p0": (0.0, 0.5),
    "min_ess": (1.0, 1e12),
    "max_weight_share": (0.0, 1.0),
    "is_share": (0.0, 1.0),
    "form_tol": (0.0, 1.0),
}


def parse_options(kwargs: dict[str, Any]) -> Options:
    """Options from keyword arguments, each range-checked.

    Raises:
      ValueError: an unknown name or a value out of range (named, with the range).
    """
    names = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; allowed: {sorted(names)}")
    for name, (lo, hi) in _INT_RANGES.items():
        if name in kwargs:
            v = kwargs[name]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")
            kwargs[name] = int(v)
    for name, (lo, hi) in _FLOAT_RANGES.items():
        if name in kwargs and not (name == "form_tol" and kwargs[name] is None):
            v = kwargs[name]
            ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
            if not ok or not lo < float(v) <= hi:
                raise ValueError(f"{name} must be a number in ({lo}, {hi}], got {v!r}")
            kwargs[name] = float(v)
    if "dtype" in kwargs:
        dt = kwargs["dtype"]
        try:
            dt = jnp.dtype(dt)
        except TypeError as e:
            raise ValueError(f"dtype must be float32 or float64, got {dt!r}") from e
        if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        if dt == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError("dtype=float64 needs jax_enable_x64=True")
        kwargs["dtype"] = dt
    opts = Options(**kwargs)
    n_chains = opts.n_per_level * opts.p0
    if abs(n_chains - round(n_chains)) > 1e-9 or round(n_chains) < 2:
        raise ValueError(
            f"n_per_level·p0 must be an integer ≥ 2 (number of chains), got "
            f"n_per_level={opts.n_per_level}, p0={opts.p0}"
        )
    if opts.n_per_level % round(n_chains) != 0:
        raise ValueError(
            f"n_per_level must be a multiple of n_per_level·p0 (chain length 1/p0), "
            f"got n_per_level={opts.n_per_level}, p0={opts.p0}"
        )
    return opts


def raise_invalid(n_bad: int, n_rows: int, stage: str) -> None:
    """Raise :class:`InvalidModelOutput` (with ``n_invalid``) when ``n_bad`` > 0."""
    if n_bad:
        raise InvalidModelOutput(
            f"limit_state returned NaN or inf for {n_bad} of {n_rows} rows during {stage}; "
            "rare-event estimates cannot ignore them (the invalid region may be the failure "
            "region). Fix the model or clip its inputs.",
            n_invalid=int(n_bad),
        )


def eval_columns(limit_state, u, dtype):
    """``limit_state(u)`` as a 2-D array [n, k] in ``dtype``."""
    return as_columns(jnp.asarray(limit_state(u))).astype(dtype)


def log_ci(pf: float, cov: float) -> tuple[float, float]:
    """95 % interval normal on the log scale (log-normal with the given cov)."""
    if not pf > 0 or not math.isfinite(cov):
        return (0.0, 1.0)
    s = math.sqrt(math.log1p(cov * cov))
    return (pf * math.exp(-Z95 * s), min(1.0, pf * math.exp(Z95 * s)))
