"""The ``implementation=`` switch (no Pallas import: cheap for every caller)."""

from __future__ import annotations

import jax

__all__ = ["AUTO_PALLAS_BACKENDS", "IMPLEMENTATIONS", "pallas_supported", "resolve_implementation"]

#: Values of ``implementation=`` (None = automatic).
IMPLEMENTATIONS: tuple[str, ...] = ("xla", "pallas", "pallas-interpret")


#: Backends on which ``implementation=None`` picks the compiled kernel. Empty until the
#: kernel has been validated and measured faster than XLA on a real device
#: (``benchmarks/gpu_check.sh``; docs/kernels.md): the kernel lowers to Triton on this
#: CPU, but it has never run on a GPU, so automatic choice stays on the tested XLA path.
#: Add ``"gpu"`` here once RESULTS.md shows it agreeing with XLA and at least as fast.
AUTO_PALLAS_BACKENDS: frozenset[str] = frozenset()


def pallas_supported(backend: str | None = None) -> bool:
    """Whether the compiled (non-interpret) kernel can run on ``backend`` (default: JAX's
    default backend): GPUs (Triton lowering). On the CPU only interpret mode runs."""
    return (backend or jax.default_backend()) == "gpu"


def resolve_implementation(implementation: str | None, *, generator: str = "counter") -> str:
    """The implementation a call runs: ``"xla"``, ``"pallas"`` or ``"pallas-interpret"``.

    ``None`` (automatic) picks ``"pallas"`` where the compiled kernel is supported, the
    backend is in :data:`AUTO_PALLAS_BACKENDS` (validated and measured faster there) and
    the run uses the ``"counter"`` generator, the only stream the kernel draws; ``"xla"``
    elsewhere (on the CPU interpret mode is far slower than XLA). Today that set is
    empty: automatic choice is always XLA; ask for ``"pallas"`` explicitly.

    Raises:
      ValueError: an unknown value, or a Pallas implementation with another generator.
    """
    if implementation is None:
        backend = jax.default_backend()
        auto = pallas_supported(backend) and backend in AUTO_PALLAS_BACKENDS
        return "pallas" if auto and generator == "counter" else "xla"
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be None or one of {IMPLEMENTATIONS}, got {implementation!r}"
        )
    if implementation != "xla" and generator != "counter":
        raise ValueError(
            f"implementation={implementation!r} draws the 'counter' random stream in-kernel: "
            f"pass generator='counter' (got generator={generator!r})"
        )
    return implementation
