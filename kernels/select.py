"""The ``implementation=`` switch (no Pallas import: cheap for every caller)."""

from __future__ import annotations

import jax

__all__ = ["IMPLEMENTATIONS", "pallas_supported", "resolve_implementation"]

#: Values of ``implementation=`` (None = automatic).
IMPLEMENTATIONS: tuple[str, ...] = ("xla", "pallas", "pallas-interpret")


def pallas_supported(backend: str | None = None) -> bool:
    """Whether the compiled (non-interpret) kernel can run on ``backend`` (default: JAX's
    default backend): GPUs (Triton lowering). On the CPU only interpret mode runs."""
    return (backend or jax.default_backend()) == "gpu"


def resolve_implementation(implementation: str | None, *, generator: str = "counter") -> str:
    """The implementation a call runs: ``"xla"``, ``"pallas"`` or ``"pallas-interpret"``.

    ``None`` (automatic) picks ``"pallas"`` where the compiled kernel is supported
    (a GPU backend) and the run uses the ``"counter"`` generator, the only stream the
    kernel draws; ``"xla"`` elsewhere (on the CPU interpret mode is far slower than XLA).

    Raises:
      ValueError: an unknown value, or a Pallas implementation with another generator.
    """
    if implementation is None:
        return "pallas" if pallas_supported() and generator == "counter" else "xla"
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
