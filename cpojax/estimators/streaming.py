"""The streaming loop shared by every Monte Carlo count in cpojax.

:func:`stream_counts` walks blocks of :data:`cpojax.rng.BLOCK` samples in chunks
of ``chunk_blocks`` blocks; each chunk is one call of a cached, jitted function
that ``vmap``s a per-block function ``fn(key, block_index, *args) -> pytree of
integer counts`` over the chunk's blocks. Per-block counts come back to the host
and are summed there into numpy int64, so counts never overflow (a block holds
at most BLOCK samples, far below 2**31) and the sum is exact and independent of
chunking. Only these small counters are carried; device memory is one chunk
whatever the number of samples.

Users: crude Monte Carlo of a generic limit state (:mod:`cpojax.estimators.mc`),
the photonic yield engine (:mod:`cpojax.yields`), sweeps (:mod:`cpojax.sweep`)
and the optimizer's verification.

Work that is not one sum over blocks — a sweep keeps separate counts for every
(grid point, block) pair — uses :func:`map_items`: one jitted call maps a
per-item function over the items of a chunk (:func:`map_blocks`, one compiled shape per
item) sharded over a device mesh that may span several processes
(``jax.distributed``), and returns every item's counts to every process; the
caller accumulates them.

Reproducibility: block b always draws from ``fold_in(key, b)`` (see
:mod:`cpojax.rng`), and every stopping decision is taken at a block boundary from
the exact per-block counts, so totals are bit-identical for every ``chunk_blocks``,
for a run interrupted and resumed from its totals, and for any device count.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cpojax.rng import BLOCK

__all__ = [
    "BLOCK",
    "MAX_CHUNK_BLOCKS",
    "check_int",
    "device_list",
    "fetch_items",
    "item_mesh",
    "map_blocks",
    "map_items",
    "stream_counts",
]

#: A per-chunk sum of per-block counts must fit in int32 on the device side.
MAX_CHUNK_BLOCKS = 2**31 // BLOCK - 1


def map_blocks(f: Callable[[Any], Any], items: Any, stop) -> Any:
    """``[f(item) for item in items]`` stacked, compiled so that ``f`` sees one shape.

    A ``while_loop`` whose trip count ``stop`` is a runtime value walks the items:
    XLA can then neither unroll the loop nor hoist the body out of it, so ``f`` is
    compiled the same way whatever the number of items — with ``lax.map`` (or
    ``vmap``) a single item is special-cased (the loop disappears and the body is
    fused with its surroundings), which moves float results by an ulp and can flip a
    histogram bin. The items are padded to at least two for the same reason.

    Args:
      f: per-item function.
      items: pytree whose leaves have a leading item axis of length n.
      stop: int32 scalar (traced), the number of items to evaluate (= n).

    Returns:
      Pytree of stacked outputs with leading axis n.
    """
    n = jax.tree.leaves(items)[0].shape[0]
    if n < 2:
        items = jax.tree.map(lambda a: jnp.concatenate([a, a]), items)
    rows = max(n, 2)
    first = jax.tree.map(lambda a: a[0], items)
    shapes = jax.eval_shape(f, first)
    bufs = jax.tree.map(lambda sd: jnp.zeros((rows, *sd.shape), sd.dtype), shapes)

    def body(carry):
        i, b = carry
        out = f(jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, False), items))
        b = jax.tree.map(lambda a, x: jax.lax.dynamic_update_index_in_dim(a, x, i, 0), b, out)
        return i + 1, b

    _, bufs = jax.lax.while_loop(lambda c: c[0] < stop, body, (jnp.int32(0), bufs))
    return jax.tree.map(lambda a: a[:n], bufs)


@functools.lru_cache(maxsize=128)
def _chunk_function(fn: Callable, chunk_blocks: int, mesh=None) -> Callable:
    """Jitted ``(key, block_indices, args) -> per-block counts [chunk_blocks, ...]``.

    The blocks of a chunk are walked by :func:`map_blocks`, not ``vmap``: the
    per-block function is then compiled for exactly one shape (one block) and the
    same way, whatever the chunk size or the number of devices. XLA:CPU vectorises
    batches of different sizes differently, which moves float results by an ulp;
    with one compiled body every per-sample float — and every count, histogram and
    fixed-point sum derived from it — is bit-identical for any chunking. With a
    mesh the blocks are split over its devices by ``shard_map`` and each device
    walks its own blocks.

    Cached on (fn, chunk_blocks, mesh) so that a given per-block function is
    compiled once per chunk size (jit's own cache then keys on argument types).
    """

    def chunk(key, idx, args, stop):
        return map_blocks(lambda b: fn(key, b, *args), idx, stop)

    if mesh is None:
        local = chunk_blocks
        jitted = jax.jit(chunk)
    else:
        P = jax.sharding.PartitionSpec
        local = chunk_blocks // mesh.size
        jitted = jax.jit(
            jax.shard_map(
                chunk,
                mesh=mesh,
                in_specs=(P(), P("blocks"), P(), P()),
                out_specs=P("blocks"),
                check_vma=False,
            )
        )

    def call(key, idx, args):
        return jitted(key, idx, args, jnp.int32(local))

    call._cache_size = jitted._cache_size  # recompilation guards count the jitted traces
    call.lower = lambda key, idx, args: jitted.lower(key, idx, args, jnp.int32(local))
    return call


def _placement(devices):
    """(mesh, block-index sharding, replicated sharding) over `devices`, or Nones."""
    if devices is None:
        return None, None, None
    if isinstance(devices, bool) or isinstance(devices, str):
        raise ValueError(
            f"devices must be None, a device count >= 1 or a list of jax devices, got {devices!r}"
        )
    if isinstance(devices, int | np.integer):
        n = int(devices)
        if n < 1:
            raise ValueError(f"devices must be a device count >= 1, got {n}")
        if n > len(jax.devices()):
            raise ValueError(f"devices={n} but only {len(jax.devices())} devices are available")
        devs = list(jax.devices()[:n])
    else:
        try:
            devs = list(devices)
        except TypeError:
            raise ValueError(
                f"devices must be None, a device count >= 1 or a list of jax devices, "
                f"got {devices!r}"
            ) from None
        if not devs or not all(isinstance(d, jax.Device) for d in devs):
            raise ValueError(f"devices must list at least one jax device, got {devices!r}")
    mesh = jax.sharding.Mesh(np.asarray(devs), ("blocks",))
    P = jax.sharding.PartitionSpec
    return (
        mesh,
        jax.sharding.NamedSharding(mesh, P("blocks")),
        jax.sharding.NamedSharding(mesh, P()),
    )


def check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    return int(value)


def stream_counts(
    fn: Callable[[jax.Array, jax.Array], Any],
    *,
    key: jax.Array,
    n_blocks: int,
    chunk_blocks: int,
    start_block: int = 0,
    init: Any = None,
    progress: Callable[[int, Any], None] | None = None,
    stop: Callable[[int, Any], bool] | None = None,
    args: tuple = (),
    devices=None,
) -> tuple[Any, int]:
    """Sum integer counts ``fn(key, b)`` over blocks ``b = start_block … n_blocks − 1``.

    Blocks are evaluated ``chunk_blocks`` at a time by one cached jitted call; the
    next chunk is dispatched before the previous one's counts are read back, so the
    host summation overlaps device work. The last chunk may run past ``n_blocks``;
    the surplus blocks are computed and discarded (never counted), which keeps a
    single compiled shape per chunk size.

    Args:
      fn: ``fn(key, block_index: uint32 scalar) -> pytree of integer arrays``, the
        counts of one block (traceable; ``vmap``-ed over the blocks of a chunk).
        Values must be ≤ 2**31 − 1 per block.
      key: the run's root ``jax.random`` key, passed unchanged to ``fn``.
      n_blocks: total number of blocks of the run (end index, exclusive), ≥ 0.
      chunk_blocks: blocks per jitted call, in [1, 2**31 // BLOCK − 1]. Changes
        speed and memory only, never the result.
      start_block: first block to evaluate (resume point), 0 ≤ start_block ≤ n_blocks.
      init: pytree of counts already accumulated before ``start_block`` (same
        structure as ``fn``'s output), or None for zeros.
      progress: optional ``progress(blocks_done, totals)`` called on the host after
        each chunk, ``blocks_done`` counting from block 0.
      stop: optional vectorised stopping rule, called once per chunk as
        ``stop(blocks_done: int64[m], totals) -> bool[m]`` where ``totals`` holds,
        for each of the chunk's m blocks, the exact running totals after that block
        (each leaf gains a leading axis m). The run ends after the first block whose
        entry is True, so the stopping point does not depend on chunking.
      args: extra pytree arguments passed as ``fn(key, b, *args)``; they are traced
        (not baked into the compiled code), so a module-level ``fn`` is compiled
        once and reused for every value of ``args`` with the same structure.
      devices: None (default device), a device count, or a list of devices: the
        blocks of each chunk are sharded across them (``chunk_blocks`` must be a
        multiple of the device count). Block b still draws from ``fold_in(key, b)``,
        so the totals are bit-identical for any number of devices.

    Returns:
      ``(totals, next_block)``: totals as a pytree of numpy int64 arrays (structure
      of ``fn``'s output) and the index of the first block not counted. Passing
      these back as ``init`` / ``start_block`` continues the run bit-identically.
    """
    n_blocks = check_int("n_blocks", n_blocks, 0)
    start_block = check_int("start_block", start_block, 0)
    chunk_blocks = check_int("chunk_blocks", chunk_blocks, 1)
    if chunk_blocks > MAX_CHUNK_BLOCKS:
        raise ValueError(f"chunk_blocks must be <= {MAX_CHUNK_BLOCKS}, got {chunk_blocks}")
    if start_block > n_blocks:
        raise ValueError(f"start_block must be in [0, n_blocks={n_blocks}], got {start_block}")
    if n_blocks >= 2**32:
        raise ValueError(f"n_blocks must be < 2**32 (uint32 block index), got {n_blocks}")

    mesh, block_sharding, replicated = _placement(devices)
    chunk_fn = _chunk_function(fn, chunk_blocks, mesh)
    if mesh is not None:
        n_dev = mesh.size
        if chunk_blocks % n_dev:
            raise ValueError(
                f"chunk_blocks ({chunk_blocks}) must be a multiple of the device count ({n_dev})"
            )
        key = jax.device_put(key, replicated)
        args = jax.device_put(args, replicated)

    def chunk(key, start, args):
        idx = np.arange(start, start + chunk_blocks, dtype=np.uint32)
        idx = (
            jax.device_put(idx, block_sharding) if block_sharding is not None else jnp.asarray(idx)
        )
        return chunk_fn(key, idx, args)

    done = start_block
    pending = chunk(key, done, args) if done < n_blocks else None
    if init is not None:
        totals = jax.tree.map(lambda a: np.asarray(a, np.int64).copy(), init)
    elif pending is None:
        shapes = jax.eval_shape(lambda k, b: fn(k, b, *args), key, jnp.uint32(0))
        totals = jax.tree.map(lambda s: np.zeros(s.shape, np.int64), shapes)
    else:
        # Zeros shaped like the first chunk's per-block counts: no second trace of `fn`
        # (jax.eval_shape retraces the whole block function on every call, ≈ 0.3-0.6 s
        # for the photonic yield block).
        totals = None
    while pending is not None:
        this_start = done
        next_start = this_start + chunk_blocks
        # Dispatch the next chunk first (async), then read this one back.
        nxt = chunk(key, next_start, args) if next_start < n_blocks else None
        per_block = jax.tree.map(lambda a: np.asarray(a, np.int64), jax.device_get(pending))
        if totals is None:
            totals = jax.tree.map(lambda a: np.zeros(a.shape[1:], np.int64), per_block)
        n_use = min(chunk_blocks, n_blocks - this_start)
        per_block = jax.tree.map(lambda a, n=n_use: a[:n], per_block)
        stopped = False
        if stop is None:
            totals = jax.tree.map(lambda t, a: t + a.sum(axis=0), totals, per_block)
            done = this_start + n_use
        else:
            running = jax.tree.map(lambda t, a: t + np.cumsum(a, axis=0), totals, per_block)
            blocks_done = np.arange(this_start + 1, this_start + n_use + 1, dtype=np.int64)
            flags = np.asarray(stop(blocks_done, running), dtype=bool).reshape(-1)
            if flags.shape != (n_use,):
                raise ValueError(f"stop must return bool[{n_use}], got shape {flags.shape}")
            i = int(np.argmax(flags)) if flags.any() else n_use - 1
            stopped = bool(flags.any())
            totals = jax.tree.map(lambda r, i=i: r[i].copy(), running)
            done = this_start + i + 1
        if progress is not None:
            progress(done, totals)
        pending = None if stopped else nxt
    return totals, done


# --------------------------------------------------------------------------- per-item maps
def device_list(devices=None) -> list:
    """The devices a per-item map runs on: all of them (every process's) by default.

    Args:
      devices: None (every device of every process), a device count n (the first n
        of ``jax.devices()``; one process only) or a list of jax devices.
    """
    if devices is None:
        return list(jax.devices())
    mesh, _, _ = _placement(devices)
    return list(mesh.devices.ravel())


def item_mesh(devices) -> jax.sharding.Mesh:
    """A one-axis (``"blocks"``) mesh over `devices` (a list from :func:`device_list`)."""
    return jax.sharding.Mesh(np.asarray(devices), ("blocks",))


@functools.lru_cache(maxsize=64)
def _items_function(fn: Callable, mesh) -> Callable:
    """Jitted ``(key, items, args) -> per-item outputs``, replicated on every device.

    Each device walks its share of the items with :func:`map_blocks` (``fn`` is compiled
    for exactly one item, whatever the chunk or the device count, so every float is
    bit-identical for any split); the per-item outputs are then all-gathered, so
    every process of a multi-process mesh can read all of them locally.
    """
    P = jax.sharding.PartitionSpec

    def local(key, items, args, stop):
        out = map_blocks(lambda it: fn(key, it, *args), items, stop)
        return jax.tree.map(lambda a: jax.lax.all_gather(a, "blocks", tiled=True), out)

    jitted = jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(P(), P("blocks"), P(), P()),
            out_specs=P(),
            check_vma=False,
        )
    )

    def call(key, items, args):
        n = jax.tree.leaves(items)[0].shape[0] // mesh.size
        return jitted(key, items, args, jnp.int32(n))

    call._cache_size = jitted._cache_size  # recompilation guards count the jitted traces
    call.lower = lambda key, items, args: jitted.lower(
        key, items, args, jnp.int32(jax.tree.leaves(items)[0].shape[0] // mesh.size)
    )
    return call


def _global(x, sharding):
    """A (possibly multi-process) global array from host data every process holds."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def map_items(
    fn: Callable[..., Any],
    *,
    key: jax.Array,
    items: Any,
    mesh: jax.sharding.Mesh,
    args: tuple = (),
) -> Any:
    """Dispatch ``fn(key, item, *args)`` for every item of a chunk (asynchronously).

    Args:
      fn: per-item function returning a pytree of integer arrays (traceable).
      key: the run's root key (replicated).
      items: pytree of host (numpy) arrays with a common leading axis C, a multiple
        of ``mesh.size``; every process must pass the same items.
      mesh: from :func:`item_mesh`; may span several processes.
      args: pytree of extra arguments, traced and replicated.

    Returns:
      The per-item outputs (leading axis C) as replicated jax arrays; read them with
      :func:`fetch_items`. Dispatch returns at once, so the caller can queue the next
      chunk before reading this one.
    """
    n = {int(np.shape(a)[0]) for a in jax.tree.leaves(items)}
    if len(n) != 1 or next(iter(n)) % mesh.size:
        raise ValueError(
            f"items must share a leading axis that is a multiple of the device count "
            f"({mesh.size}), got leading axes {sorted(n)}"
        )
    P = jax.sharding.PartitionSpec
    sharded = jax.sharding.NamedSharding(mesh, P("blocks"))
    replicated = jax.sharding.NamedSharding(mesh, P())
    items = jax.tree.map(lambda a: _global(a, sharded), items)
    if jax.process_count() == 1:
        key = jax.device_put(key, replicated)
        args = jax.device_put(args, replicated)
    return _items_function(fn, mesh)(key, items, args)


def fetch_items(out: Any) -> Any:
    """Host numpy int64 copies of :func:`map_items`' outputs (blocks until ready)."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0), np.int64), out)
