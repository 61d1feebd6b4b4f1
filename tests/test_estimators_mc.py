"""Streamed crude Monte Carlo and sample-indexed normals.

Statistical checks use fixed seeds and compare with exact answers within
3 standard errors, SE = sqrt(p(1 − p)/n) (the tolerance is in each assertion).
"""

import json
import math
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpojax.estimators import FailureResult, InvalidModelOutput, estimate_failure, streaming
from cpojax.estimators import mc as mc_mod
from cpojax.estimators.limit_state import PROBE_ROWS
from cpojax.estimators.mc import estimate_mc
from cpojax.estimators.stats import binomial_se, clopper_pearson, norm_cdf, norm_sf
from cpojax.estimators.streaming import stream_counts
from cpojax.rng import BLOCK, block_normals, normals


def within_3se(est: float, exact: float, n: int) -> None:
    se = binomial_se(exact, n)
    assert abs(est - exact) <= 3 * se, f"|{est} − {exact}| > 3 SE = {3 * se} (n={n})"


def hyperplane(beta: float, dim: int = 10):
    """g = β − Σu/√dim; Pf = Φ(−β) exactly."""

    def g(u):
        return jnp.asarray(beta, u.dtype) - jnp.sum(u, axis=1) / jnp.sqrt(jnp.asarray(dim, u.dtype))

    return g


def multi_col(u):
    """Three independent columns: u0 > 2, u1 > 2.5, u2 < −1.5."""
    b = jnp.asarray([2.0, 2.5, 1.5], u.dtype)
    s = jnp.asarray([1.0, 1.0, -1.0], u.dtype)
    return b[None, :] - u[:, :3] * s[None, :]


MULTI_PK = [norm_sf(2.0), norm_sf(2.5), norm_sf(1.5)]


# ----------------------------------------------------------------------------- rng


@pytest.mark.parametrize("generator", ["threefry", "hash"])
def test_block_rule_is_chunk_independent(generator):
    key = jax.random.key(7)
    z = normals(key, 2, 3, 5, jnp.float32, generator=generator)
    assert z.shape == (3 * BLOCK, 5) and z.dtype == jnp.float32
    parts = [block_normals(key, b, 5, generator=generator) for b in (2, 3, 4)]
    np.testing.assert_array_equal(np.asarray(z), np.concatenate([np.asarray(p) for p in parts]))
    if generator == "threefry":  # the documented rule, spelled out
        ref = jax.random.normal(jax.random.fold_in(key, 3), (BLOCK, 5), jnp.float32)
        np.testing.assert_array_equal(np.asarray(parts[1]), np.asarray(ref))
    # Different blocks and keys give different numbers.
    assert not np.array_equal(np.asarray(parts[0]), np.asarray(parts[1]))
    other = block_normals(jax.random.key(8), 2, 5, generator=generator)
    assert not np.array_equal(np.asarray(parts[0]), np.asarray(other))


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["threefry", "hash"])
def test_generator_distribution(generator):
    """Moments, KS distance, tails and lag correlations of 2**20 normals."""
    z = np.asarray(normals(jax.random.key(3), 0, 64, 4, generator=generator), np.float64)
    x = z.ravel()
    n = x.size
    assert abs(x.mean()) < 4 / math.sqrt(n), "mean beyond 4 SE"
    assert abs(x.var() - 1) < 4 * math.sqrt(2 / n), "variance beyond 4 SE"
    # Kolmogorov-Smirnov distance to Φ on a 2**16 subsample (critical 1.63/√m at α=1 %).
    xs = np.sort(x[:: n // 2**16])
    m = xs.size
    cdf = np.array([norm_cdf(v) for v in xs])
    d = max(np.max(np.arange(1, m + 1) / m - cdf), np.max(cdf - np.arange(m) / m))
    assert d < 1.63 / math.sqrt(m), f"KS distance {d} too large"
    # Tail frequency P(|z| > 3) = 2Φ(−3).
    within_3se(float(np.mean(np.abs(x) > 3)), 2 * norm_sf(3.0), n)
    # Independence: neighbouring columns (same Box-Muller pair for the hash) and rows.
    tol = 4 / math.sqrt(z.shape[0])
    for a, b in [(z[:, 0], z[:, 1]), (z[:, 1], z[:, 2]), (z[:-1, 0], z[1:, 0])]:
        assert abs(np.corrcoef(a, b)[0, 1]) < tol, "correlation beyond 4 SE"
    # Radius² of a Box-Muller pair is χ²₂: P(z0² + z1² > 9) = exp(−4.5).
    within_3se(float(np.mean(z[:, 0] ** 2 + z[:, 1] ** 2 > 9)), math.exp(-4.5), z.shape[0])


# ---------------------------------------------------------------- accuracy vs exact


@pytest.mark.slow
def test_hyperplane_beta_309():
    beta, n = 3.09, 2_000_000
    r = estimate_mc(hyperplane(beta), dim=10, key=jax.random.key(0), n=n)
    assert isinstance(r, FailureResult) and r.method == "mc"
    assert r.n_evals == -(-n // BLOCK) * BLOCK  # rounded up to whole blocks
    within_3se(r.pf, norm_sf(beta), r.n_evals)
    assert r.ci == clopper_pearson(r.n_fail, r.n_evals)
    assert r.ci[0] < r.pf < r.ci[1]
    # CI half-width ≈ 1.96 SE: Clopper-Pearson is slightly conservative, never narrower.
    se = binomial_se(r.pf, r.n_evals)
    assert 1.9 * se < (r.ci[1] - r.ci[0]) / 2 < 2.1 * se
    assert r.cov == pytest.approx(math.sqrt((1 - r.pf) / (r.n_evals * r.pf)), rel=1e-12)
    assert r.fail_counts == (r.n_fail,)
    lo, hi = r.diagnostics["wilson"]
    assert lo <= r.pf <= hi and r.diagnostics["samples_per_s"] > 0


@pytest.mark.slow
def test_hyperplane_beta_372_adaptive():
    beta, target = 3.72, 0.08
    r = estimate_mc(
        hyperplane(beta),
        dim=10,
        key=jax.random.key(1),
        target_cov=target,
        max_n=20_000_000,
        generator="hash",
    )
    assert r.diagnostics["target_reached"] and r.reliable
    assert r.cov <= target, f"cov {r.cov} above target {target}"
    assert r.n_evals < 20_000_000 and r.n_evals % BLOCK == 0
    within_3se(r.pf, norm_sf(beta), r.n_evals)


@pytest.mark.slow
def test_two_sided():
    a, b, lim, n = 0.6, 1.2, 3.0, 1_000_000
    exact = 2 * norm_sf(lim / math.hypot(a, b))

    def g(u):
        return jnp.asarray(lim, u.dtype) - jnp.abs(
            jnp.asarray(a, u.dtype) * u[:, 0] + jnp.asarray(b, u.dtype) * u[:, 1]
        )

    r = estimate_mc(g, dim=2, key=jax.random.key(2), n=n, dtype=jnp.float64)
    within_3se(r.pf, exact, r.n_evals)


@pytest.mark.slow
def test_multi_column_fail_counts():
    n = 1_000_000
    r = estimate_mc(multi_col, dim=3, key=jax.random.key(4), n=n, generator="hash")
    assert len(r.fail_counts) == 3
    for c, p in zip(r.fail_counts, MULTI_PK, strict=True):
        within_3se(c / r.n_evals, p, r.n_evals)
    exact_any = 1 - math.prod(1 - p for p in MULTI_PK)
    within_3se(r.pf, exact_any, r.n_evals)
    assert max(r.fail_counts) <= r.n_fail <= sum(r.fail_counts)


def test_dispatcher_matches_estimate_mc():
    kw = {"dim": 3, "key": jax.random.key(5), "n": 3 * BLOCK}
    a = estimate_failure(multi_col, method="mc", **kw)
    b = estimate_mc(multi_col, **kw)
    assert (a.n_fail, a.fail_counts, a.n_evals) == (b.n_fail, b.fail_counts, b.n_evals)


# ------------------------------------------------------------ reproducibility, state


def test_chunk_size_and_resume_invariance():
    key, n = jax.random.key(11), 20 * BLOCK
    runs = [
        estimate_mc(multi_col, dim=3, key=key, n=n, chunk_blocks=c, generator="hash")
        for c in (1, 3, 8)
    ]
    first = estimate_mc(multi_col, dim=3, key=key, n=7 * BLOCK, chunk_blocks=3, generator="hash")
    assert first.state["next_block"] == 7 and first.n_evals == 7 * BLOCK
    state = json.loads(json.dumps(first.state))  # a caller would round-trip it through JSON
    resumed = estimate_mc(
        multi_col, dim=3, key=key, n=n, chunk_blocks=8, generator="hash", state=state
    )
    runs.append(resumed)
    ref = runs[0]
    assert ref.n_fail > 0
    for r in runs[1:]:
        assert (r.n_fail, r.fail_counts, r.n_evals) == (ref.n_fail, ref.fail_counts, n)
    # A resume with another key is refused rather than silently mixing streams.
    with pytest.raises(ValueError, match="state was made with another"):
        estimate_mc(multi_col, dim=3, key=jax.random.key(12), n=n, generator="hash", state=state)


def test_one_return_type_with_resumable_state():
    """estimate_mc once returned (result, state) on return_state=True: one type now."""
    kw = {"dim": 3, "key": jax.random.key(3), "chunk_blocks": 2}
    r = estimate_mc(multi_col, n=3 * BLOCK, **kw)
    assert isinstance(r, FailureResult) and r.state is not None
    assert r.state["next_block"] == 3 and r.state["n_fail"] == r.n_fail
    assert "state" not in r.to_dict()
    json.dumps(r.to_dict(), allow_nan=False)
    resumed = estimate_mc(multi_col, n=5 * BLOCK, state=r.state, **kw)
    full = estimate_mc(multi_col, n=5 * BLOCK, **kw)
    assert (resumed.n_fail, resumed.fail_counts, resumed.state) == (
        full.n_fail,
        full.fail_counts,
        full.state,
    )
    via = estimate_failure(multi_col, method="mc", n=3 * BLOCK, **kw)
    assert via.state == r.state
    with pytest.raises(TypeError, match="return_state"):
        estimate_mc(multi_col, n=BLOCK, return_state=True, **kw)


def test_adaptive_stop_independent_of_chunking():
    def g(u):  # Pf = Φ(−2) ≈ 0.0228
        return jnp.asarray(2.0, u.dtype) - u[:, 0]

    kw = {"dim": 1, "key": jax.random.key(9), "target_cov": 0.04, "max_n": 10**6}
    a = estimate_mc(g, chunk_blocks=2, **kw)
    b = estimate_mc(g, chunk_blocks=16, **kw)
    assert (a.n_evals, a.n_fail) == (b.n_evals, b.n_fail)
    assert a.cov <= 0.04
    # It stopped at the FIRST block boundary reaching the target.
    m, k = a.n_evals - BLOCK, None
    c = estimate_mc(g, dim=1, key=kw["key"], n=m)
    k = c.n_fail
    assert k == 0 or math.sqrt((m - k) / (m * k)) > 0.04


def test_stream_counts_generic_and_resumable():
    def fn(key, b):
        return {"b": b.astype(jnp.int32), "ones": jnp.ones((2,), jnp.int32)}

    seen = []
    tot, nxt = stream_counts(
        fn, key=jax.random.key(0), n_blocks=10, chunk_blocks=4, progress=lambda d, t: seen.append(d)
    )
    assert nxt == 10 and int(tot["b"]) == sum(range(10))
    assert tot["ones"].tolist() == [10, 10] and tot["b"].dtype == np.int64
    assert seen == [4, 8, 10]
    part, nxt = stream_counts(fn, key=jax.random.key(0), n_blocks=6, chunk_blocks=4)
    tot2, nxt2 = stream_counts(
        fn, key=jax.random.key(0), n_blocks=10, chunk_blocks=3, start_block=nxt, init=part
    )
    assert nxt2 == 10 and int(tot2["b"]) == sum(range(10))
    # Vectorised stop: first block whose running total of b reaches 15 (0+…+5 = 15).
    tot3, nxt3 = stream_counts(
        fn,
        key=jax.random.key(0),
        n_blocks=10,
        chunk_blocks=4,
        stop=lambda d, t: t["b"] >= 15,
    )
    assert nxt3 == 6 and int(tot3["b"]) == 15


def test_progress_callback():
    calls = []
    estimate_mc(
        multi_col,
        dim=3,
        key=jax.random.key(0),
        n=5 * BLOCK,
        chunk_blocks=2,
        progress=lambda d, t, f: calls.append((d, t, f)),
    )
    assert [c[0] for c in calls] == [2 * BLOCK, 4 * BLOCK, 5 * BLOCK]
    assert all(c[1] == 5 * BLOCK for c in calls)
    assert [c[2] for c in calls] == sorted(c[2] for c in calls)


# ------------------------------------------------------------------ flat memory


@pytest.mark.slow
def test_memory_flat_in_n_and_single_compile():
    seen_shapes = []

    def g(u):
        seen_shapes.append(tuple(u.shape))  # runs at trace time only
        return jnp.asarray(3.0, u.dtype) - u[:, 0] - u[:, 1]

    key, cb = jax.random.key(21), 16
    peaks, live = [], []
    for n in (100_000, 10_000_000):
        tracemalloc.start()
        r = estimate_mc(g, dim=2, key=key, n=n, chunk_blocks=cb, generator="hash")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        live.append(sum(a.nbytes for a in jax.live_arrays()))
        assert r.n_evals >= n
    # The model only ever sees one block, whatever n (besides the small probe of the
    # limit-state check, traced once).
    assert set(seen_shapes) == {(BLOCK, 2), (PROBE_ROWS, 2)}, seen_shapes
    # One compilation of the chunk function served both runs.
    block_fn = mc_mod._mc_block_fn(g, 2, jnp.dtype("float32"), "hash")
    chunk = streaming._chunk_function(block_fn, cb, None)  # as stream_counts calls it
    assert chunk._cache_size() == 1
    # Device memory of a chunk: bounded by a few chunks of normals, not by n.
    mem = chunk.lower(key, jnp.arange(cb, dtype=jnp.uint32), ()).compile().memory_analysis()
    chunk_bytes = cb * BLOCK * 2 * 4
    if mem is not None:
        assert mem.temp_size_in_bytes + mem.output_size_in_bytes < 8 * chunk_bytes
    # Host memory and live device buffers do not grow with n (100× more samples).
    assert peaks[1] < 2 * peaks[0] + 2**20, f"host peak grew with n: {peaks}"
    assert live[1] <= live[0] + 2**16, f"live device bytes grew with n: {live}"


# --------------------------------------------------------------- invalid output


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_nan_output_raises_with_count(bad):
    key, dim = jax.random.key(13), 2

    def g(u):
        return jnp.where(u[:, 0] > 2.0, jnp.asarray(bad, u.dtype), jnp.asarray(1.0, u.dtype))

    u0 = np.asarray(block_normals(key, 0, dim))[:, 0]
    expected = int(np.sum(u0 > 2.0))
    assert expected > 0
    with pytest.raises(InvalidModelOutput, match=rf"for {expected} of the {BLOCK} samples") as e:
        estimate_mc(g, dim=dim, key=key, n=10 * BLOCK, chunk_blocks=4)
    assert e.value.n_invalid == expected


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be an int >= 1"),
        ({"confidence": 1.5}, r"confidence must be in \(0, 1\)"),
        ({"target_cov": 0.0}, "target_cov"),
        ({"chunk_blocks": 0}, "chunk_blocks must be an int >= 1"),
        ({"dim": 0}, "dim must be an int >= 1"),
        ({"max_n": -5}, "max_n"),
        ({"generator": "mt"}, "generator must be one of"),
        ({"dtype": jnp.int32}, "dtype must be float32 or float64"),
    ],
)
def test_bad_arguments(kwargs, match):
    kw = {"dim": 3, "key": jax.random.key(0), "n": BLOCK} | kwargs
    with pytest.raises(ValueError, match=match):
        estimate_mc(multi_col, **kw)


def test_dim_mismatch_and_bad_output_shape():
    with pytest.raises(ValueError, match="dim=2"):
        estimate_mc(multi_col, dim=2, key=jax.random.key(0), n=BLOCK)  # uses u[:, :3]
    # A read beyond dim used to run: JAX clamps u[:, 5] to u[:, 1] (issue 15, item 20).
    with pytest.raises(ValueError, match=r"dim=2.*index 5 is out of bounds for axis 1"):
        estimate_mc(lambda u: 3.0 - u[:, 5], dim=2, key=jax.random.key(0), n=BLOCK)
    with pytest.raises(ValueError, match=r"f\[n\] or f\[n, k\]"):
        estimate_mc(lambda u: jnp.sum(u), dim=3, key=jax.random.key(0), n=BLOCK)
