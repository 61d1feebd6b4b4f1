"""Physical models of one CPO lane: pure, keyword-only, elementwise jnp functions.

Modules: :mod:`coupling` (fiber-to-chip mode overlap, Fresnel), :mod:`laser`
(L–I curve, wavelength drift), :mod:`ring` (micro-ring modulator and heater
lock), :mod:`receiver` (noise, BER, sensitivity) and :mod:`link` (one lane,
TX engine → fiber plant → RX engine, at every operating corner).
"""

from cpojax.physics import (
    coupling,
    fiber_array,
    functional,
    laser,
    link,
    receiver,
    ring,
    thermal,
    units,
)

__all__ = [
    "coupling",
    "fiber_array",
    "functional",
    "laser",
    "link",
    "receiver",
    "ring",
    "thermal",
    "units",
]
