"""Fused JAX Pallas kernels, installed as ``cpojax.kernels``.

None yet: the jnp path (``cpojax.physics`` + ``cpojax.rng``) is the reference and
the only implementation. A kernel added here must match it and take its gradient
from it through ``custom_vjp`` (docs/model.md#kernels).
"""
