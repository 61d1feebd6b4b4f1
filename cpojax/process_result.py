"""The result of :func:`cpojax.process_opt.optimize_process` (both objectives)."""

from __future__ import annotations

import dataclasses
from typing import Any

from cpojax.cost import item_cost
from cpojax.levels import LevelYield
from cpojax.scenario import Scenario

__all__ = ["ProcessOptResult", "cost_rows"]


@dataclasses.dataclass(frozen=True)
class ProcessOptResult:
    """Before/after of every free value, costs, verified yield and the trajectory.

    Attributes:
      level: "lane", "engine" or "switch".
      target_yield: the requested yield at ``level``.
      scenario: the optimized scenario (validated, saveable).
      rows: per free key: key, before, after, cost_kind, coef, cost_before,
        cost_after (US$ per engine).
      cost_before, cost_after: sums over the rows.
      verification: verified yield at ``level`` with its 95 % interval (crude Monte
        Carlo on a seed the optimizer never saw; lanes: clustering-corrected).
      n_verify: lanes or engines of the verification.
      history: per-step optimizer trajectory (lists; see ``YieldOptResult.history``;
        objective "cost-per-good-switch": ``yield``, ``pf_se``,
        ``cost_per_good_switch``, ``process_usd``).
      n_compiles: traces of the optimizer step (1: compiled once).
      objective: "yield" or "cost-per-good-switch".
      switch_cost: objective "cost-per-good-switch" only (else None): the verified
        cost per good switch before and after, each with its engine yield and the
        intervals the engine-yield interval maps to, and ``lowered`` (the upper
        bound after is below the lower bound before).
    """

    level: str
    target_yield: float
    scenario: Scenario
    rows: list[dict[str, Any]]
    cost_before: float
    cost_after: float
    verification: LevelYield
    n_verify: int
    history: dict[str, list]
    n_compiles: int
    objective: str = "yield"
    switch_cost: dict[str, Any] | None = None

    @property
    def reached(self) -> bool:
        """Objective "yield": the lower 95 % bound of the verified yield reaches the
        target. Objective "cost-per-good-switch": the verified cost per good switch
        is lower than the starting one (upper bound after < lower bound before)."""
        if self.objective != "yield":
            return bool(self.switch_cost and self.switch_cost["lowered"])
        return self.verification.lo >= self.target_yield

    @property
    def verified(self) -> bool:
        """Same as :attr:`reached` (the earlier name; the JSON key ``verified``)."""
        return self.reached

    @property
    def verified_yield(self) -> float:
        """``verification.value`` (the earlier name; the JSON key)."""
        return self.verification.value

    @property
    def verified_ci(self) -> tuple[float, float]:
        """``verification.ci`` (the earlier name; the JSON key)."""
        return self.verification.ci

    def to_dict(self) -> dict[str, Any]:
        if self.objective != "yield":
            return {
                "objective": self.objective,
                "level": self.level,
                "target_yield": None,
                "rows": self.rows,
                "cost_before": self.cost_before,
                "cost_after": self.cost_after,
                "verified_yield": self.verification.value,
                "verified_ci": list(self.verification.ci),
                "verified": self.reached,
                "n_verify": self.n_verify,
                "cost_per_good_switch": self.switch_cost,
                "n_compiles": self.n_compiles,
                "history": self.history,
            }
        return {
            "level": self.level,
            "target_yield": self.target_yield,
            "rows": self.rows,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "verified_yield": self.verification.value,
            "verified_ci": list(self.verification.ci),
            "verified": self.reached,
            "n_verify": self.n_verify,
            "n_compiles": self.n_compiles,
            "history": self.history,
        }


def cost_rows(
    free: list[str], table: dict[str, tuple[str, float]], v0: dict[str, float], after
) -> list[dict[str, Any]]:
    """The result's ``rows``: per free key its value before and after and the cost of its
    item (US$ per engine, :func:`cpojax.cost.item_cost`) before and after."""
    rows = []
    for k in free:
        kind, c = table[k]
        rows.append(
            {
                "key": k,
                "before": v0[k],
                "after": after[k],
                "cost_kind": kind,
                "coef": c,
                "cost_before": float(item_cost(kind, c, v0[k], v0[k])),
                "cost_after": float(item_cost(kind, c, after[k], v0[k])),
            }
        )
    return rows
