"""Property-based tests (Hypothesis): scenarios drawn from the validated ranges.

Every scenario key carries its allowed range in the parameter table; the strategies
below draw any subset of keys from those ranges (uniform, or log-uniform over wide
positive ranges) and assert what must hold for every valid input:

* no CLI verb ends in a traceback; exit codes are 0/1 (PASS/FAIL), 2 (bad input:
  cross-field checks may reject a combination) or 3 (NaN/inf), never 4;
* limit states are finite for finite inputs (the model has no NaN/inf holes);
* yields lie in [0, 1] with lo <= yield <= hi;
* chunk sizes 1, 2 and 4 give identical results.

The example budgets are small (about a minute for the module on 2 cores) and derandomised, so CI runs the same examples every
time, in seconds per property.
"""

from __future__ import annotations

import json
import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

from cpojax import model
from cpojax.budget import nominal_budget
from cpojax.cli import main
from cpojax.scenario import Scenario, ScenarioError, iter_params, numeric_keys
from cpojax.yields import estimate_yield

pytestmark = pytest.mark.slow  # about a minute and a half on 2 cores; CI runs it

_SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
_DEFAULT = Scenario.default()
#: Keys whose values are traced (not structural): changing them reuses compiled code.
TRACED = set(numeric_keys(_DEFAULT, ("design.", "spread.", "window.", "limits.")))
_META = {k: f.metadata for k, f, _ in iter_params()}


@pytest.fixture(autouse=True)
def _no_persistent_cache(monkeypatch):
    monkeypatch.setenv("CPOJAX_CACHE_DIR", "")


def _value(key: str):
    """Strategy for one key's value inside its allowed range."""
    m = _META[key]
    default = _DEFAULT.get(key)
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, str):
        return st.sampled_from(m["choices"])
    lo, hi = float(m["lo"]), float(m["hi"])
    if isinstance(default, int):
        return st.integers(math.ceil(lo), int(min(hi, 64)))
    hi = min(hi, 1e6)
    if lo > 0 and hi / lo > 100:  # log-uniform over wide positive ranges
        return (
            st.floats(math.log(lo), math.log(hi))
            .map(math.exp)
            .filter(
                lambda v, lo=lo, hi=hi, m=m: (
                    (lo < v or not m.get("lo_open"))
                    and (v < hi or not m.get("hi_open"))
                    and lo <= v <= hi
                )
            )
        )
    return st.floats(
        lo,
        hi,
        exclude_min=bool(m.get("lo_open")),
        exclude_max=bool(m.get("hi_open")),
        allow_nan=False,
    )


def _updates(keys, max_size=4):
    keys = sorted(keys)
    return st.lists(st.sampled_from(keys), min_size=1, max_size=max_size, unique=True).flatmap(
        lambda ks: st.fixed_dictionaries({k: _value(k) for k in ks})
    )


ALL_KEYS = [k for k in _META if not k.startswith("correlation.")]


def _scenario(updates) -> Scenario:
    try:
        return _DEFAULT.replace(updates)
    except ScenarioError:
        assume(False)  # a cross-field check rejected the combination
        raise


def _toml(v) -> str:
    """A value as the TOML literal `--set` parses."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _strict_json(text: str):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=bad)


# --------------------------------------------------------------------------- CLI
@settings(max_examples=10, **_SETTINGS)
@given(_updates(ALL_KEYS))
def test_link_exit_codes_and_json(updates):
    argv = ["link", "--json"]
    for k, v in updates.items():
        argv += ["--set", f"{k}={_toml(v)}"]
    code = main(argv)
    assert code in (0, 1, 2, 3), (updates, code)


@settings(max_examples=12, **_SETTINGS)
@given(_updates(ALL_KEYS))
def test_link_verdict_matches_limit_states(updates):
    sc = _scenario(updates)
    rep = nominal_budget(sc)
    g = rep.limit_states
    assert all(math.isfinite(v) for v in g.values()), (updates, g)
    assert rep.passes == all(v >= 0 for v in g.values())
    _strict_json(json.dumps(rep.to_dict()))


# --------------------------------------------------------------------------- model
@settings(max_examples=12, **_SETTINGS)
@given(_updates(TRACED, max_size=6), st.integers(0, 2**31 - 1))
def test_limit_states_finite_for_finite_inputs(updates, seed):
    """Random lanes (the scenario's own spreads, and 3× wider tails) of any valid
    scenario have finite limit states."""
    sc = _scenario(updates)
    g = model.limit_state(sc, "lane", "float32")
    dim = model.dim(sc, "lane")
    u = jax.random.normal(jax.random.key(seed), (256, dim), jnp.float32)
    for scale in (1.0, 3.0):
        out = np.asarray(jax.jit(g)(u * scale))
        assert np.all(np.isfinite(out)), (updates, scale, out[~np.isfinite(out)][:5])


# --------------------------------------------------------------------------- yield
@settings(max_examples=4, **_SETTINGS)
@given(_updates(TRACED, max_size=4), st.integers(0, 2**32 - 1))
def test_yield_bounds_and_chunk_invariance(updates, seed):
    sc = _scenario(updates)
    runs = [estimate_yield(sc, seed=seed, n_engines=4 * 4096, chunk_blocks=c) for c in (1, 2, 4)]
    a = runs[0]
    for b in runs[1:]:
        assert b.counts == a.counts and b.attribution == a.attribution
    for level in (a.lane, a.engine, a.switch):
        assert 0.0 <= level.lo <= level.value <= level.hi <= 1.0, level


@settings(max_examples=3, **_SETTINGS)
@given(updates=_updates(TRACED, max_size=3))
def test_yield_cli_exit_codes(tmp_path_factory, updates):
    out = tmp_path_factory.mktemp("run")
    argv = ["yield", "--engines", "4096", "--json", "--quiet", "--out", str(out)]
    for k, v in updates.items():
        argv += ["--set", f"{k}={_toml(v)}"]
    code = main(argv)
    assert code in (0, 2, 3), (updates, code)
    if code == 0:
        res = _strict_json((out / "yield.json").read_text())
        for level in ("lane", "engine", "switch"):
            y, (lo, hi) = res[level]["yield"], res[level]["ci"]
            assert 0.0 <= lo <= y <= hi <= 1.0


@settings(max_examples=30, **_SETTINGS)
@given(
    st.sampled_from(["yield", "sensitivity", "optimize", "link", "scenario"]),
    st.lists(
        st.sampled_from(
            [
                "--engines=0",
                "--engines=-5",
                "--seed=-1",
                "--samples=0",
                "--steps=0",
                "--target-yield=1.5",
                "--target-yield=nan",
                "--set=design.ring.bias_nm=nan",
                "--set=design.ring.nonexistent=1",
                "--set=spread.fiber_offset_um.die=-1",
                "--set=system.lanes_per_engine=7",
                "--config=/nonexistent.toml",
                "--level=switch",
                "--free=qqq.zzz",
                "--chunk-blocks=0",
                "--devices=0",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_bad_arguments_never_traceback(verb, args):
    """Bad values for any verb: exit 2 (argparse's own usage errors are SystemExit 2),
    never a traceback or an internal-error exit."""
    try:
        code = main([verb, *args])
    except SystemExit as e:  # argparse: unknown option for this verb, missing required
        assert e.code == 2
        return
    assert code == 2, (verb, args, code)
