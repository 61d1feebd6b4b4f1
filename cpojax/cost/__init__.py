"""Cost models: what a process target costs, and what a good switch costs (docs/cost.md).

Modules:

* :mod:`.items` — **process cost items** (used by
  :func:`cpojax.process_opt.optimize_process`): the cost of moving one scenario value
  away from today's, per engine. This is the optimizer's objective today.
* :mod:`.flow` — **cost per good switch**, closed form: the manufacturing flow of a
  CPO switch — known-good-engine (KGE) test with imperfect coverage, attach yield,
  switch test, then rework (replace the engine, a geometric number of attempts) or
  scrap — and a pluggable switch, each as pure, differentiable functions of the
  engine yield and the scenario's ``[cost]`` section
  (:class:`cpojax.scenario.table.Cost`); energy over the service life (TCO); the
  breakeven engine yield.
* :mod:`.simulate` — a switch-by-switch Monte Carlo of the same flow (a cross-check
  of the closed forms).
* :mod:`.inputs` — what the cost takes from the yield engine and the physics: the
  engine yield (parametric × functional factors when the yield engine reports them)
  and the engine's electrical power.
* :mod:`.report` — from a scenario to the breakeven report:
  :func:`analyse_breakeven`, the Python side of ``cpojax breakeven``.

The functions of :mod:`.items` and :mod:`.flow` are pure functions of numbers (Python
floats, NumPy scalars or traced jnp scalars), so the optimizer differentiates through
them.
"""

from cpojax.cost.flow import (
    FAILURE_POLICIES,
    HOURS_PER_YEAR,
    Breakeven,
    CpoFlow,
    attached_good_rate,
    breakeven_engine_yield,
    cpo_capex_usd,
    cpo_flow,
    cpo_tco_usd,
    energy_usd,
    escape_rate,
    kge_pass_rate,
    pluggable_capex_usd,
    pluggable_tco_usd,
    usd_per_yield_point,
)
from cpojax.cost.inputs import EnginePower, cost_engine_yield, engine_power_w, functional_factor
from cpojax.cost.items import COST_KINDS, DEFAULT_COSTS, check_cost_table, item_cost
from cpojax.cost.report import BreakevenResult, analyse_breakeven, assumptions, cost_curves
from cpojax.cost.simulate import FlowMC, simulate_flow

__all__ = [
    "COST_KINDS",
    "DEFAULT_COSTS",
    "FAILURE_POLICIES",
    "HOURS_PER_YEAR",
    "Breakeven",
    "BreakevenResult",
    "CpoFlow",
    "EnginePower",
    "FlowMC",
    "analyse_breakeven",
    "assumptions",
    "attached_good_rate",
    "breakeven_engine_yield",
    "check_cost_table",
    "cost_curves",
    "cost_engine_yield",
    "cpo_capex_usd",
    "cpo_flow",
    "cpo_tco_usd",
    "energy_usd",
    "engine_power_w",
    "escape_rate",
    "functional_factor",
    "item_cost",
    "kge_pass_rate",
    "pluggable_capex_usd",
    "pluggable_tco_usd",
    "simulate_flow",
    "usd_per_yield_point",
]
