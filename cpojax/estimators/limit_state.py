"""The limit-state contract of the estimator layer, checked once for every estimator.

A limit state is ``g(u: f[n, dim]) -> f[n] | f[n, k]``: jnp-traceable, row-wise (row
i of the output depends on row i of u only), failure where any column is < 0.
:func:`check_limit_state` verifies what can be verified before sampling starts:

1. ``g`` traces on an abstract ``f[n, dim]`` input (a wrong ``dim`` usually fails
   here with a shape error);
2. it returns floats of shape ``(n,)`` or ``(n, k)`` with k ≥ 1;
3. it reads no array out of bounds. JAX does not raise on an out-of-range index: it
   clamps it (``u[:, 5]`` of a ``dim = 2`` input reads ``u[:, 1]``) or fills it, so a
   model written for more inputs than ``dim`` runs and returns a plausible number.
   The check evaluates ``g`` once, on a small probe ``u = 0`` of shape ``(n, dim)``,
   under :func:`jax.experimental.checkify.checkify` with its index checks, which
   instrument every gather, dynamic slice and scatter, also inside ``vmap``,
   ``scan`` and nested ``jit``, and report the array shape, axis and index read.
   A static trace cannot do this reliably (indices reach ``dynamic_slice`` as
   values computed in the graph), and a probe at another ``dim`` is not valid (``g``
   may itself check ``dim``). Slices (``u[:, 1:6]``) follow NumPy and are clamped
   before JAX sees them; they cannot be told apart from intended slices.

The result is cached per (function object, dim, dtype): pass the same function object
on every call (the estimators need that anyway to reuse their compiled kernels).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = ["PROBE_ROWS", "as_columns", "check_limit_state"]

#: Rows of the probe input u used by the check (abstract trace and concrete probe).
PROBE_ROWS = 3


def as_columns(g: jax.Array) -> jax.Array:
    """A limit-state output as columns: f[n] becomes f[n, 1], f[n, k] is unchanged."""
    return g[:, None] if g.ndim == 1 else g


def check_limit_state(limit_state: Callable, dim: int, dtype: Any = jnp.float32) -> int:
    """Check a limit-state function against ``dim``; return its column count k.

    Args:
      limit_state: ``g(u: f[n, dim]) -> f[n] | f[n, k]``, jnp-traceable, row-wise.
      dim: number of standard-normal inputs, ≥ 1.
      dtype: float dtype of u.

    Returns:
      k: 1 for an output f[n], else the number of columns.

    Raises:
      ValueError: ``limit_state`` is not callable, does not trace on f[n, dim] input,
        returns another shape or a non-float dtype, or reads an array out of bounds
        (the message names ``dim`` and what ``g`` read).
    """
    if not callable(limit_state):
        raise ValueError(f"limit_state must be callable, got {type(limit_state).__name__}")
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    dim = int(dim)
    dtype = jnp.dtype(dtype)
    try:
        hash(limit_state)
    except TypeError:  # unhashable callable object: check it every time
        return _check(limit_state, dim, dtype)
    return _check_cached(limit_state, dim, dtype)


@functools.lru_cache(maxsize=256)
def _check_cached(limit_state: Callable, dim: int, dtype: jnp.dtype) -> int:
    return _check(limit_state, dim, dtype)


def _check(limit_state: Callable, dim: int, dtype: jnp.dtype) -> int:
    n = PROBE_ROWS
    where = f"an input u of shape (n, dim) = ({n}, {dim}), dtype {dtype.name}"
    try:
        out = jax.eval_shape(limit_state, jax.ShapeDtypeStruct((n, dim), dtype))
    except Exception as e:  # any tracing failure is reported against dim
        raise ValueError(
            f"limit_state failed on {where}; check that dim={dim} matches the model: "
            f"{type(e).__name__}: {e}"
        ) from e
    shape = getattr(out, "shape", None)
    if shape is None or len(shape) not in (1, 2) or shape[0] != n:
        shape = type(out).__name__ if shape is None else tuple(shape)
        raise ValueError(
            f"limit_state must map u: f[n, dim] to f[n] or f[n, k]; on {where} it "
            f"returned shape {shape}"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"limit_state must return floats, got dtype {out.dtype}")
    k = 1 if len(shape) == 1 else int(shape[1])
    if k < 1:
        raise ValueError("limit_state must return at least one column (k >= 1)")
    message = _out_of_bounds(limit_state, n, dim, dtype)
    if message:
        raise ValueError(
            f"limit_state reads out of bounds on a probe u = 0 of shape (n, dim) = "
            f"({n}, {dim}), i.e. dim={dim}: {message.strip()} JAX clamps such indices "
            "instead of raising, so g would silently read another entry; if that array "
            f"is u, the model reads more than dim={dim} inputs: check that dim matches it."
        )
    return k


def _out_of_bounds(limit_state: Callable, n: int, dim: int, dtype: jnp.dtype) -> str | None:
    """checkify's out-of-bounds message for g on u = 0 of shape (n, dim), or None.

    Only the error is returned from the jitted probe, so the model's own outputs are
    dead code for the compiler. A probe that cannot run under checkify (an
    unsupported primitive, a host callback that fails) skips this check: the shape
    checks above already passed.
    """

    def errors(u):
        err, _ = checkify.checkify(limit_state, errors=checkify.index_checks)(u)
        return err

    try:
        err = jax.jit(errors)(jnp.zeros((n, dim), dtype))
        return err.get()
    except Exception:
        return None
