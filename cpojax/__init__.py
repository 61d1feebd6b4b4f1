"""cpojax: co-packaged optics link and manufacturing-yield simulation in JAX.

The flat public API (``import cpojax``):

* scenario: :class:`Scenario`, :class:`ScenarioError`;
* the nominal link: :func:`nominal_budget` → :class:`LinkBudget`;
* yield: :func:`estimate_yield` (streamed Monte Carlo) → :class:`YieldResult`,
  :func:`estimate_yield_rare` (FORM / IS / subset / auto) → :class:`RareYieldResult`,
  :func:`sweep` (N-D grids compiled once) → :class:`SweepTable` and
  :func:`yield_curve` (one key), every level a
  :class:`LevelYield` ``(value, lo, hi)``;
* what to change: :func:`sensitivity` → :class:`Sensitivity`, :func:`optimize_process`
  → :class:`ProcessOptResult`;
* runs as the CLI does them: :func:`run_yield` (``cpojax yield --out``),
  :func:`enable_compile_cache`;
* the seam between photonics and estimators: :func:`limit_state`,
  :data:`LIMIT_STATES`;
* errors: :class:`ScenarioError` (bad scenario value), :class:`OutputError` (output
  folder or checkpoint), :class:`InvalidModelOutput` (the model returned NaN/inf).

Namespaces: :mod:`cpojax.physics` (pure lane models), :mod:`cpojax.cost` (cost per
good switch, breakeven), :mod:`cpojax.distributed` (multi-host), :mod:`cpojax.estimators`
(generic, photonics-free estimators on ``g(u)``), :mod:`cpojax.optimize` (the generic
reach-a-target-yield optimizer).
"""

from cpojax import cost, distributed, estimators, optimize, physics
from cpojax.budget import LinkBudget, nominal_budget
from cpojax.estimators import FailureResult, InvalidModelOutput
from cpojax.levels import LevelYield
from cpojax.model import LIMIT_STATES, limit_state
from cpojax.outputs import OutputError, enable_compile_cache, run_yield
from cpojax.process_opt import ProcessOptResult, optimize_process
from cpojax.rare_yield import RareYieldResult, estimate_yield_rare
from cpojax.scenario import Scenario, ScenarioError
from cpojax.sensitivity import Sensitivity, sensitivity
from cpojax.sweep import SweepTable, sweep, yield_curve
from cpojax.yields import YieldResult, estimate_yield

__version__ = "0.1.0"

__all__ = [
    "LIMIT_STATES",
    "FailureResult",
    "InvalidModelOutput",
    "LevelYield",
    "LinkBudget",
    "OutputError",
    "ProcessOptResult",
    "RareYieldResult",
    "Scenario",
    "ScenarioError",
    "Sensitivity",
    "SweepTable",
    "YieldResult",
    "cost",
    "distributed",
    "enable_compile_cache",
    "estimate_yield",
    "estimate_yield_rare",
    "estimators",
    "limit_state",
    "nominal_budget",
    "optimize",
    "optimize_process",
    "physics",
    "run_yield",
    "sensitivity",
    "sweep",
    "yield_curve",
]
