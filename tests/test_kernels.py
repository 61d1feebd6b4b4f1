"""The fused Pallas yield kernel (cpojax.kernels) against the XLA path, in interpret mode.

The kernel draws the "counter" random stream in-kernel; with the same key its counters
must equal, integer for integer, those of ``cpojax.yields`` on the XLA path with
``generator="counter"`` (docs/kernels.md).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cpojax.kernels import plan as kp
from cpojax.kernels import special
from cpojax.kernels import yield_block as yb
from jax.scipy.special import ndtri as jax_ndtri

from cpojax import counters, kernels, model, rng, yields
from cpojax.scenario import Scenario


def _small():
    """A small engine (4 lanes, 2 per laser) of the former model with thermal crosstalk on:
    few columns, so the interpreted kernel compiles in ~20 s, and the lane solve runs."""
    return model.legacy_scenario().replace(
        {
            "system.lanes_per_engine": 4,
            "system.lanes_per_laser": 2,
            "system.thermal_coupling": True,
        }
    )


def _xla_block(scenario, key, b, dtype):
    fn = jax.jit(counters.block_fn(jnp.dtype(dtype).name, "counter"))
    return {k: np.asarray(v) for k, v in fn(key, jnp.uint32(b), scenario).items()}


def _assert_same(kernel_counts, xla_counts, b=None):
    for name in kernels.COUNTERS:
        got = np.asarray(kernel_counts[name] if b is None else kernel_counts[name][b])
        np.testing.assert_array_equal(got, np.asarray(xla_counts[name]), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndtri_copy_is_bit_identical(dtype):
    p = np.concatenate(
        [
            np.linspace(0.0, 1.0, 20001),
            np.logspace(-300 if dtype == np.float64 else -37, -1, 2000),
            [np.exp(-2.0), 1 - np.exp(-2.0), 1e-10, 2.0**-33],
        ]
    ).astype(dtype)
    a = jax.jit(special.ndtri)(jnp.asarray(p))
    b = jax.jit(jax_ndtri)(jnp.asarray(p))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_normals_from_bits_copy_is_bit_identical():
    bits = jax.random.bits(jax.random.key(3), (50_000,), jnp.uint32)
    bits = jnp.concatenate([bits, jnp.asarray([0, 1, 2**31 - 1, 2**31, 2**32 - 1], jnp.uint32)])
    np.testing.assert_array_equal(
        np.asarray(jax.jit(special.normals_from_bits)(bits)),
        np.asarray(jax.jit(rng.normals_from_bits)(bits)),
    )


def test_kernel_counts_equal_xla_block_counts():
    """Two blocks in one launch, float32: every kernel counter equals the XLA block's."""
    sc, key = _small(), jax.random.key(7)
    got = kernels.block_counts(sc, key, 0, 2, dtype=jnp.float32, interpret=True)
    for b in range(2):
        _assert_same(got, _xla_block(sc, key, b, jnp.float32), b)
    assert got["lane_fail"].sum() > 0 and got["engine_fail"].sum() > 0


def test_estimate_yield_pallas_interpret_matches_xla():
    sc = _small()
    kw = dict(seed=7, n_engines=2 * rng.BLOCK, generator="counter", chunk_blocks=2)
    x = yields.estimate_yield(sc, implementation="xla", **kw)
    p = yields.estimate_yield(sc, implementation="pallas-interpret", **kw)
    assert (x.implementation, p.implementation) == ("xla", "pallas-interpret")
    for name in kernels.COUNTERS:
        assert p.counts[name] == x.counts[name], name
    assert p.lane == x.lane and p.engine == x.engine and p.switch == x.switch
    assert p.failure_modes == x.failure_modes
    assert p.die_level_share == x.die_level_share
    assert p.yield_vs_lanes == x.yield_vs_lanes
    assert p.thermal_edges == x.thermal_edges
    # what the kernel does not compute is absent, and the result says so
    assert p.attribution == {} and p.histograms == {}
    assert "z2_fail" not in p.counts and "hist_optical" not in p.counts
    assert p.to_dict()["implementation"] == "pallas-interpret"
    assert "implementation" not in x.to_dict()


def test_resume_across_implementations_is_refused():
    sc = _small()
    states = []
    kw = dict(seed=1, n_engines=2 * rng.BLOCK, generator="counter", chunk_blocks=2)
    yields.estimate_yield(sc, checkpoint=states.append, **kw)  # compiled already above
    with pytest.raises(ValueError, match="another run"):
        yields.estimate_yield(sc, implementation="pallas-interpret", state=states[-1], **kw)


def test_implementation_argument_validation():
    sc = _small()
    with pytest.raises(ValueError, match=r"implementation must be None or one of .*'pallas'"):
        yields.estimate_yield(sc, n_engines=16, generator="counter", implementation="triton")
    with pytest.raises(ValueError, match="generator='counter'"):
        yields.estimate_yield(sc, n_engines=16, implementation="pallas")
    with pytest.raises(ValueError, match="one device"):
        yields.estimate_yield(
            sc, n_engines=16, generator="counter", implementation="pallas", devices=1
        )
    with pytest.raises(ValueError, match="tile must divide"):
        kernels.block_counts(sc, jax.random.key(0), 0, 1, interpret=True, tile=1000)


def test_auto_is_xla_on_cpu():
    assert jax.default_backend() == "cpu"
    assert not kernels.pallas_supported()
    assert kernels.resolve_implementation(None, generator="counter") == "xla"
    assert kernels.resolve_implementation(None, generator="threefry") == "xla"
    assert kernels.resolve_implementation("pallas-interpret") == "pallas-interpret"
    assert kernels.pallas_supported("gpu")
    r = yields.estimate_yield(_small(), seed=2, n_engines=16, generator="counter", chunk_blocks=2)
    assert r.implementation == "xla" and r.attribution


def test_counter_layout_names():
    assert kernels.COUNTERS == tuple(n for n, _ in yb.counter_layout(8))
    assert set(kernels.COUNTERS) <= set(_xla_block(_small(), jax.random.key(0), 0, jnp.float32))


@pytest.mark.slow
def test_kernel_default_scenario_several_programs_float32():
    """The calibrated default (every Physics-II switch, 8 lanes, rigid array, crosstalk),
    4 programs per block: identical counters."""
    sc, key = Scenario.default(), jax.random.key(11)
    got = kernels.block_counts(sc, key, 3, 1, dtype=jnp.float32, interpret=True, tile=1024)
    _assert_same(got, _xla_block(sc, key, 3, jnp.float32), 0)


@pytest.mark.slow
def test_kernel_float64_without_crosstalk():
    sc = _small().replace({"system.thermal_coupling": False})
    key = jax.random.key(5)
    got = kernels.block_counts(sc, key, 1, 1, dtype=jnp.float64, interpret=True)
    _assert_same(got, _xla_block(sc, key, 1, jnp.float64), 0)


@pytest.mark.slow
def test_yield_counts_api_sums_blocks():
    sc, key = _small(), jax.random.key(7)
    tot = kernels.yield_counts(sc, key=key, n_engines=2 * rng.BLOCK, interpret=True)
    per = kernels.block_counts(sc, key, 0, 2, interpret=True)
    assert tot["n_blocks"] == 2
    for name in kernels.COUNTERS:
        np.testing.assert_array_equal(tot[name], np.asarray(per[name]).sum(axis=0))


@pytest.mark.slow
def test_smoothed_failure_fraction_kernel_forward_xla_gradient():
    """The differentiable companion: forward from the kernel (equal to the XLA value to
    rounding), gradient through custom_vjp exactly the XLA path's, finite and nonzero."""
    from cpojax.kernels import smooth

    sc, key = _small(), jax.random.key(3)
    vals = {
        "design.ring.bias_nm": jnp.float32(sc.design.ring.bias_nm),
        "design.ring.heater_max_mw": jnp.float32(sc.design.ring.heater_max_mw),
    }
    va, ga = jax.value_and_grad(
        lambda v: smooth.smoothed_failure_fraction(sc, v, key=key, interpret=True)
    )(vals)
    vb, gb = jax.value_and_grad(lambda v: smooth.smoothed_failure_fraction_xla(sc, v, key=key))(
        vals
    )
    np.testing.assert_allclose(float(va), float(vb), rtol=1e-5)
    for k in vals:
        assert np.isfinite(float(ga[k])) and float(ga[k]) != 0.0
        np.testing.assert_array_equal(np.asarray(ga[k]), np.asarray(gb[k]))


def test_kernel_lowers_for_cuda_with_triton():
    """GPU readiness without a GPU: the compiled kernel (not interpret mode) lowers to a
    Triton kernel for the CUDA platform, i.e. every primitive of the body has a Pallas
    Triton lowering rule and every block shape is accepted (PTX compilation itself needs
    a GPU)."""
    sc = _small()
    plan = kp.make_plan(sc)
    run = yb.kernel_call(plan, "float32", 2, 256, False)
    k0, k1 = rng.key_words(jax.random.key(0))
    words = jnp.stack([k0, k1, jnp.uint32(0), jnp.uint32(0)])
    args = (words, *yb.kernel_inputs(plan, sc, jnp.dtype(jnp.float32)))
    text = run.trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    assert "triton" in text.lower()
