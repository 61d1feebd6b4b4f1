"""Verification of an optimiser's answer by crude Monte Carlo on fresh samples.

The optimiser's own estimates are biased towards success (it stops where its
noisy estimate says the target is met), so its answer is checked on samples it
never saw: a key split off before the optimiser starts. The count is streamed by
:func:`cpojax.estimators.streaming.stream_counts` in blocks of
:data:`cpojax.rng.BLOCK` samples, block b drawn from ``fold_in(key, b)``, so memory
stays flat for n_verify ~ 1e7 and the count does not depend on the chunk size.
The interval is the exact Clopper-Pearson 95 % interval (binomial counts).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.gradients import as_columns
from cpojax.estimators.result import InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson
from cpojax.estimators.streaming import BLOCK, stream_counts
from cpojax.levels import LevelYield

__all__ = ["gaussian_sampler", "verified_level", "verify_yield"]


def gaussian_sampler(key, params, n: int):
    """Default sampler: x = mean + std·u, u ~ N(0, I), x: f[n, dim]."""
    mean, std = params["mean"], params["std"]
    u = jax.random.normal(key, (n, mean.shape[0]), mean.dtype)
    return mean[None, :] + std[None, :] * u


def _make_block_counter(limit_state: Callable, sampler: Callable) -> Callable:
    def count(key, block, params, n_total):
        """Failing and invalid rows of block ``block`` (rows past n_total not counted)."""
        x = sampler(jax.random.fold_in(key, block), params, BLOCK)
        g = as_columns(limit_state(x, params["design"]))
        # Only the last block can be partial; surplus blocks of the last chunk are
        # discarded by stream_counts, so the wrap-around of the uint32 difference
        # there never reaches a total.
        valid = jnp.arange(BLOCK, dtype=jnp.uint32) < n_total - block * jnp.uint32(BLOCK)
        fail = jnp.any(g < 0, axis=1) & valid
        bad = ~jnp.all(jnp.isfinite(g), axis=1) & valid
        return {"fail": jnp.sum(fail.astype(jnp.int32)), "invalid": jnp.sum(bad.astype(jnp.int32))}

    return count


_cached_block_counter = functools.lru_cache(maxsize=32)(_make_block_counter)


def _block_counter(limit_state: Callable, sampler: Callable) -> Callable:
    """The per-block counter, one object per (limit_state, sampler) when hashable.

    stream_counts caches its compiled chunk function on the per-block function, so
    verifying the same limit state again does not recompile.
    """
    try:
        return _cached_block_counter(limit_state, sampler)
    except TypeError:  # an unhashable callable: no reuse across calls
        return _make_block_counter(limit_state, sampler)


def verify_yield(
    limit_state, params, *, key, n_verify: int, sampler: Callable | None = None, chunk: int = 2**18
) -> tuple[int, int]:
    """Crude Monte Carlo count of failures on fresh samples, streamed in chunks.

    Samples are drawn in blocks of :data:`~cpojax.rng.BLOCK` (4096) rows, block b
    from ``fold_in(key, b)``, so the count does not depend on ``chunk``; memory is
    O(chunk·dim).

    Args:
      limit_state: ``g(x, design) -> f[n] | f[n, k]``.
      params: {"mean", "std", "design"}.
      key: a key the optimiser never saw.
      n_verify: number of samples, in [1, 2**32).
      sampler: ``sampler(key, params, n) -> f[n, dim]``; default :func:`gaussian_sampler`.
      chunk: samples per jitted call, rounded up to a multiple of 4096.

    Returns:
      ``(n_fail, n_verify)``.

    Raises:
      ValueError: n_verify or chunk out of range.
      InvalidModelOutput: when the limit state returned NaN/inf for some samples.
    """
    if (
        isinstance(n_verify, bool)
        or not isinstance(n_verify, int | np.integer)
        or not 1 <= n_verify < 2**32
    ):
        raise ValueError(f"n_verify must be an int in [1, 2**32), got {n_verify!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    n_verify = int(n_verify)
    sampler = gaussian_sampler if sampler is None else sampler
    totals, _ = stream_counts(
        _block_counter(limit_state, sampler),
        key=key,
        n_blocks=-(-n_verify // BLOCK),
        chunk_blocks=max(1, -(-int(chunk) // BLOCK)),
        args=(params, jnp.uint32(n_verify)),
    )
    n_bad = int(totals["invalid"])
    if n_bad:
        raise InvalidModelOutput(
            f"verification: limit_state returned NaN/inf for {n_bad} of {n_verify} samples"
        )
    return int(totals["fail"]), n_verify


def verified_level(n_fail: int, n: int) -> LevelYield:
    """Yield 1 − k/n with the Clopper-Pearson 95 % interval turned over."""
    lo, hi = clopper_pearson(n_fail, n)
    return LevelYield(1.0 - n_fail / n, 1.0 - hi, 1.0 - lo)
