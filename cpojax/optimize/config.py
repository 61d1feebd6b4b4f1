"""How the optimiser runs: one frozen, validated configuration object.

:class:`YieldOptConfig` holds every knob of :func:`~cpojax.optimize.reach_yield`
and :func:`~cpojax.optimize.make_yield_step` that is not part of the problem
itself (the limit state, the start point, the cost, the target, the key and the
free parameters). It is checked on construction, so a bad value fails on the
host with the field's name before anything is traced; ``dataclasses.replace``
(or :meth:`YieldOptConfig.replace`) checks again.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

__all__ = ["METHODS", "MULTIPLIERS", "YieldOptConfig"]

#: Gradient estimators for the Gaussian case (see ``failure_grad``).
METHODS = ("lr", "smooth", "both")
#: Multiplier rules (see :mod:`cpojax.optimize.constraint`).
MULTIPLIERS = ("ls", "dual")
_COMBINES = ("product", "softmin")


def _scalar(value: Any) -> Any:
    """A 0-d NumPy/JAX array as a NumPy scalar; anything else unchanged."""
    if isinstance(value, np.ndarray | jax.Array) and value.shape == ():
        return np.asarray(value)[()]
    return value


def _int(name: str, value: Any, lo: int) -> int:
    """A Python int >= lo from a Python/NumPy/JAX integer, else ValueError naming it."""
    value = _scalar(value)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    return int(value)


def _real(name: str, value: Any, lo: float, hi: float, left: str, right: str, text: str):
    """A real in the interval ``left lo, hi right`` ("(" or "[", ")" or "]"), else ValueError.

    Python ints and floats pass unchanged (they enter traced code weakly typed, as
    before); NumPy/JAX scalars become Python floats.
    """
    value = _scalar(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if ok:
        v = float(value)
        ok = (
            not math.isnan(v)
            and (v > lo if left == "(" else v >= lo)
            and (v < hi if right == ")" else v <= hi)
        )
    if not ok:
        raise ValueError(f"{name} must be {text}, got {value!r}")
    return value if type(value) in (int, float) else float(value)


@dataclasses.dataclass(frozen=True)
class YieldOptConfig:
    """Settings of the yield-constrained optimiser (problem-independent).

    Attributes:
      optimizer: optax transformation acting on the unconstrained parameters
        (mean, log std, design); None: Adam with a cosine-decayed step
        0.05 → 0.001 over ``steps``.
      steps: number of optimiser steps, >= 1.
      n_per_step: samples per step, >= 2 (a multiple of 8 unless method is "lr").
      sampler: optional ``sampler(key, params, n) -> x: f[n, dim]`` replacing
        x = mean + std·u (e.g. hierarchical wafer/die/lane sampling). Gradients
        then come from the pathwise smoothed estimator through the sampler
        (reparameterisation) with no importance sampling, so keep
        (1 − Y_t)·n_per_step ≳ 10.
      method: estimator for the Gaussian case, "lr", "smooth" or "both" (see
        :func:`cpojax.estimators.failure_grad`).
      tau: temperature(s) of the smoothed indicator (scalar or f[k], > 0), or None
        for ``tau_rel``·std(g_k).
      tau_rel: relative temperature of the automatic choice, > 0.
      combine: "product" or "softmin", how smoothed columns are combined.
      penalty: augmented-Lagrangian penalty ρ > 0 on the normalised cost scale.
      multiplier: "ls" (least-squares estimate, default) or "dual" (first-order
        update); see :mod:`cpojax.optimize.constraint`.
      multiplier_ema: averaging weight of the "ls" estimate, in (0, 1].
      dual_lr: multiplier step η >= 0 for "dual" (None: ρ/10).
      importance: carry a cross-entropy-adapted shifted proposal (Gaussian case).
      defensive: weight of the target in the defensive IS mixture, in [0, 1).
      bounds: optional ``{"mean": (lo, hi), "std": (lo, hi)}`` box bounds (scalars
        or f[dim]), enforced by projection after each update.
      verify_chunk: samples per jitted call of the built-in verification (memory
        bound only; the count does not depend on it).
    """

    optimizer: optax.GradientTransformation | None = None
    steps: int = 300
    n_per_step: int = 4096
    sampler: Callable | None = None
    method: str = "both"
    tau: Any = None
    tau_rel: float = 0.05
    combine: str = "product"
    penalty: float = 10.0
    multiplier: str = "ls"
    multiplier_ema: float = 0.2
    dual_lr: float | None = None
    importance: bool = True
    defensive: float = 0.1
    bounds: dict | None = None
    verify_chunk: int = 2**18

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("steps", _int("steps", self.steps, 1))
        put("n_per_step", _int("n_per_step", self.n_per_step, 2))
        put("verify_chunk", _int("verify_chunk", self.verify_chunk, 1))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.combine not in _COMBINES:
            raise ValueError(f"combine must be one of {_COMBINES}, got {self.combine!r}")
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be 'ls' or 'dual', got {self.multiplier!r}")
        inf = math.inf
        put("tau_rel", _real("tau_rel", self.tau_rel, 0.0, inf, "(", ")", "a positive float"))
        put("penalty", _real("penalty", self.penalty, 0.0, inf, "(", ")", "> 0"))
        put(
            "multiplier_ema",
            _real("multiplier_ema", self.multiplier_ema, 0.0, 1.0, "(", "]", "in (0, 1]"),
        )
        if self.dual_lr is not None:
            put("dual_lr", _real("dual_lr", self.dual_lr, 0.0, inf, "[", ")", ">= 0"))
        put("defensive", _real("defensive", self.defensive, 0.0, 1.0, "[", ")", "in [0, 1)"))
        if not isinstance(self.importance, bool | np.bool_):
            raise ValueError(f"importance must be a bool, got {self.importance!r}")
        put("importance", bool(self.importance))
        if self.tau is not None:
            tau_np = np.asarray(self.tau, dtype=float)
            if tau_np.ndim > 1 or not np.all(tau_np > 0) or not np.all(np.isfinite(tau_np)):
                raise ValueError(f"tau must be a positive finite scalar or f[k], got {self.tau!r}")
        if self.optimizer is not None and not (
            callable(getattr(self.optimizer, "init", None))
            and callable(getattr(self.optimizer, "update", None))
        ):
            raise ValueError(
                f"optimizer must be an optax GradientTransformation (init, update) or None, "
                f"got {self.optimizer!r}"
            )
        if self.sampler is not None and not callable(self.sampler):
            raise ValueError(f"sampler must be callable or None, got {self.sampler!r}")
        if self.bounds is not None and not isinstance(self.bounds, dict):
            raise ValueError(f"bounds must be None or a dict, got {self.bounds!r}")

    def replace(self, **changes: Any) -> YieldOptConfig:
        """A copy with some fields changed (checked again); unknown names → TypeError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            allowed = ", ".join(f.name for f in dataclasses.fields(self))
            raise TypeError(f"unknown optimiser setting(s) {unknown}; allowed: {allowed}")
        return dataclasses.replace(self, **changes)

    def eta(self) -> float:
        """Multiplier step of the "dual" rule (``dual_lr``, default ρ/10)."""
        return float(0.1 * self.penalty if self.dual_lr is None else self.dual_lr)
