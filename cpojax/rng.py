"""Sample-indexed standard normals: the numbers of sample i never depend on chunking.

The rule (docs/model.md#sample-indexed-random-numbers): the normals of sample ``i`` are row ``i % BLOCK``
of the block drawn from ``jax.random.fold_in(key, i // BLOCK)``. A block is a fixed
number of rows (:data:`BLOCK`), so any loop that walks whole blocks, in chunks of any
size and on any number of devices, sees bit-identical numbers for every sample.
Chunk numbers are never folded into the key.

Two generators are offered behind ``generator=``:

* ``"threefry"`` (default): ``jax.random.normal`` on the folded key, i.e. JAX's
  threefry2x32 bits turned into normals by ``erf_inv``. The reference.
* ``"hash"``: a counter-based hash with a Box-Muller transform, several times
  cheaper on the CPU (threefry and ``erf_inv`` dominate a naive Monte Carlo there).
  Each block still takes its seed from ``fold_in(key, block)`` (two threefry words
  per block); inside the block, uniform number ``j`` is
  ``fmix32(fmix32(j ^ s0) ^ s1)`` with murmur3's 32-bit finaliser ``fmix32``
  (Appleby, MurmurHash3), a keyed bijection of the counter. The top 24 bits give a
  uniform in (0, 1) at resolution 2⁻²⁴, and each pair (u1, u2) gives two normals
  r·cos θ, r·sin θ with r = sqrt(−2 ln u1), θ = 2π·u2 (Box & Muller 1958).
  Because u1 ≥ 2⁻²⁵, the radius is capped at sqrt(50 ln 2) ≈ 5.89, i.e. the 2-D
  tail beyond that radius (probability exp(−5.89²/2) ≈ 3e-8) is missing: use
  ``"threefry"`` for failure probabilities below about 1e-7. Not cryptographic;
  the tests check moments, a Kolmogorov-Smirnov statistic, tail frequencies and
  correlations between neighbouring columns and rows.

* ``"counter"``: a counter-based stream built only from uint32 arithmetic, so that a
  fused kernel can draw exactly the same numbers in-kernel (:mod:`cpojax.kernels`).
  The 64-bit counter (block b, element j) is hashed with Threefry-2x32-20 (Salmon,
  Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) under
  the run's root key (no per-block ``fold_in``); of each 32-bit output word the top
  bit is the sign and the other 31 bits give a tail probability
  q = (m + ½)·2⁻³² ∈ (1.2e-10, ½), and z = ±Φ⁻¹(q) (the inverse-CDF transform, no
  sin/cos). |z| reaches 6.33 (two-sided tail 2.4e-10 missing per column): fine for
  failure probabilities down to about 1e-8.

The threefry and hash generators compute in float32 and cast to ``dtype`` for the hash generator;
threefry draws directly in ``dtype``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

__all__ = [
    "BLOCK",
    "GENERATORS",
    "block_normals",
    "counter_normals",
    "normals",
    "normals_from_bits",
    "threefry2x32",
]

#: Rows (samples) per block. Fixed for the life of the project: changing it changes
#: every random number drawn, so every seeded result.
BLOCK: int = 4096

#: Names accepted by ``generator=``.
GENERATORS: tuple[str, ...] = ("threefry", "hash", "counter")

Generator = Literal["threefry", "hash", "counter"]


def _check(dim: int, generator: str) -> None:
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")


def _fmix32(h: jax.Array) -> jax.Array:
    """MurmurHash3 32-bit finaliser: a bijection on uint32 with full avalanche."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _hash_block(block_key: jax.Array, dim: int, dtype) -> jax.Array:
    """f[BLOCK, dim] normals from the counter hash + Box-Muller (see module doc)."""
    seed = jax.random.bits(block_key, (2,), jnp.uint32)
    s0, s1 = seed[0], seed[1]
    n_pairs = (dim + 1) // 2
    # Counter j runs over (row, pair, half) in row-major order; 2·BLOCK·n_pairs must
    # stay below 2**32, i.e. dim < 2**19, which _check's callers never approach.
    j = jnp.arange(2 * BLOCK * n_pairs, dtype=jnp.uint32).reshape(BLOCK, n_pairs, 2)
    h = _fmix32(_fmix32(j ^ s0) ^ s1)
    u = ((h >> 8).astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(2.0**-24)
    r = jnp.sqrt(jnp.float32(-2.0) * jnp.log(u[..., 0]))
    theta = jnp.float32(2.0 * np.pi) * u[..., 1]
    z = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=-1)
    return z.reshape(BLOCK, 2 * n_pairs)[:, :dim].astype(dtype)


_R = ((13, 15, 26, 6), (17, 29, 16, 24))  # Threefry-2x32 rotation constants
_PARITY = 0x1BD11BDA  # key-schedule parity constant C240


def _rotl(x, r: int):
    return (x << jnp.uint32(r)) | (x >> jnp.uint32(32 - r))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011): uint32 words in, two out.

    Only additions, rotations and xors of uint32 words, so it runs unchanged inside
    a Pallas kernel; bit-identical to ``jax.extend.random.threefry_2x32`` (tested).
    """
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(_PARITY))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _R[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def normals_from_bits(bits):
    """Standard normals from uint32 words: sign from the top bit, ±Φ⁻¹(q) from the rest."""
    m = (bits & jnp.uint32(0x7FFFFFFF)).astype(jnp.float32)
    q = (m + jnp.float32(0.5)) * jnp.float32(2.0**-32)
    z = -ndtri(q)
    return jnp.where((bits >> jnp.uint32(31)) == 1, -z, z)


def counter_normals(k0, k1, block_index, row0, rows: int, dim: int):
    """Normals of the "counter" generator: rows ``row0 … row0 + rows − 1`` of a block.

    Element (row r, column c) of block b uses the counter (b, 2·(r·P + c // 2)) with
    P = ⌈dim/2⌉ pairs per row; the two output words give columns 2p and 2p + 1.

    Args:
      k0, k1: the root key's two uint32 words.
      block_index: block b (uint32 scalar).
      row0: first row of the block to draw (a kernel tile draws its own rows).
      rows, dim: static sizes.

    Returns:
      f32[rows, dim].
    """
    n_pairs = (dim + 1) // 2
    pair = (jnp.asarray(row0, jnp.uint32) + jnp.arange(rows, dtype=jnp.uint32))[:, None] * (
        jnp.uint32(n_pairs)
    ) + jnp.arange(n_pairs, dtype=jnp.uint32)[None, :]
    b = jnp.broadcast_to(jnp.asarray(block_index, jnp.uint32), pair.shape)
    w0, w1 = threefry2x32(k0, k1, b, pair)
    z = jnp.stack([normals_from_bits(w0), normals_from_bits(w1)], axis=-1)
    return z.reshape(rows, 2 * n_pairs)[:, :dim]


def key_words(key: jax.Array):
    """The two uint32 words of a ``jax.random`` key (typed or raw)."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    data = jnp.asarray(data, jnp.uint32).reshape(-1)
    return data[0], data[1]


def block_normals(
    key: jax.Array,
    block_index,
    dim: int,
    dtype=jnp.float32,
    *,
    generator: Generator = "threefry",
) -> jax.Array:
    """Standard normals of block ``block_index``: samples ``block_index·BLOCK + r``.

    Args:
      key: a ``jax.random`` key (typed or raw uint32[2]); the run's root key.
      block_index: block number b ≥ 0 (int or traced integer scalar, < 2**32);
        row r of the result belongs to sample b·BLOCK + r.
      dim: columns (independent N(0, 1) variables per sample), ≥ 1.
      dtype: float dtype of the result.
      generator: "threefry" (reference, ``jax.random.normal``) or "hash"
        (counter hash + Box-Muller; see the module docstring for its limits).

    Returns:
      f[BLOCK, dim] array of independent standard normals.
    """
    _check(dim, generator)
    if generator == "counter":
        k0, k1 = key_words(key)
        return counter_normals(k0, k1, block_index, 0, BLOCK, dim).astype(dtype)
    block_key = jax.random.fold_in(key, jnp.asarray(block_index).astype(jnp.uint32))
    if generator == "threefry":
        return jax.random.normal(block_key, (BLOCK, dim), dtype)
    return _hash_block(block_key, dim, dtype)


def normals(
    key: jax.Array,
    start_block,
    n_blocks: int,
    dim: int,
    dtype=jnp.float32,
    *,
    generator: Generator = "threefry",
) -> jax.Array:
    """Normals of ``n_blocks`` consecutive blocks, i.e. samples
    ``start_block·BLOCK … (start_block + n_blocks)·BLOCK − 1``.

    Identical, row for row, to concatenating :func:`block_normals` for each block,
    so any split of a run into chunks of whole blocks draws the same numbers.

    Args:
      key: a ``jax.random`` key.
      start_block: first block index (int or traced integer scalar).
      n_blocks: number of blocks (static Python int ≥ 1).
      dim: columns per sample, ≥ 1.
      dtype: float dtype of the result.
      generator: see :func:`block_normals`.

    Returns:
      f[n_blocks·BLOCK, dim] standard normals.
    """
    _check(dim, generator)
    if not isinstance(n_blocks, int | np.integer) or n_blocks < 1:
        raise ValueError(f"n_blocks must be an int >= 1, got {n_blocks!r}")
    idx = jnp.asarray(start_block).astype(jnp.uint32) + jnp.arange(n_blocks, dtype=jnp.uint32)
    z = jax.vmap(lambda b: block_normals(key, b, dim, dtype, generator=generator))(idx)
    return z.reshape(n_blocks * BLOCK, dim)
