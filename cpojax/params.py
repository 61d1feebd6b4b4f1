"""Deprecated location: dotted-key access now lives in :mod:`cpojax.scenario.keys`."""

from cpojax.scenario.keys import get_values, numeric_keys, value_range, with_values

__all__ = ["get_values", "numeric_keys", "value_range", "with_values"]
