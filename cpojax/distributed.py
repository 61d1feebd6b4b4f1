"""Several processes, one run: ``jax.distributed`` set-up and the few helpers a sweep needs.

JAX is the distributed engine: every process runs the same program (multi-controller
JAX), ``jax.devices()`` then lists the devices of every process, and a jitted
function over a mesh of those devices runs its collectives across hosts (NCCL on
GPUs, gloo on CPUs). cpojax only has to start it, before any other JAX call:

* ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES``
  and ``JAX_PROCESS_ID`` — the plain, launcher-independent way (any launcher, or
  two shells on one machine: ``127.0.0.1:12345``);
* SLURM (``srun``: one task per GPU), Open MPI (``mpirun``) — detected by JAX's own
  cluster detection, which also gives each process its local GPU.

Auto-detection starts ``jax.distributed`` only when such an environment names more
than one process, so a plain ``cpojax sweep`` (or a one-task ``srun``) stays a
single process. Process 0 is the main process: it alone writes output folders and
prints; every process computes its share and receives every result.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = [
    "DistributedError",
    "broadcast",
    "describe",
    "detect",
    "initialize",
    "is_main",
    "is_multi",
]


class DistributedError(ValueError):
    """``jax.distributed`` could not be started (bad or missing environment, no coordinator)."""


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"{name} must be an integer, got {raw!r}") from None


def detect() -> str | None:
    """The multi-process environment this process runs in, or None for a single process.

    Returns:
      ``"jax"`` (``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` > 1),
      ``"slurm"`` (inside an ``srun`` step of more than one task), ``"ompi"``
      (``mpirun`` of more than one rank), or None.
    """
    n = _env_int("JAX_NUM_PROCESSES")
    if os.environ.get("JAX_COORDINATOR_ADDRESS") and n is not None and n > 1:
        return "jax"
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID")
    if all(v in os.environ for v in slurm) and (_env_int("SLURM_NTASKS") or 1) > 1:
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in os.environ and (_env_int("OMPI_COMM_WORLD_SIZE") or 1) > 1:
        return "ompi"
    return None


def initialize(
    enable: bool | None = None,
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_s: int = 300,
) -> str | None:
    """Start ``jax.distributed`` if asked or detected; call before any other JAX use.

    Args:
      enable: None — start only when :func:`detect` finds a multi-process
        environment; True — start (explicit arguments, the ``JAX_*`` variables or
        JAX's cluster detection must say how); False — never.
      coordinator_address, num_processes, process_id: explicit settings (override
        ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``).
      timeout_s: how long to wait for every process to connect.

    Returns:
      How it was started (``"jax"``, ``"slurm"``, ``"ompi"``, ``"explicit"``,
      ``"already"``) or None for a single process.

    Raises:
      DistributedError: asked to start without a usable environment, or the
        coordinator could not be reached.
    """
    if enable is False:
        return None
    if jax.distributed.is_initialized():
        return "already"
    how = detect()
    if enable is None and how is None:
        return None
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None:
        num_processes = _env_int("JAX_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("JAX_PROCESS_ID")
    explicit = coordinator_address is not None and num_processes is not None
    if explicit and process_id is None:
        raise DistributedError(
            "JAX_COORDINATOR_ADDRESS and JAX_NUM_PROCESSES are set but JAX_PROCESS_ID is not: "
            "give every process its id (0 … n − 1)"
        )
    if how is None and not explicit and enable:
        raise DistributedError(
            "--distributed: no multi-process environment found; launch with srun (SLURM) or "
            "mpirun, or set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES=n and "
            "JAX_PROCESS_ID=i in every process"
        )
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=int(timeout_s),
        )
    except (RuntimeError, ValueError, TypeError) as e:
        raise DistributedError(f"jax.distributed.initialize failed: {e}") from None
    return how or "explicit"


def is_multi() -> bool:
    """Whether this run has several processes."""
    return jax.process_count() > 1


def is_main() -> bool:
    """Whether this is process 0 (the one that writes files and prints)."""
    return jax.process_index() == 0


def broadcast(x: Any) -> np.ndarray:
    """Process 0's value of a numpy array on every process (identity for one process)."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x
    return np.asarray(multihost_utils.broadcast_one_to_all(x))


def describe(devices=None) -> dict[str, Any]:
    """Processes and devices of this run, for output records."""
    devs = list(jax.devices()) if devices is None else list(devices)
    return {
        "process_count": jax.process_count(),
        "platform": devs[0].platform if devs else None,
        "device_kind": devs[0].device_kind if devs else None,
        "n_devices": len(devs),
        "devices": [str(d) for d in devs],
    }
