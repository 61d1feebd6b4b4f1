"""One result shape for a yield with its interval, used by every analysis.

A yield at lane, engine or switch level is a :class:`LevelYield` ``(value, lo, hi)``
— a NamedTuple, so ``y, lo, hi = res.engine`` unpacks it and ``res.engine.lo`` is
the lower bound by name. Its JSON form is ``{"yield": value, "ci": [lo, hi]}``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = ["LEVELS", "LevelYield", "switch_from_engine"]

#: The levels of the manufacturing hierarchy, in order.
LEVELS = ("lane", "engine", "switch")


class LevelYield(NamedTuple):
    """A yield and its two-sided 95 % interval ``[lo, hi]`` (lo <= value <= hi)."""

    value: float
    lo: float
    hi: float

    @classmethod
    def from_failure(cls, pf: float, ci: tuple[float, float]) -> LevelYield:
        """Yield 1 − pf with the interval of the failure probability turned over."""
        lo, hi = ci
        return cls(1.0 - pf, max(0.0, 1.0 - hi), min(1.0, 1.0 - lo))

    @classmethod
    def nan(cls) -> LevelYield:
        """A level that was not estimated."""
        return cls(math.nan, math.nan, math.nan)

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def to_dict(self) -> dict[str, Any]:
        """``{"yield": value, "ci": [lo, hi]}`` (the JSON form of every level)."""
        return {"yield": self.value, "ci": [self.lo, self.hi]}


def switch_from_engine(engine: LevelYield, engines_per_switch: int) -> LevelYield:
    """Switch yield y^N with the engine interval mapped through the same power.

    A monotone map of an exact interval keeps its coverage, so the switch interval
    is exact whenever the engine interval is and the N engines of a switch are
    independent draws from the population (engines of many wafers). Engines of one
    wafer would be positively correlated and the true switch yield higher
    (E[y_w^N] >= E[y_w]^N); that assembly flow is not covered.
    """
    n = engines_per_switch
    return LevelYield(engine.value**n, engine.lo**n, engine.hi**n)
