"""`Scenario`: the root of the parameter table with its methods.

Each method is a thin front to the module that does the work: `keys` (dotted
access), `codec` (dict/TOML with validation and the cross-field check) and
:mod:`cpojax.fileio` (atomic save).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cpojax.fileio import atomic_write_text
from cpojax.scenario import codec, keys
from cpojax.scenario.table import ScenarioTable, pytree_dataclass

__all__ = ["Scenario"]


@pytree_dataclass()
class Scenario(ScenarioTable):
    """A complete simulation scenario; `Scenario.default()` is the 1.6T engine of physics.md.

    Fields (see :class:`cpojax.scenario.table.ScenarioTable`): ``system`` (architecture,
    static), ``design`` (every nominal value), ``spread`` (process spreads),
    ``correlation`` (static), ``window`` (operating temperatures), ``limits`` (pass
    criteria). A frozen dataclass and a JAX pytree: static fields are tree metadata,
    every other number is a leaf.
    """

    @classmethod
    def default(cls) -> Scenario:
        """The embedded default: 8 × 200G PAM4 MRM engine, ELS 1:4, edge couplers, 72/switch."""
        return cls()

    # ---- dotted access ---------------------------------------------------
    def get(self, key: str) -> Any:
        """Value at a dotted path, e.g. ``design.ring.bias_nm`` or ``spread.fiber_offset_um.die``."""
        return keys.get_value(self, key)

    def replace(self, updates: Mapping[str, Any]) -> Scenario:
        """New scenario with dotted-path values replaced, validated like a file.

        Values may be Python, NumPy or JAX scalars (0-d arrays too); they are stored as
        Python float/int/bool/str.
        """
        return type(self).from_dict(keys.set_dotted(self.to_dict(), updates))

    # ---- dict / TOML -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain-Python dict of every value (loads back with :meth:`from_dict`)."""
        return codec.to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Scenario | None = None) -> Scenario:
        """Build from a (possibly partial) nested dict on top of `base` (default scenario).

        Raises:
          ScenarioError: unknown key, wrong type, NaN/inf, value out of range, or an
            inconsistent combination; the message names the dotted key and the range.
        """
        return codec.from_dict(cls, data, base=base)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Scenario:
        """Parse TOML text (any subset of keys) on top of the default scenario."""
        return codec.from_toml(cls, text, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Scenario:
        """Load a TOML file (any subset of keys; the rest from the default)."""
        return codec.load(cls, path)

    def to_toml(self, *, comments: bool = True) -> str:
        """Full TOML text with a comment per key (description, unit, allowed range, source)."""
        return codec.to_toml(self, comments=comments)

    def save(self, path: str | os.PathLike) -> None:
        """Write the full TOML atomically (temporary file + rename)."""
        atomic_write_text(path, self.to_toml())

    # ---- consistency -----------------------------------------------------
    def check(self) -> None:
        """Cross-field checks that single-field ranges cannot express."""
        codec.check(self)

    def corners(self) -> tuple[tuple[float, float], ...]:
        """Operating corners (engine °C, laser °C): the four corners of the window."""
        w = self.window
        return tuple(
            (te, tl)
            for te in (w.engine_temp_min_c, w.engine_temp_max_c)
            for tl in (w.laser_temp_min_c, w.laser_temp_max_c)
        )
