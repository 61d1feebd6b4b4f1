"""Streamed crude Monte Carlo of P[min_k g_k(U) < 0], U ~ N(0, I_dim).

Built on the generic streaming loop of :mod:`cpojax.estimators.streaming` with the
sample-indexed normals of :mod:`cpojax.rng`: memory flat in the sample count,
resumable, exact integer counts.

Reproducibility: sample i always uses the normals of block i // BLOCK, row
i % BLOCK (see :mod:`cpojax.rng`), and every stopping decision (end of the run,
adaptive ``target_cov``, invalid output) is taken at a block boundary from the
exact per-block counts. Hence ``n_fail`` and ``fail_counts`` are bit-identical for
every ``chunk_blocks``, for a run interrupted and resumed from its ``state``, and for
any device count.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.estimators.limit_state import as_columns, check_limit_state
from cpojax.estimators.result import FailureResult, InvalidModelOutput
from cpojax.estimators.stats import clopper_pearson, wilson
from cpojax.estimators.streaming import check_int, stream_counts
from cpojax.rng import BLOCK, GENERATORS, block_normals

__all__ = ["BLOCK", "estimate_mc"]

#: Device-memory budget (bytes of normals) used to pick a default chunk size.
_CHUNK_BYTES = 32 * 2**20
#: Upper bound on the default chunk size, in blocks (128 blocks = 524 288 samples).
_MAX_DEFAULT_CHUNK_BLOCKS = 128


@functools.lru_cache(maxsize=128)
def _mc_block_fn(limit_state: Callable, dim: int, dtype: Any, generator: str) -> Callable:
    """The per-block counting function of estimate_mc (cached: stable identity means
    the jitted chunk is compiled once per (limit_state, dim, dtype, chunk size))."""

    def block(key, b):
        u = block_normals(key, b, dim, dtype, generator=generator)
        g = as_columns(limit_state(u))
        finite = jnp.all(jnp.isfinite(g), axis=1)
        neg = (g < 0) & finite[:, None]
        return {
            "fail": jnp.sum(jnp.any(neg, axis=1), dtype=jnp.int32),
            "cols": jnp.sum(neg, axis=0, dtype=jnp.int32),
            "invalid": jnp.sum(~finite, dtype=jnp.int32),
        }

    return block


def _key_fingerprint(key: jax.Array) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return [int(x) for x in np.asarray(data).ravel()]


def _cov(k: int, n: int) -> float:
    """Coefficient of variation of p̂ = k/n: sqrt((1 − p̂)/(n p̂)); inf at k = 0."""
    if k == 0:
        return math.inf
    return math.sqrt((n - k) / (n * k))


def estimate_mc(
    limit_state: Callable[[jax.Array], jax.Array],
    *,
    dim: int,
    key: jax.Array,
    n: int = 1_000_000,
    chunk_blocks: int | None = None,
    target_cov: float | None = None,
    max_n: int | None = None,
    confidence: float = 0.95,
    dtype: Any = jnp.float32,
    progress: Callable[[int, int, int], None] | None = None,
    generator: str = "threefry",
    state: dict | None = None,
    devices=None,
) -> FailureResult:
    """Crude Monte Carlo estimate of Pf = P[min_k g_k(U) < 0], U ~ N(0, I_dim).

    Samples are streamed in blocks of :data:`~cpojax.rng.BLOCK` = 4096 rows; the
    sample count is rounded UP to whole blocks (``n_evals`` reports the count
    actually used). Failure of a sample means any column of ``g`` is < 0.

    * pf = n_fail / n, with an exact Clopper-Pearson interval at ``confidence``;
    * cov = sqrt((1 − pf) / (n·pf)) (inf at pf = 0);
    * fail_counts[k] = samples with column k < 0 (each column counted on its own,
      so they may sum to more than n_fail).

    Adaptive stopping: with ``target_cov`` the run stops at the first block
    boundary where cov ≤ target_cov, or at the sample budget (``max_n``, default
    ``n``). The stopping block is a deterministic function of (key, target_cov,
    budget), not of the chunk size. Stopping on the data makes pf slightly biased
    (of order pf·cov²); the interval is the fixed-n Clopper-Pearson one.

    Args:
      limit_state: ``g(u: f[m, dim]) -> f[m] | f[m, k]``, jnp-traceable, row-wise
        (row r of the output depends on row r of u only); g ≥ 0 is a pass.
      dim: number of standard-normal inputs, ≥ 1.
      key: ``jax.random`` key of the run.
      n: samples, ≥ 1 (rounded up to a multiple of 4096). With ``target_cov`` it is
        the budget when ``max_n`` is None.
      chunk_blocks: blocks per jitted call, ≥ 1 (default: about 32 MiB of normals,
        at most 128 blocks). Affects speed and memory, never results.
      target_cov: optional target coefficient of variation, in (0, 1).
      max_n: sample budget for adaptive runs, ≥ 1 (rounded up to whole blocks).
      confidence: two-sided level of ``ci``, in (0, 1).
      dtype: float dtype of u (float32 or float64).
      progress: optional ``progress(n_done, n_total, n_fail)`` called on the host
        after each chunk.
      generator: normals generator, "threefry" (reference) or "hash" (faster on the
        CPU; see :mod:`cpojax.rng`).
      state: the ``state`` of an earlier result (same key, dim, dtype, generator,
        limit state); the run continues from it up to ``n`` (or the adaptive
        budget) with bit-identical results to an uninterrupted run.
      devices: shard each chunk's blocks over this many (or these) devices; the
        result is bit-identical for any device count (see :func:`stream_counts`).

    Returns:
      A :class:`FailureResult` (method "mc") whose ``state`` (a small JSON-friendly
      dict) resumes the run. ``diagnostics`` holds ``wilson`` (Wilson interval),
      ``samples_per_s`` (this call's samples over its wall time, compile
      included), ``chunk_blocks``, ``block``, ``generator``, ``target_reached``.

    Raises:
      ValueError: bad argument (message names it and the allowed range).
      InvalidModelOutput: the limit state returned NaN or inf; the run stops at the
        end of the first block containing such a sample, and the error (attribute
        ``n_invalid``) gives the count among the samples evaluated.
    """
    dim = check_int("dim", dim, 1)
    n = check_int("n", n, 1)
    if max_n is not None:
        max_n = check_int("max_n", max_n, 1)
    if chunk_blocks is not None:
        chunk_blocks = check_int("chunk_blocks", chunk_blocks, 1)
    if not (isinstance(confidence, float | int) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if target_cov is not None and not (
        isinstance(target_cov, float | int) and 0.0 < target_cov < 1.0
    ):
        raise ValueError(f"target_cov must be in (0, 1) or None, got {target_cov!r}")
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype.name}")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable or None")

    k = check_limit_state(limit_state, dim, dtype)
    budget = max_n if (target_cov is not None and max_n is not None) else n
    n_blocks = -(-budget // BLOCK)
    n_total = n_blocks * BLOCK
    if chunk_blocks is None:
        per_block = BLOCK * dim * dtype.itemsize
        chunk_blocks = max(1, min(_MAX_DEFAULT_CHUNK_BLOCKS, _CHUNK_BYTES // per_block))
        chunk_blocks = min(chunk_blocks, n_blocks)

    fingerprint = _key_fingerprint(key)
    start_block, init = 0, None
    if state is not None:
        try:
            start_block = int(state["next_block"])
            init = {
                "fail": np.int64(state["n_fail"]),
                "cols": np.asarray(state["fail_counts"], np.int64),
                "invalid": np.int64(state["n_invalid"]),
            }
            meta = (state["dim"], state["dtype"], state["generator"], state["key"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"state is not a state returned by estimate_mc: {e}") from e
        if meta != (dim, dtype.name, generator, fingerprint):
            raise ValueError(
                "state was made with another (dim, dtype, generator, key): "
                f"{meta[:3]} vs {(dim, dtype.name, generator)}"
            )
        if init["cols"].shape != (k,):
            raise ValueError(f"state has {init['cols'].shape} fail_counts, limit_state has {k}")
        if start_block > n_blocks:
            raise ValueError(
                f"n={budget} is below the {start_block * BLOCK} samples already in state"
            )
        if init["invalid"] > 0:
            raise ValueError("state records invalid model output; it cannot be resumed")

    def stop(blocks_done: np.ndarray, t: dict) -> np.ndarray:
        flags = t["invalid"] > 0
        if target_cov is not None:
            # cov <= c  <=>  (m - k) <= c² m k  (m samples, k failures; k = 0 never stops)
            m = (blocks_done * BLOCK).astype(np.float64)
            kf = t["fail"].astype(np.float64)
            flags = flags | ((kf > 0) & (m - kf <= target_cov**2 * m * kf))
        return flags

    def report(blocks_done: int, t: dict) -> None:
        progress(blocks_done * BLOCK, n_total, int(t["fail"]))

    fn = _mc_block_fn(limit_state, dim, dtype, generator)
    t0 = time.perf_counter()
    totals, next_block = stream_counts(
        fn,
        key=key,
        n_blocks=n_blocks,
        chunk_blocks=chunk_blocks,
        start_block=start_block,
        init=init,
        progress=None if progress is None else report,
        stop=stop,
        devices=devices,
    )
    wall = time.perf_counter() - t0

    n_done = next_block * BLOCK
    n_fail = int(totals["fail"])
    n_invalid = int(totals["invalid"])
    if n_invalid:
        raise InvalidModelOutput(
            f"limit_state returned NaN or inf for {n_invalid} of the {n_done} samples "
            f"evaluated (blocks {start_block}..{next_block - 1}; the run stops at the "
            "first block containing invalid output). Fix the model's domain or clip "
            "its inputs; invalid samples are never counted as pass or fail.",
            n_invalid=n_invalid,
        )
    if n_done == 0:  # only reachable when resuming a finished state at n_blocks == 0
        raise ValueError("no samples evaluated")

    pf = n_fail / n_done
    cov = _cov(n_fail, n_done)
    target_reached = None
    if target_cov is not None:  # same test as the stopping rule, to avoid rounding mismatch
        target_reached = n_fail > 0 and n_done - n_fail <= target_cov**2 * n_done * n_fail
    new_samples = (next_block - start_block) * BLOCK
    diagnostics = {
        "wilson": wilson(n_fail, n_done, confidence),
        "samples_per_s": new_samples / wall if wall > 0 else math.inf,
        "wall_s": wall,
        "chunk_blocks": chunk_blocks,
        "block": BLOCK,
        "generator": generator,
        "confidence": confidence,
        "n_requested": budget,
        "target_cov": target_cov,
        "target_reached": target_reached,
    }
    new_state = {
        "next_block": next_block,
        "n_fail": n_fail,
        "fail_counts": [int(c) for c in totals["cols"]],
        "n_invalid": 0,
        "dim": dim,
        "dtype": dtype.name,
        "generator": generator,
        "key": fingerprint,
        "block": BLOCK,
    }
    return FailureResult(
        pf=pf,
        ci=clopper_pearson(n_fail, n_done, confidence),
        cov=cov,
        n_evals=n_done,
        method="mc",
        reliable=True if target_reached is None else bool(target_reached),
        n_fail=n_fail,
        fail_counts=tuple(int(c) for c in totals["cols"]),
        n_invalid=0,
        diagnostics=diagnostics,
        state=new_state,
    )
