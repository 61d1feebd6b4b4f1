"""Physical models of one CPO lane: pure, keyword-only, elementwise jnp functions.

Modules: :mod:`coupling` (fiber-to-chip mode overlap, Fresnel), :mod:`laser`
(L–I curve, wavelength drift), :mod:`ring` (micro-ring modulator and heater
lock, self-heating, PAM4 levels, coupled-mode response), :mod:`receiver` (noise, BER,
sensitivity), :mod:`fiber_array` (fiber map, rigid-body lever arms), :mod:`thermal`
(heater crosstalk solve, on-die temperature map), :mod:`functional` (defect-limited and
assembly yield) and :mod:`link` (one lane, TX engine → fiber plant → RX engine, at every
operating corner, in two stages so engine-level effects act between them: :mod:`lane_front`,
then ``link.lane_back``; the data types in :mod:`lane_types`; the ring's small-signal response
in :mod:`ring_response`).
"""

from cpojax.physics import (
    coupling,
    fiber_array,
    functional,
    lane_front,
    lane_types,
    laser,
    link,
    receiver,
    ring,
    ring_response,
    thermal,
    units,
)

__all__ = [
    "coupling",
    "fiber_array",
    "functional",
    "lane_front",
    "lane_types",
    "laser",
    "link",
    "receiver",
    "ring",
    "ring_response",
    "thermal",
    "units",
]
