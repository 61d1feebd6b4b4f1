"""Strict JAX settings for the whole test suite (docs/model.md#strict-tests).

* several CPU devices, so sharding / device-count invariance can be tested;
* float64 enabled so that gradient checks against finite differences can run in
  double precision (library code must still default to float32: tests that care
  pass explicit dtypes);
* dtype promotion "strict" and rank promotion "raise", so silent upcasts and
  accidental broadcasting are caught.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
