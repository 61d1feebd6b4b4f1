"""Fused JAX Pallas kernels, installed as ``cpojax.kernels`` (docs/kernels.md).

* :func:`yield_counts`: the crude Monte Carlo yield counters of a run, from the fused
  yield-block kernel (:mod:`cpojax.kernels.yield_block`): random numbers of the
  ``"counter"`` generator drawn in-kernel, hierarchy, lane model through
  :mod:`cpojax.physics.limits`, per-block integer counters out. The counts are the ones
  :func:`cpojax.yields.estimate_yield` computes with ``generator="counter"`` on the XLA
  path (tested identical in interpret mode); histograms of g and the attribution sums are
  not computed by the kernel.
* :func:`resolve_implementation`: the ``implementation=`` switch of
  :func:`cpojax.yields.estimate_yield`.

* :func:`smoothed_failure_fraction` (:mod:`cpojax.kernels.smooth`): the smoothed lane
  failure fraction of one block, forward by the kernel, gradient by ``custom_vjp`` onto
  the XLA path.

The jnp path (``cpojax.physics`` + ``cpojax.rng``) is the reference. The counts are
piecewise constant in every scenario value, so they have no gradient; yield gradients
use the XLA path (:mod:`cpojax.estimators.gradients`) or the smoothed fraction above.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from cpojax.kernels.select import IMPLEMENTATIONS, pallas_supported, resolve_implementation

from cpojax import rng

__all__ = [
    "COUNTERS",
    "IMPLEMENTATIONS",
    "block_counts",
    "pallas_supported",
    "resolve_implementation",
    "smoothed_failure_fraction",
    "yield_counts",
]

_LAZY = {
    "COUNTERS": "cpojax.kernels.yield_block",
    "block_counts": "cpojax.kernels.yield_block",
    "smoothed_failure_fraction": "cpojax.kernels.smooth",
}


def __getattr__(name: str):
    """The Pallas modules are imported on first use (``import cpojax.yields`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def yield_counts(
    scenario,
    *,
    seed: int | None = 0,
    key=None,
    n_engines: int = 65_536,
    dtype=jnp.float32,
    interpret: bool = False,
    chunk_blocks: int | None = None,
    tile: int | None = None,
    start_block: int = 0,
    init: dict | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> dict[str, np.ndarray]:
    """Summed yield counters of ``n_engines`` engines (rounded up to whole blocks) from the
    fused kernel: the entry point for benchmarks.

    Args:
      scenario: the scenario.
      seed, key: the run's key (``jax.random.key(seed)`` when ``key`` is None); the
        numbers are those of ``generator="counter"``.
      n_engines: engines, rounded up to whole blocks of :data:`cpojax.rng.BLOCK`.
      dtype: float dtype of the physics.
      interpret: Pallas interpret mode (any backend; slow, for tests).
      chunk_blocks: blocks per kernel launch (default 1 interpreted, 64 compiled).
      tile: engines per kernel program (default :func:`default_tile`).
      start_block, init: resume from block ``start_block`` with the totals ``init``.
      progress: ``progress(blocks_done, totals)`` after each launch.

    Returns:
      {counter: int64 array} summed over blocks (see :data:`COUNTERS`), plus
      ``"n_blocks"`` (int) and ``"wall_s"`` (float, compilation included).
    """
    if key is None:
        key = jax.random.key(0 if seed is None else int(seed))
    n_blocks = -(-int(n_engines) // rng.BLOCK)
    from cpojax.kernels.yield_block import launcher, split_counters

    if chunk_blocks is None:
        chunk_blocks = 1 if interpret else 64
    t0 = time.perf_counter()
    launch = launcher(scenario, key, dtype=dtype, interpret=interpret, tile=tile)
    totals = None if init is None else {k: np.asarray(v, np.int64) for k, v in init.items()}
    done = int(start_block)
    n = min(int(chunk_blocks), n_blocks - done)
    pending = launch(done, n) if n > 0 else None
    while pending is not None:
        nxt_start = done + n
        n_next = min(int(chunk_blocks), n_blocks - nxt_start)
        # dispatch the next launch before reading this one back (host and device overlap)
        nxt = launch(nxt_start, n_next) if n_next > 0 else None
        per_block = split_counters(np.asarray(pending), launch.lanes)
        s = {k: np.asarray(v, np.int64).sum(axis=0) for k, v in per_block.items()}
        totals = s if totals is None else {k: totals[k] + s[k] for k in s}
        done, n, pending = nxt_start, n_next, nxt
        if progress is not None:
            progress(done, totals)
    out = dict(totals or {})
    out["n_blocks"] = n_blocks
    out["wall_s"] = time.perf_counter() - t0
    return out
