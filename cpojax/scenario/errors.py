"""The one exception of the scenario package."""

from __future__ import annotations

__all__ = ["ScenarioError"]


class ScenarioError(ValueError):
    """A scenario value or file is invalid; the message names the key and the allowed range."""
