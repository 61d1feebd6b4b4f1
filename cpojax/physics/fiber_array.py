"""Fiber array as a rigid body: the fiber map of an engine and the per-fiber misplacement.

The engine's fibers sit in one V-groove array at pitch p along x (the array axis), their
end faces in the plane z = 0 facing the chip's edge couplers, the optical axis along z.
Slot n of N is at x_n = (n − (N − 1)/2)·p from the array centre. A placement error of
the whole array is a rigid-body motion: translation (t_x, t_y, t_z) and small rotations
about z (roll θ_r, about the optical axis), y (yaw θ_y, in the array plane) and x (pitch
θ_p) through the array centre. A fiber at (x_n, 0, 0) then moves by (to first order in
the angles; the rotation matrix R = I + [θ]_× of Goldstein, *Classical Mechanics*, §4.8)::

    Δx_n = t_x,    Δy_n = t_y + θ_r·x_n,    Δz_n = t_z − θ_y·x_n,
    tilt in the x–z plane = θ_y,    tilt in the y–z plane = θ_p,

so the offsets of the fibers are correlated and grow with their distance from the array
centre: an 18-fiber array at 127 µm pitch and 1 mrad of roll moves its edge fibers by
8.5 × 127 µm × 1e-3 = 1.08 µm (docs/model.md#fiber-array). The second-order terms
(x_n·θ²/2 ≈ 1 nm at 1 mrad) are neglected; the tests compare with the exact rotation.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["FIBER_FIELDS", "FIBER_MAPS", "rigid_body_shift_um", "slot_indices", "slot_offsets"]

FIBER_MAPS = ("grouped", "interleaved")

#: (lateral offset, gap) Deviations fields of the TX, RX and laser-in fibers, in the order
#: of the lever arms :func:`slot_offsets` returns.
FIBER_FIELDS: tuple[tuple[str, str], ...] = (
    ("offset_out_y_um", "gap_out_um"),
    ("offset_rx_y_um", "gap_rx_um"),
    ("offset_in_y_um", "gap_in_um"),
)


@functools.lru_cache(maxsize=64)
def slot_indices(lanes: int, lanes_per_laser: int, fiber_map: str) -> tuple[np.ndarray, ...]:
    """Array slot of every fiber of an engine: (tx[L], rx[L], laser_in[L], n_slots).

    ``grouped``: [TX 0..L−1 | laser-in 0..N_L−1 | RX 0..L−1] (transmit fibers together,
    then the laser feeds, then the receive fibers). ``interleaved``: lane pairs
    [TX_i, RX_i] for the first ⌊L/2⌋ lanes, the laser-in fibers, then the remaining lane
    pairs (the laser feeds in the middle). ``laser_in[i]`` is the slot of the laser that
    feeds lane i (lane i // lanes_per_laser).
    """
    n_lasers = lanes // lanes_per_laser
    laser_of_lane = np.arange(lanes) // lanes_per_laser
    if fiber_map == "grouped":
        tx = np.arange(lanes)
        laser = lanes + np.arange(n_lasers)
        rx = lanes + n_lasers + np.arange(lanes)
    elif fiber_map == "interleaved":
        half = lanes // 2
        i = np.arange(lanes)
        base = np.where(i < half, 2 * i, 2 * i + n_lasers)
        tx, rx = base, base + 1
        laser = 2 * half + np.arange(n_lasers)
    else:
        raise ValueError(f"fiber_map must be one of {FIBER_MAPS}, got {fiber_map!r}")
    n_slots = 2 * lanes + n_lasers
    return tx, rx, laser[laser_of_lane], n_slots


def slot_offsets(lanes: int, lanes_per_laser: int, fiber_map: str) -> tuple[np.ndarray, ...]:
    """Distance of each fiber from the array centre in pitches: (tx[L], rx[L], laser_in[L]).

    Multiply by the pitch [µm] for the lever arm x_n (a static numpy array, so the pitch
    can be a traced scenario value).
    """
    tx, rx, laser, n = slot_indices(lanes, lanes_per_laser, fiber_map)
    c = 0.5 * (n - 1)
    return tx - c, rx - c, laser - c


def rigid_body_shift_um(*, x_um, roll_mrad, yaw_mrad):
    """Displacement (Δy, Δz) [µm] of a fiber at lever arm x [µm] from the array centre.

    Δy = θ_r·x (roll about the optical axis), Δz = −θ_y·x (yaw in the array plane: the
    fibers on one side move towards the chip, those on the other side away); angles in
    mrad, first order (see the module docstring). The translation and the tilts add
    directly and are not part of this function.
    """
    return 1e-3 * roll_mrad * x_um, -1e-3 * yaw_mrad * x_um
