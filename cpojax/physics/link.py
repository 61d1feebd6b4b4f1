"""One CPO lane, TX engine → fiber plant → RX engine, at every operating corner.

The lane is judged as engines are screened at final test: its own transmit path
(laser share → laser-in coupler → splitter → micro-ring modulator → signal-out
coupler), a worst-case-allocated fiber plant, and its own receive path
(signal-in coupler → Ge PD + TIA), i.e. a loopback through the channel
allocation. Both ends therefore carry this engine's variation; in a deployed
link the far end is another engine drawn from the same population.

Four limit states, each continuous with g >= 0 meaning pass
(docs/model.md#limit-states):

=========  ============================================================  ======
name       g                                                             unit
=========  ============================================================  ======
optical    min over corners of OMA_rx − OMA_required                     dB
thermal    distance, in heater power, to the nearest edge of the lockable   mW
           range over the whole window (:func:`ring.lock_margin_nm`):
           heater runs out (red edge) or resonance crosses the lock point
           with the next order out of reach (blue edge); continuous
modulator  min over corners of dynamic ER − ER floor                     dB
power      budget − lane electrical power with the worst heater power    pJ/bit
           over the whole window, for the resonance order the lock uses
           (hitless: :func:`ring.chosen_order`; order hop:
           :func:`ring.window_worst_shift_nm`)
=========  ============================================================  ======
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cpojax.physics import ring, thermal
from cpojax.physics.lane_front import lane_front
from cpojax.physics.lane_types import G_MAX, LIMIT_STATES, Budget, Deviations, Front

__all__ = [
    "G_MAX",
    "LIMIT_STATES",
    "Budget",
    "Deviations",
    "Front",
    "lane_back",
    "lane_budget",
    "lane_front",
    "limit_states",
    "lock_order",
]


def lock_order(front: Front):
    """Resonance order k of the hitless lock of each lane (:func:`ring.chosen_order`) and the
    shift s − k·FSR each ring needs at every corner: (k[...], s_k[..., 4])."""
    s = front.shift_nm
    s_lo = jnp.min(s, axis=-1)
    if front.ext_lo_nm is not None:
        s_lo = s_lo - front.ext_lo_nm
    k = ring.chosen_order(s_min_nm=s_lo, fsr_nm=front.fsr_nm)
    return k, s - (k * front.fsr_nm)[..., None]


def lane_back(front: Front, *, system, limits, neighbour_shift_nm=None, dtype=None) -> Budget:
    """Stage 2 of the lane budget: thermal lock, heater and lane power, limit states.

    Args:
      front: :func:`lane_front`'s output.
      system, limits: the scenario's sections.
      neighbour_shift_nm: e[..., 4], the ring shift the neighbours' heaters supply
        (thermal crosstalk; None: none). The lane's own heater supplies s − e.
    """
    b = dict(front.budget)
    s_unwrapped = front.shift_nm
    neigh = jnp.zeros_like(s_unwrapped)
    if neighbour_shift_nm is not None:
        neigh = jnp.broadcast_to(neighbour_shift_nm, s_unwrapped.shape)
        s_unwrapped = s_unwrapped - neigh
    s_min, s_max = jnp.min(s_unwrapped, axis=-1), jnp.max(s_unwrapped, axis=-1)
    fsr = front.fsr_nm
    eta = front.eta_nm_per_mw
    p_max = front.heater_max_mw
    legacy = front.arc_nm is None and front.ext_lo_nm is None
    hop = limits.allow_order_hop
    s_min, s_max, arc, lock_nm, red = ring.window_lock(
        s_min_nm=s_min,
        s_max_nm=s_max,
        fsr_nm=fsr,
        range_nm=p_max * eta,
        arc_nm=front.arc_nm,
        ext_lo_nm=front.ext_lo_nm,
        ext_hi_nm=front.ext_hi_nm,
        allow_order_hop=hop,
    )
    lock_mw = lock_nm / eta
    fsr_c, eta_c = fsr[..., None], eta[..., None]
    if hop:
        # The lock may re-acquire another order inside the window: each corner uses
        # its own order, and some temperature inside a window that crosses an order
        # boundary needs a full FSR.
        shift = jnp.mod(s_unwrapped, fsr_c)
        hi = s_max if legacy else s_max + arc
        worst_shift = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=hi, fsr_nm=fsr)
    else:
        # Hitless: the one order the lock margin accepts, at every corner (spec laser: the
        # bluest compliant laser; the worst compliant laser for the worst case).
        order = ring.chosen_order(s_min_nm=s_min, fsr_nm=fsr)
        shift = s_unwrapped - order[..., None] * fsr_c
        if legacy:
            worst_shift = s_max - order * fsr
        else:
            x_worst = ring.window_worst_shift_nm(s_min_nm=s_min, s_max_nm=s_min + arc, fsr_nm=fsr)
            worst_shift = x_worst + (s_max - s_min)
    heater_mw = ring.heater_power_mw(shift_nm=shift, efficiency_nm_per_mw=eta_c)
    heater_worst = ring.heater_power_mw(shift_nm=worst_shift, efficiency_nm_per_mw=eta)

    # --- electrical power -----------------------------------------------------
    share, fixed_mw = front.laser_share_mw, front.fixed_mw
    p_max_c = p_max[..., None] if jnp.ndim(p_max) else p_max
    lane_mw = share + jnp.minimum(heater_mw, p_max_c) + fixed_mw
    share_worst = jnp.max(share, axis=-1) if jnp.ndim(share) else share
    worst_lane_mw = share_worst + jnp.minimum(heater_worst, p_max) + fixed_mw
    pj = lane_mw / system.lane_rate_gbps

    g = jnp.stack(
        [
            b.pop("margin_min_db"),
            lock_mw,
            b.pop("er_min_db"),
            limits.power_budget_pj_per_bit - worst_lane_mw / system.lane_rate_gbps,
        ],
        axis=-1,
    )
    # An overflow (±inf) at an extreme but valid input is a certain fail (or pass):
    # clamped to ±G_MAX so it is counted as such; NaN (a hole in the model) stays NaN.
    g = jnp.clip(g, -G_MAX, G_MAX)
    shape = s_unwrapped.shape[:-1]
    return Budget(
        **b,
        heater_shift_nm=shift,
        heater_mw=heater_mw,
        lane_power_mw=lane_mw,
        pj_per_bit=pj,
        heater_worst_mw=jnp.broadcast_to(heater_worst, shape),
        g=g,
        neighbour_shift_nm=neigh,
        heater_max_mw=jnp.broadcast_to(p_max, shape),
        thermal_red=red,
    )


def lane_budget(
    *, design, dev: Deviations | None = None, system, window, limits, dtype=None
) -> Budget:
    """Evaluate the lane budget and the four limit states (see module docstring).

    A lane on its own (no engine around it): the centre of the ring row (ξ = 0 of the
    on-die temperature map) and, with ``system.thermal_coupling``, neighbours identical
    to it (:func:`cpojax.physics.thermal.uniform_neighbour_shift_nm`). The engine model
    (:func:`cpojax.model.engine_g`) solves the crosstalk of the real neighbours.

    Args:
      design: :class:`cpojax.scenario.Design` (scalar leaves; vmap for grids).
      dev: :class:`Deviations` (scalars or arrays of one broadcastable shape S);
        None = nominal lane.
      system, window, limits: the scenario's sections.
      dtype: float dtype of the computation; default float32 unless an input
        array is float64.

    Returns:
      :class:`Budget` with per-corner fields of shape S + (4,), lane fields of
      shape S and ``g`` of shape S + (4,) (the four limit states).
    """
    front = lane_front(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    )
    neigh = None
    if system.thermal_coupling:
        _, s_k = lock_order(front)
        dt = front.shift_nm.dtype
        neigh = thermal.uniform_neighbour_shift_nm(
            shift_nm=s_k,
            c1=jnp.asarray(design.thermal.crosstalk_nn, dt),
            c2=jnp.asarray(design.thermal.crosstalk_nnn, dt),
        )
    lim = jax.tree_util.tree_map(lambda x: jnp.asarray(x, front.shift_nm.dtype), limits)
    return lane_back(front, system=system, limits=lim, neighbour_shift_nm=neigh)


def limit_states(*, design, dev: Deviations | None = None, system, window, limits, dtype=None):
    """Only the limit states g[..., 4] (see :func:`lane_budget`); XLA prunes the rest."""
    return lane_budget(
        design=design, dev=dev, system=system, window=window, limits=limits, dtype=dtype
    ).g
