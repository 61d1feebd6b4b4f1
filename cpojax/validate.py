"""Host-side checks of public-API arguments: a clear error naming the argument.

Numbers may be Python or NumPy/JAX scalars (values from ``np.linspace`` or a jnp
sweep are accepted wherever a number is expected); anything else gets a
``TypeError`` or ``ValueError`` that names the argument and what is allowed.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.scenario import Scenario

__all__ = ["as_count", "check_scenario", "resolve_key", "resolve_seed"]

#: Seeds are integers in [0, 2**64).
SEED_MAX = 2**64


def check_scenario(scenario: Any, name: str = "scenario") -> Scenario:
    """The argument itself if it is a :class:`~cpojax.scenario.Scenario`, else TypeError."""
    if not isinstance(scenario, Scenario):
        raise TypeError(
            f"{name} must be a cpojax Scenario (e.g. Scenario.default() or Scenario.load(path)), "
            f"got {type(scenario).__name__}"
        )
    return scenario


def _as_int(value: Any) -> int | None:
    """int(value) for Python/NumPy integers and integral 0-d arrays, else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if (
        isinstance(value, np.ndarray | jax.Array)
        and value.shape == ()
        and (jnp.issubdtype(value.dtype, jnp.integer))
    ):
        return int(value)
    return None


def as_count(name: str, value: Any, lo: int = 1, hi: int | None = None) -> int:
    """An integer argument in [lo, hi] (NumPy/JAX integers accepted)."""
    v = _as_int(value)
    if v is None:
        raise TypeError(f"{name} must be an integer >= {lo}, got {value!r}")
    if v < lo or (hi is not None and v > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}, got {v}")
    return v


def resolve_seed(seed: Any) -> int:
    """A seed as a Python int in [0, 2**64), or a ValueError/TypeError naming it."""
    v = _as_int(seed)
    if v is None:
        raise TypeError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if not 0 <= v < SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {v}")
    return v


def resolve_key(key: Any, seed: Any) -> tuple[jax.Array, int | None]:
    """``(key, seed)``: the caller's key (seed reported as None), or one made from seed.

    Seeds below 2**32 give ``jax.random.key(seed)`` exactly; a larger seed folds
    its high 32 bits into the key of its low 32 bits, so every seed in [0, 2**64)
    names a distinct stream (JAX alone would silently truncate it to 32 bits).
    """
    if key is None:
        if seed is None:
            raise ValueError("give a key (jax.random.key(...)) or an integer seed")
        s = resolve_seed(seed)
        k = jax.random.key(s & 0xFFFFFFFF)
        if s >> 32:
            k = jax.random.fold_in(k, s >> 32)
        return k, s
    ok = isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        raise TypeError(
            f"key must be a jax.random key such as jax.random.key(0) (or pass seed=), got {key!r}"
        )
    return key, None
