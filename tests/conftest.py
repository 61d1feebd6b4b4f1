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

#: The longest test files (minutes, not seconds: notebooks executed in their own kernels,
#: the kernel in interpret mode, end-to-end optimizer and rare-event runs). Collected
#: first, so that under ``pytest -n 2 --dist loadfile`` (the CI command) they start at
#: once instead of forming the tail of the run; the order of the rest is unchanged.
_LONG_FILES = (
    "test_notebooks.py",
    "test_kernels.py",
    "test_reliability.py",
    "test_process_opt.py",
    "test_photonic_rare.py",
    "test_model.py",
    "test_properties.py",
    "test_photonic_optimize.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(_LONG_FILES)))
