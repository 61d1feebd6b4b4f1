"""The crude-MC yield pipeline in NumPy: normals → deviations → limit states → counters.

:func:`block_counts` returns the counters of ``cpojax.yields``' block function for one
block of engines (same names; the fixed-point attribution sums as plain int64 totals), so
the two pipelines can be compared number for number on the same normals;
:func:`yield_counts` runs a whole NumPy pipeline on NumPy's own generator, in blocks,
for the benchmarks.
"""

from __future__ import annotations

import numpy as np

from cpojax import model, variation
from cpojax.scenario import Scenario

from .hierarchy import engine_deviations, lane_deviations, standardized
from .lane import engine_g, lane_g

_FIXED, _Z_CAP = 1000.0, 1000.0
_THERMAL = model.LIMIT_NAMES.index("thermal")


def numpy_normals(rng: np.random.Generator, n: int, dim: int, dtype) -> np.ndarray:
    """n × dim standard normals from NumPy's generator (ziggurat), in `dtype`."""
    return rng.standard_normal((n, dim), dtype=np.dtype(dtype))


def _hist(x, lo, hi, bins):
    idx = np.clip(np.floor((x - lo) / (hi - lo) * bins).astype(np.int64) + 1, 0, bins + 1)
    return np.bincount(idx.ravel(), minlength=bins + 2)


def _quantise(x):
    return np.round(np.clip(x, -_Z_CAP, _Z_CAP) * _FIXED).astype(np.int64)


def block_counts(scenario: Scenario, u: np.ndarray) -> dict:
    """Counters of one block of engines with normals u[B, engine_dim] (u's dtype)."""
    dt = u.dtype
    lay = variation.layout(scenario)
    lanes = lay.lanes
    dev = engine_deviations(scenario, u)
    g, red = engine_g(scenario, dev, dt, with_red=True)  # [B, L, K], [B, L]
    u_die = np.concatenate(
        [u[:, : 2 * lay.n_shared], np.zeros((u.shape[0], lay.lane_dim - 2 * lay.n_shared), dt)],
        axis=-1,
    )
    g_die = lane_g(scenario, lane_deviations(scenario, u_die), dt)
    finite_k = np.isfinite(g)
    finite = finite_k.all(axis=-1)
    fail_k = g < 0
    lane_fail = fail_k.any(axis=-1) | ~finite
    nf = lane_fail.sum(axis=-1)
    eng_fail = nf > scenario.system.spare_lanes
    z = standardized(scenario, u)
    names = list(lay.variables)
    q2 = _quantise(np.stack([np.mean(z[n] ** 2, axis=-1) for n in names], axis=-1))
    q1 = _quantise(np.stack([np.mean(z[n], axis=-1) for n in names], axis=-1))
    w = lane_fail[..., None]
    out = {
        "lane_fail": int(lane_fail.sum()),
        "state_fail": fail_k.sum(axis=(0, 1)),
        "thermal_red_fail": int((fail_k[..., _THERMAL] & red).sum()),
        "invalid": int((~finite).sum()),
        "invalid_state": (~finite_k).sum(axis=(0, 1)),
        "invalid_probe": int((~np.isfinite(g_die).all(axis=-1)).sum()),
        "engine_fail": int(eng_fail.sum()),
        "nfail_hist": np.bincount(nf, minlength=lanes + 1),
        "prefix_fail": (np.cumsum(lane_fail, axis=-1) > 0).sum(axis=0),
        "die_fail_engines": int(((g_die < 0).any(axis=-1) & eng_fail).sum()),
        "z2_fail": (w * q2).sum(axis=(0, 1)),
        "z1_fail": (w * q1).sum(axis=(0, 1)),
        "z2_state": np.einsum("blk,blv->kv", fail_k.astype(np.int64), q2),
        "z2_invalid": ((~finite)[..., None] * q2).sum(axis=(0, 1)),
    }
    for j, ls in enumerate(model.LIMIT_STATES):
        out[f"hist_{ls.name}"] = _hist(g[..., j], *ls.hist)
    return out


def yield_counts(
    scenario: Scenario, n_engines: int, *, seed: int = 0, dtype=np.float32, block: int = 4096
) -> dict:
    """Totals of :func:`block_counts` over ⌈n_engines/block⌉ blocks of NumPy normals."""
    rng = np.random.default_rng(seed)
    dim = variation.layout(scenario).engine_dim
    totals: dict = {}
    for _ in range(-(-n_engines // block)):
        c = block_counts(scenario, numpy_normals(rng, block, dim, dtype))
        for k, v in c.items():
            totals[k] = totals[k] + np.asarray(v) if k in totals else np.asarray(v, np.int64)
    return totals
