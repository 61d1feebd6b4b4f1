"""Issue 9 item 4: the fiber array as a rigid body.

Fiber map (slot of every TX, RX and laser-in fiber), the lever-arm displacement of each
fiber against the exact rotation of its position, the y-plane tilt of the Gaussian overlap
(separable in x and y), the per-fiber offsets the variation draws, and the yield cost of a
0.5–1 mrad roll at 127 µm pitch, larger for lanes whose fibers sit at the array's ends.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax import estimate_yield, model, rng, variation
from cpojax.physics import coupling, fiber_array

F64 = jnp.float64
BASE = model.legacy_scenario()
RIGID = BASE.replace({"system.fiber_array": "rigid"})


def _rot(axis, th):
    c, s = np.cos(th), np.sin(th)
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@pytest.mark.parametrize("fiber_map", ["grouped", "interleaved"])
def test_fiber_map_slots(fiber_map):
    tx, rx, laser, n = fiber_array.slot_indices(8, 4, fiber_map)
    assert n == 18
    used = np.concatenate([tx, rx, np.unique(laser)])
    assert sorted(used) == list(range(18))  # every slot used once
    assert list(laser) == [laser[0]] * 4 + [laser[4]] * 4  # one laser feeds 4 lanes
    off = fiber_array.slot_offsets(8, 4, fiber_map)
    allx = np.concatenate([off[0], off[1], np.unique(off[2])])
    assert allx.min() == -8.5 and allx.max() == 8.5  # centred array
    if fiber_map == "grouped":
        np.testing.assert_array_equal(tx, np.arange(8))
        np.testing.assert_array_equal(rx, 10 + np.arange(8))
    else:
        np.testing.assert_array_equal(rx - tx, 1)
        assert set(np.unique(laser)) == {8, 9}


def test_rigid_body_shift_is_the_rotation_of_each_fiber_position():
    """Δy = roll·x and Δz = −yaw·x to first order: the exact rotation of (x, 0, 0) differs by
    O(x·θ²), ≈ 1 nm for the array's end fiber at 1 mrad."""
    pitch = 127.0
    x = fiber_array.slot_offsets(8, 4, "grouped")[0] * pitch  # TX fibers, µm
    for roll, yaw in ((1.0, 0.0), (0.0, 1.0), (0.7, -0.5)):
        p = np.stack([x, np.zeros_like(x), np.zeros_like(x)])
        q = _rot("y", 1e-3 * yaw) @ _rot("z", 1e-3 * roll) @ p
        dy, dz = fiber_array.rigid_body_shift_um(x_um=x, roll_mrad=roll, yaw_mrad=yaw)
        exact_dy, exact_dz = q[1] - p[1], q[2] - p[2]
        bound = np.abs(x) * (1e-3 * (abs(roll) + abs(yaw))) ** 2 + 1e-12
        assert np.all(np.abs(np.asarray(dy) - exact_dy) <= bound)
        assert np.all(np.abs(np.asarray(dz) - exact_dz) <= bound)
    # the design note: 18 fibers at 127 µm, 1 mrad → end fibers move ≈ 1.1 µm
    dy, _ = fiber_array.rigid_body_shift_um(x_um=8.5 * pitch, roll_mrad=1.0, yaw_mrad=0.0)
    assert float(dy) == pytest.approx(1.08, abs=0.01)


def test_variation_moves_each_fiber_by_roll_times_its_lever_arm():
    sc = RIGID.replace(
        {
            **{
                f"spread.{n}.{lv}": 0.0
                for n in variation.active_variables(RIGID)
                for lv in ("wafer", "die", "lane")
            },
            "spread.fiber_array_roll_mrad.die": 1.0,
            "spread.fiber_array_yaw_mrad.die": 0.5,
        }
    )
    lay = variation.layout(sc)
    u = rng.block_normals(jax.random.key(2), 0, lay.engine_dim, F64)[:64]
    dev = jax.jit(lambda u: variation.engine_deviations(sc, u))(u)
    tx, rx, laser = (a * 127.0 for a in fiber_array.slot_offsets(8, 4, "grouped"))
    roll = np.asarray(dev.array_roll_mrad)[:, :1]
    yaw = np.asarray(dev.tilt_x_mrad)[:, :1]
    assert np.std(roll) > 0.5  # drawn, one value per engine
    np.testing.assert_allclose(np.asarray(dev.array_roll_mrad), np.broadcast_to(roll, (64, 8)))
    np.testing.assert_allclose(np.asarray(dev.offset_out_y_um), 1e-3 * roll * tx, atol=1e-12)
    np.testing.assert_allclose(np.asarray(dev.offset_rx_y_um), 1e-3 * roll * rx, atol=1e-12)
    np.testing.assert_allclose(np.asarray(dev.offset_in_y_um), 1e-3 * roll * laser, atol=1e-12)
    np.testing.assert_allclose(np.asarray(dev.gap_out_um), -1e-3 * yaw * tx, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(dev.offset_out_x_um), 0.0)
    # a lane on its own sits at the array centre: no lever arm
    dl = variation.lane_deviations(sc, rng.block_normals(jax.random.key(3), 0, lay.lane_dim, F64))
    np.testing.assert_array_equal(np.asarray(dl.offset_out_y_um), 0.0)


def test_y_plane_tilt_mirrors_x_plane_and_separates():
    kw = dict(w1_um=3.0, w2_um=4.6, gap_um=5.0, wavelength_nm=1311.0, n_medium=1.45)
    th, d = 0.02, 0.8
    ex = coupling.mode_overlap(offset_um=d, tilt_rad=th, **kw)
    ey = coupling.mode_overlap(offset_um=0.0, offset_y_um=d, tilt_rad=0.0, tilt_y_rad=th, **kw)
    assert float(ey) == pytest.approx(float(ex), rel=1e-12)
    e0 = coupling.mode_overlap(offset_um=0.0, tilt_rad=0.0, **kw)
    exy = coupling.mode_overlap(offset_um=d, tilt_rad=th, offset_y_um=-0.5, tilt_y_rad=0.01, **kw)
    eyy = coupling.mode_overlap(
        offset_um=0.0, tilt_rad=0.0, offset_y_um=-0.5, tilt_y_rad=0.01, **kw
    )
    # circular Gaussian beams factorise: η(x, y) = η_x · η_y / η_0
    assert float(exy) == pytest.approx(float(ex) * float(eyy) / float(e0), rel=1e-12)
    # no tilt_y argument = the former formula, bit for bit
    a = coupling.mode_overlap(offset_um=d, offset_y_um=0.3, tilt_rad=th, **kw)
    b = coupling.mode_overlap(offset_um=d, offset_y_um=0.3, tilt_rad=th, tilt_y_rad=None, **kw)
    assert float(a) == float(b)


def test_y_plane_tilt_brute_force_overlap_integral():
    """Pure tilt in the y plane at zero gap: the 2-D overlap integral of two Gaussian modes
    with a linear phase tilt equals the closed form."""
    w1, w2, lam_um, n, th = 3.0, 4.6, 1.311, 1.45, 0.05
    x = np.linspace(-25, 25, 801)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    e1 = np.exp(-(xx**2 + yy**2) / w1**2)
    e2 = np.exp(-(xx**2 + yy**2) / w2**2) * np.exp(1j * 2 * np.pi * n / lam_um * th * yy)
    num = np.abs(np.sum(e1 * np.conj(e2))) ** 2
    den = np.sum(np.abs(e1) ** 2) * np.sum(np.abs(e2) ** 2)
    want = num / den
    got = coupling.mode_overlap(
        w1_um=w1,
        w2_um=w2,
        offset_um=0.0,
        gap_um=0.0,
        tilt_rad=0.0,
        tilt_y_rad=th,
        wavelength_nm=1311.0,
        n_medium=n,
    )
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_roll_costs_yield_and_most_at_the_array_ends():
    """Roll σ 0.5–1 mrad at 127 µm pitch visibly costs engine yield; the lanes whose fibers
    sit far from the array centre (lanes 0 and 7 of the grouped map) fail most."""
    n = 8192
    ys = {}
    for s in (0.0, 0.5, 1.0):
        sc = RIGID.replace({"spread.fiber_array_roll_mrad.die": s})
        ys[s] = estimate_yield(sc, seed=0, n_engines=n).engine.value
    assert ys[0.0] - ys[1.0] > 0.02
    assert ys[0.0] > ys[0.5] > ys[1.0]
    sc = RIGID.replace({"spread.fiber_array_roll_mrad.die": 1.5, "spread.fiber_offset_um.die": 0.0})
    lay = variation.layout(sc)
    u = rng.block_normals(jax.random.key(5), 0, lay.engine_dim, jnp.float32)
    g = np.asarray(jax.jit(lambda u: model.engine_g(sc, u, jnp.float32))(u))
    fail = (g[..., 0] < 0).mean(axis=0)  # optical failures per lane
    assert fail[0] + fail[7] > 1.3 * (fail[3] + fail[4]), fail
