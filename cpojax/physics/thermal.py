"""Engine-level thermal coupling: heater-to-heater crosstalk and the on-die temperature map.

**Crosstalk.** The rings of an engine sit in one row in lane order. A heater dissipating
P_j shifts its own ring by η_j·P_j and ring i by c_|i−j|·η_j·P_j (c₁ nearest, c₂
next-nearest neighbour: the fraction of the heater's ring shift that the conducted heat
produces one and two pitches away; a linear superposition of the steady-state heat
equation's Green's functions, Incropera & DeWitt, *Fundamentals of Heat and Mass
Transfer*, §3–4; measured ring-to-ring thermal crosstalk is a few to ≈ 15 % at 20–100 µm
pitch without trenches, e.g. Padmaraju & Bergman, Nanophotonics 3, 269 (2014)). With
q_j = η_j·P_j the shift each heater delivers to its own ring, locking every ring at once
needs

    (I + C)·q = s,     C_ij = c₁ (|i − j| = 1), c₂ (|i − j| = 2), 0 otherwise,

per engine and operating corner, s the shifts the rings need (each at its lock order).
The neighbours then supply e = s − q = C·q: less heater power, but a ring whose
neighbours overheat it may need negative power (a blue-edge failure). C is a symmetric
banded Toeplitz matrix; with the bounds of the scenario (c₁ <= 0.24, c₂ <= 0.12) it is
strictly diagonally dominant, ‖C‖∞ <= 0.72 < 1, so I + C is positive definite and the
Neumann series converges. docs/model.md#thermal-crosstalk.

**Temperature map.** Lanes do not share one engine temperature: the side nearer the
switch ASIC runs hotter, more so under load. Lane i of L sits at ξ_i = (i − (L − 1)/2)/(L − 1)
∈ [−½, ½] and runs at T_E + G·ξ_i·(T_E − T_E,min)/(T_E,max − T_E,min), G the last-minus-first
lane difference at the top of the window [E] (docs/model.md#on-die-temperature-map).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = [
    "DENSE_MAX_LANES",
    "coupled_shifts_nm",
    "coupling_matrix",
    "lane_positions",
    "lane_temperature_offset_c",
    "uniform_neighbour_shift_nm",
]

#: Up to this many lanes the coupled system is solved with the precomputed inverse of
#: I + C (one L×L matrix per scenario, a matrix–vector product per engine and corner);
#: beyond it with a banded Neumann series (O(L) per term).
DENSE_MAX_LANES = 64
#: Terms of the Neumann series: ‖C‖∞ <= 0.72 leaves < 0.72^80 ≈ 4e-12 of the shift.
NEUMANN_TERMS = 80


def lane_positions(lanes: int) -> np.ndarray:
    """ξ_i = (i − (L − 1)/2)/(L − 1) ∈ [−½, ½] of lane i in the ring row (0 for one lane)."""
    if lanes <= 1:
        return np.zeros(max(lanes, 1))
    i = np.arange(lanes)
    return (i - 0.5 * (lanes - 1)) / (lanes - 1)


def lane_temperature_offset_c(*, position, gradient_c, temp_c, temp_min_c, temp_max_c):
    """Temperature offset of a lane from the engine temperature [°C].

    ΔT = G·ξ·load, load = (T_E − T_E,min)/(T_E,max − T_E,min) (1 for a one-point window):
    the map scales with the heat the ASIC dumps into the engine, which sets T_E.
    """
    span = temp_max_c - temp_min_c
    load = jnp.where(span > 0, (temp_c - temp_min_c) / jnp.where(span > 0, span, 1.0), 1.0)
    return gradient_c * position * load


def coupling_matrix(lanes: int, c1, c2):
    """I + C for `lanes` rings in a row (see the module docstring), shape [L, L]."""
    d = np.abs(np.arange(lanes)[:, None] - np.arange(lanes)[None, :])
    one = (d == 1).astype(np.float64)
    two = (d == 2).astype(np.float64)
    eye = np.eye(lanes)
    dt = jnp.result_type(c1, c2)
    return (
        jnp.asarray(eye, dt)
        + jnp.asarray(c1, dt) * jnp.asarray(one, dt)
        + jnp.asarray(c2, dt) * jnp.asarray(two, dt)
    )


def _banded(q, c1, c2):
    """C·q along axis −2 (lanes) of q[..., L, K], zero-padded at the row ends."""
    lanes = q.shape[-2]
    pad = jnp.zeros((*q.shape[:-2], 2, *q.shape[-1:]), q.dtype)
    qp = jnp.concatenate([pad, q, pad], axis=-2)
    out = c1 * (qp[..., 1 : lanes + 1, :] + qp[..., 3 : lanes + 3, :])
    return out + c2 * (qp[..., 0:lanes, :] + qp[..., 4 : lanes + 4, :])


def coupled_shifts_nm(*, shift_nm, c1, c2, method: str | None = None):
    """Own-heater shifts q [nm] that lock every ring of an engine at once: (I + C)q = s.

    Args:
      shift_nm: s[..., L, K], the shift each ring needs at its lock order (K corners).
      c1, c2: nearest and next-nearest coupling fractions (scalars).
      method: "dense" (precomputed inverse), "neumann" (banded series), or None for
        dense up to :data:`DENSE_MAX_LANES` lanes.

    Returns:
      q[..., L, K]; the neighbours supply s − q.
    """
    lanes = shift_nm.shape[-2]
    method = method or ("dense" if lanes <= DENSE_MAX_LANES else "neumann")
    dt = shift_nm.dtype
    c1 = jnp.asarray(c1, dt)
    c2 = jnp.asarray(c2, dt)
    if method == "dense":
        m_inv = jnp.linalg.inv(coupling_matrix(lanes, c1, c2))
        return jnp.einsum("ij,...jk->...ik", m_inv, shift_nm)
    if method == "neumann":
        q, term = shift_nm, shift_nm
        for _ in range(NEUMANN_TERMS):
            term = -_banded(term, c1, c2)
            q = q + term
        return q
    raise ValueError(f"method must be 'dense', 'neumann' or None, got {method!r}")


def uniform_neighbour_shift_nm(*, shift_nm, c1, c2):
    """Shift the neighbours supply to an interior ring whose neighbours are identical to it.

    Every ring needs s and delivers q with q(1 + 2c₁ + 2c₂) = s, so the neighbours supply
    e = s·(2c₁ + 2c₂)/(1 + 2c₁ + 2c₂): the lane-level model (one lane without an engine
    around it) of :func:`coupled_shifts_nm`.
    """
    k = 2.0 * (c1 + c2)
    return shift_nm * (k / (1.0 + k))
