"""Scenario: what is built (design), how it varies (spreads), where it runs (window),
and what counts as a pass (limits). TOML load/save with strict validation.

Modules: `table` (the parameter table: one frozen pytree dataclass per section, each
field with its unit, range, description and source), `codec` (dict/TOML with
validation), `keys` (dotted keys, also inside traced code), `core` (`Scenario`).
"""

from cpojax.scenario.core import Scenario
from cpojax.scenario.errors import ScenarioError
from cpojax.scenario.keys import (
    get_values,
    iter_params,
    numeric_keys,
    param_keys,
    value_range,
    with_values,
)
from cpojax.scenario.table import (
    MULTI_COMPONENT_SPREADS,
    PER_LASER_SPREADS,
    Channel,
    Correlations,
    Cost,
    Coupler,
    Design,
    Laser,
    Limits,
    Power,
    Receiver,
    Ring,
    Spread,
    Spreads,
    System,
    Window,
)

__all__ = [
    "MULTI_COMPONENT_SPREADS",
    "PER_LASER_SPREADS",
    "Channel",
    "Correlations",
    "Cost",
    "Coupler",
    "Design",
    "Laser",
    "Limits",
    "Power",
    "Receiver",
    "Ring",
    "Scenario",
    "ScenarioError",
    "Spread",
    "Spreads",
    "System",
    "Window",
    "get_values",
    "iter_params",
    "numeric_keys",
    "param_keys",
    "value_range",
    "with_values",
]
