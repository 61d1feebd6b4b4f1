"""The exploratory probe (cpojax.estimators.rare.explore) and loose FORM searches."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cpojax.estimators.rare import benchmarks as bm
from cpojax.estimators.rare.common import parse_options
from cpojax.estimators.rare.explore import explore, probe_size
from cpojax.estimators.rare.form import run_form

OPTS = parse_options({})


def _explore(name, seed):
    p = bm.by_name(name)
    k_form, k_probe = jax.random.split(jax.random.key(seed))
    n_cols = 2 if name == "union10" else 1
    form = run_form(p.limit_state, k_form, p.dim, n_cols, OPTS, loose=True)
    return form, explore(p.limit_state, k_probe, form, p.dim, OPTS)


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in (1, 2))])
def test_four_branch_series_system_all_branches_found(seed):
    """Waarts' four-branch system with k = 6: every branch at β = 3, but HL-RF from
    near the origin follows the two curved branches only."""
    _, ex = _explore("four_branch_k6", seed)
    assert ex["geometry"] == "local"
    # the design points (other centres: near points, failing probe points further out)
    pts = np.array([p for p, b, _ in ex["points"] if b < 3.01])
    assert len(pts) == 4
    assert all(b > 2.99 for _, b, _ in ex["points"])
    # the four directions ±(1, 1)/√2 and ±(1, −1)/√2
    d = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    assert np.all(np.abs(np.abs(d) - 1 / np.sqrt(2)) < 1e-2)
    assert len({tuple(np.sign(x).astype(int)) for x in d}) == 4


def test_cube_exterior_all_faces_found():
    _, ex = _explore("cube5", 0)
    assert ex["geometry"] == "local"
    faces = {tuple(np.round(p).astype(int)) for p, b, _ in ex["points"] if b < 4.01}
    assert len(faces) == 10 and all(sum(map(abs, f)) == 4 for f in faces)


@pytest.mark.parametrize(
    "name",
    [
        "sphere6_1e-4",
        *(pytest.param(n, marks=pytest.mark.slow) for n in ("sphere10_r40", "ellipsoid8")),
    ],
)
def test_surrounding_domains_are_recognised(name):
    _, ex = _explore(name, 0)
    assert ex["geometry"] == "surrounding"
    assert ex["n_evals"] == probe_size(bm.by_name(name).dim)  # no search wasted
    r2 = {"sphere6_1e-4": bm.R2_SPHERE6, "sphere10_r40": 40.0, "ellipsoid8": 4.5**2}[name]
    assert ex["radius"] >= 0.95 * np.sqrt(r2)


def test_linear_costs_only_the_probe():
    form, ex = _explore("linear10_1e-6", 0)
    assert ex["geometry"] == "local" and len(ex["points"]) == 1
    assert ex["n_evals"] == probe_size(10) == 16
    assert form["n_evals"] <= 30


def test_loose_search_stops_at_a_kink():
    """RP25 (a parallel system, max of two pieces): HL-RF cycles at the kink; the strict
    search runs all 50 iterations, the loose one stops the stalled rows."""
    p = bm.by_name("rp25")
    strict = run_form(p.limit_state, jax.random.key(0), 2, 1, OPTS)
    loose = run_form(p.limit_state, jax.random.key(0), 2, 1, OPTS, loose=True)
    assert strict["iterations"] == OPTS.max_iter
    assert loose["n_evals"] < strict["n_evals"] / 2


def test_curved_search_gives_near_points():
    """RP22 (a parabola, curvature·β ≈ 1): HL-RF converges slowly; loose searches stop
    on the surface and return near points at β ≈ 2.5."""
    p = bm.by_name("rp22")
    form = run_form(p.limit_state, jax.random.key(0), 2, 1, OPTS, loose=True)
    pts = form["points"] + form["near_points"]
    assert pts and min(b for _, b, _ in pts) == pytest.approx(2.5, abs=0.1)
    assert form["iterations"] < OPTS.max_iter
