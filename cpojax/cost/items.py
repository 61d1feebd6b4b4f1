"""Process cost items: what moving one scenario value away from today's costs, per engine.

The optimizer's objective today (:func:`cpojax.process_opt.optimize_process`). Pure
functions of numbers (Python floats, NumPy scalars or traced jnp scalars), so the
optimizer differentiates through them.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["COST_KINDS", "DEFAULT_COSTS", "check_cost_table", "item_cost"]

#: The kinds of process cost item (units: US$ per engine):
#:
#: * ``"inverse"``: ``c·v₀/v`` — for a spread σ: ``c`` is what holding today's
#:   spread v₀ costs, and halving the spread doubles it (tighter lithography,
#:   active instead of passive fiber alignment, wavelength binning of lasers);
#: * ``"linear"``: ``c·(v − v₀)`` per unit above today's value (more heater power
#:   needs bigger drivers and more energy; more laser current, more ELS power);
#: * ``"free"``: 0 whatever the value (the ring's design bias is a mask offset).
COST_KINDS: tuple[str, ...] = ("inverse", "linear", "free")

#: Default cost items, dotted scenario key → (kind, coefficient c in US$ per
#: engine). Rough engineering estimates [E], meant to be replaced by a fab's own
#: numbers (``costs=`` of :func:`cpojax.process_opt.optimize_process`). Array roll at
#: 3 $ (active roll alignment of the fiber array), an ELS power class at 15 $ per dB per
#: engine (≈ 10 % of a 650 $ laser module shared by 4 engines), the ring's coupling
#: gap free (a mask value, like the bias) [E].
DEFAULT_COSTS: dict[str, tuple[str, float]] = {
    "spread.ring_resonance_nm.wafer": ("inverse", 4.0),
    "spread.ring_resonance_nm.die": ("inverse", 4.0),
    "spread.ring_resonance_nm.lane": ("inverse", 2.0),
    "spread.fiber_offset_um.die": ("inverse", 3.0),
    "spread.fiber_offset_um.lane": ("inverse", 3.0),
    "spread.laser_wavelength_nm.wafer": ("inverse", 1.0),
    "spread.laser_wavelength_nm.lane": ("inverse", 1.0),
    "spread.laser_power_db.lane": ("inverse", 1.0),
    "spread.coupler_loss_db.lane": ("inverse", 1.0),
    "spread.ring_coupling_ln.die": ("inverse", 1.0),
    "spread.ring_coupling_ln.lane": ("inverse", 1.0),
    "spread.mod_efficiency_ln.lane": ("inverse", 1.0),
    "spread.heater_efficiency_ln.die": ("inverse", 1.0),
    "spread.heater_efficiency_ln.lane": ("inverse", 1.0),
    "spread.fiber_array_roll_mrad.die": ("inverse", 3.0),
    "spread.fiber_array_yaw_mrad.die": ("inverse", 1.0),
    "spread.fiber_gap_um.die": ("inverse", 1.0),
    "spread.heater_resistance_ln.die": ("inverse", 1.0),
    "spread.heater_resistance_ln.lane": ("inverse", 1.0),
    "spread.tx_penalty_db.lane": ("inverse", 1.0),
    "design.ring.heater_max_mw": ("linear", 0.08),
    "design.els.power_class_dbm": ("linear", 15.0),
    "design.laser.current_ma": ("linear", 0.02),
    "design.ring.drive_vpp": ("linear", 2.0),
    "design.ring.bias_nm": ("free", 0.0),
    "design.ring.power_coupling": ("free", 0.0),
}


def item_cost(kind: str, c: float, v: Any, v0: float) -> Any:
    """Cost of one process item at value ``v`` (today's value ``v0``), US$ per engine.

    Args:
      kind: one of :data:`COST_KINDS`.
      c: coefficient, US$ per engine ("inverse": the cost at v = v0; "linear": per
        unit of the value above v0; ignored for "free").
      v: the value (Python float or traced jnp scalar); > 0 for "inverse".
      v0: today's value; > 0 for "inverse".

    Returns:
      ``c·v0/v`` ("inverse"), ``c·(v − v0)`` ("linear") or ``0·v`` ("free", a zero
      of v's type so that it stays differentiable).

    Raises:
      ValueError: an unknown kind.
    """
    if kind == "inverse":
        return c * v0 / v
    if kind == "linear":
        return c * (v - v0)
    if kind == "free":
        return 0.0 * v
    raise ValueError(f"cost kind must be one of {COST_KINDS}, got {kind!r}")


def check_cost_table(table: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """A cost table ``key → (kind, coefficient)`` checked entry by entry.

    Raises:
      ValueError: an entry that is not a (kind, number) pair, or an unknown kind;
        the message names the key.
    """
    out = {}
    for key, item in table.items():
        try:
            kind, c = item
        except (TypeError, ValueError):
            raise ValueError(
                f"cost item for {key} must be a pair (kind, coefficient), got {item!r}"
            ) from None
        if kind not in COST_KINDS:
            raise ValueError(f"cost kind for {key} must be inverse, linear or free, got {kind!r}")
        if isinstance(c, bool) or not isinstance(c, numbers.Real):
            raise ValueError(f"cost coefficient for {key} must be a number, got {c!r}")
        # Python numbers stay as given (they are written to JSON); NumPy ones → float.
        out[key] = (kind, c if type(c) in (int, float) else float(c))
    return out
