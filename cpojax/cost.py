"""Cost models: what a process target costs, and (later) what a good switch costs.

Sections:

1. **Process cost items** (used by :func:`cpojax.process_opt.optimize_process`):
   the cost of moving one scenario value away from today's, per engine. This is
   the optimizer's objective today.
2. **Cost per good switch** (docs/cost.md): the manufacturing flow of a CPO switch —
   known-good-engine (KGE) test with imperfect coverage, attach yield, switch test,
   then rework (replace the engine, a geometric number of attempts) or scrap — and
   a pluggable switch, each as pure, differentiable functions of the engine yield
   and the scenario's ``[cost]`` section (:class:`cpojax.scenario.table.Cost`);
   energy over the service life (TCO); the breakeven engine yield; a switch-by-switch
   Monte Carlo of the same flow (a cross-check of the closed forms).
3. **From a scenario to the breakeven report**: the engine yield that enters the
   cost (parametric × functional factors when the yield engine reports them), the
   engine's electrical power from the physics, and :func:`analyse_breakeven`, the
   Python side of ``cpojax breakeven``.

The functions of sections 1 and 2 are pure functions of numbers (Python floats,
NumPy scalars or traced jnp scalars), so the optimizer differentiates through them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cpojax import variation
from cpojax.estimators.result import InvalidModelOutput
from cpojax.levels import LevelYield
from cpojax.physics.link import lane_budget
from cpojax.validate import as_count, check_scenario, resolve_key, resolve_seed
from cpojax.yields import estimate_yield

__all__ = ["COST_KINDS", "DEFAULT_COSTS", "check_cost_table", "item_cost"]

# =========================================================================== 1. process cost items
#: The kinds of process cost item (units: US$ per engine):
#:
#: * ``"inverse"``: ``c·v₀/v`` — for a spread σ: ``c`` is what holding today's
#:   spread v₀ costs, and halving the spread doubles it (tighter lithography,
#:   active instead of passive fiber alignment, wavelength binning of lasers);
#: * ``"linear"``: ``c·(v − v₀)`` per unit above today's value (more heater power
#:   needs bigger drivers and more energy; more laser current, more ELS power);
#: * ``"free"``: 0 whatever the value (the ring's design bias is a mask offset).
COST_KINDS: tuple[str, ...] = ("inverse", "linear", "free")

#: Default cost items, dotted scenario key → (kind, coefficient c in US$ per
#: engine). Rough engineering estimates [E], meant to be replaced by a fab's own
#: numbers (``costs=`` of :func:`cpojax.process_opt.optimize_process`).
DEFAULT_COSTS: dict[str, tuple[str, float]] = {
    "spread.ring_resonance_nm.wafer": ("inverse", 4.0),
    "spread.ring_resonance_nm.die": ("inverse", 4.0),
    "spread.ring_resonance_nm.lane": ("inverse", 2.0),
    "spread.fiber_offset_um.die": ("inverse", 3.0),
    "spread.fiber_offset_um.lane": ("inverse", 3.0),
    "spread.laser_wavelength_nm.wafer": ("inverse", 1.0),
    "spread.laser_wavelength_nm.lane": ("inverse", 1.0),
    "spread.laser_power_db.lane": ("inverse", 1.0),
    "spread.coupler_loss_db.lane": ("inverse", 1.0),
    "spread.ring_coupling_ln.die": ("inverse", 1.0),
    "spread.ring_coupling_ln.lane": ("inverse", 1.0),
    "spread.mod_efficiency_ln.lane": ("inverse", 1.0),
    "spread.heater_efficiency_ln.die": ("inverse", 1.0),
    "spread.heater_efficiency_ln.lane": ("inverse", 1.0),
    "design.ring.heater_max_mw": ("linear", 0.08),
    "design.laser.current_ma": ("linear", 0.02),
    "design.ring.drive_vpp": ("linear", 2.0),
    "design.ring.bias_nm": ("free", 0.0),
}


def item_cost(kind: str, c: float, v: Any, v0: float) -> Any:
    """Cost of one process item at value ``v`` (today's value ``v0``), US$ per engine.

    Args:
      kind: one of :data:`COST_KINDS`.
      c: coefficient, US$ per engine ("inverse": the cost at v = v0; "linear": per
        unit of the value above v0; ignored for "free").
      v: the value (Python float or traced jnp scalar); > 0 for "inverse".
      v0: today's value; > 0 for "inverse".

    Returns:
      ``c·v0/v`` ("inverse"), ``c·(v − v0)`` ("linear") or ``0·v`` ("free", a zero
      of v's type so that it stays differentiable).

    Raises:
      ValueError: an unknown kind.
    """
    if kind == "inverse":
        return c * v0 / v
    if kind == "linear":
        return c * (v - v0)
    if kind == "free":
        return 0.0 * v
    raise ValueError(f"cost kind must be one of {COST_KINDS}, got {kind!r}")


def check_cost_table(table: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """A cost table ``key → (kind, coefficient)`` checked entry by entry.

    Raises:
      ValueError: an entry that is not a (kind, number) pair, or an unknown kind;
        the message names the key.
    """
    out = {}
    for key, item in table.items():
        try:
            kind, c = item
        except (TypeError, ValueError):
            raise ValueError(
                f"cost item for {key} must be a pair (kind, coefficient), got {item!r}"
            ) from None
        if kind not in COST_KINDS:
            raise ValueError(f"cost kind for {key} must be inverse, linear or free, got {kind!r}")
        if isinstance(c, bool) or not isinstance(c, numbers.Real):
            raise ValueError(f"cost coefficient for {key} must be a number, got {c!r}")
        # Python numbers stay as given (they are written to JSON); NumPy ones → float.
        out[key] = (kind, c if type(c) in (int, float) else float(c))
    return out


# =========================================================================== 2. cost per good switch
#: Hours in a year of 365.25 days (energy over the service life).
HOURS_PER_YEAR = 8766.0

#: The failure policies of a package whose switch test finds a bad engine.
FAILURE_POLICIES: tuple[str, ...] = ("scrap", "rework")


def _num(x: Any) -> Any:
    """Python and NumPy numbers as np.float64 (so that 1/0 is inf, not an exception);
    JAX arrays and tracers unchanged (they stay differentiable)."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return np.float64(x)
    return x


def kge_pass_rate(*, engine_yield: Any, test_coverage: Any) -> Any:
    """Fraction of built engines that pass the known-good-engine test.

    ``q = y + (1 − y)·(1 − c)``: every good engine passes (no overkill), a bad one
    escapes with probability 1 − c.

    Args:
      engine_yield: y, probability that a built engine is good.
      test_coverage: c, probability that the test rejects a bad engine.
    """
    y = _num(engine_yield)
    return y + (1.0 - y) * (1.0 - test_coverage)


def escape_rate(*, engine_yield: Any, test_coverage: Any) -> Any:
    """Defect level of tested engines: fraction of KGE-passed engines that are bad.

    ``DL = (1 − y)(1 − c) / (y + (1 − y)(1 − c))`` — the defect level of tested
    parts with "faulty-circuit coverage" c (Williams & Brown, IEEE Trans. Comput.
    30, 987 (1981); R. David, *Random Testing of Digital Circuits*, ch. 4).
    """
    y = _num(engine_yield)
    escaped = (1.0 - y) * (1.0 - test_coverage)
    return escaped / (y + escaped)


def attached_good_rate(*, engine_yield: Any, test_coverage: Any, attach_yield: Any) -> Any:
    """Probability that a KGE-passed engine is good once attached to the package.

    ``s = a·y/q`` with q from :func:`kge_pass_rate`: the engine is good (y/q among
    those that passed) and the attach leaves it good (a); a bad engine stays bad.
    """
    y = _num(engine_yield)
    return attach_yield * y / kge_pass_rate(engine_yield=y, test_coverage=test_coverage)


class CpoFlow(NamedTuple):
    """Expected quantities per good CPO switch (all differentiable in the inputs).

    Attributes:
      kge_pass_rate: q, fraction of built engines passing the KGE test.
      escape_rate: fraction of KGE-passed engines that are bad.
      attached_good_rate: s, probability an attached engine is good.
      clean_package_rate: s^N, fraction of packages with no bad engine at switch test.
      engines_built_per_good_switch: engines built (and KGE-tested) per good switch.
      packages_per_good_switch: packages used per good switch (1 with rework).
      reworks_per_good_switch: rework attempts per good switch (0 with scrap).
      package_usd, engines_usd, rework_usd, lasers_usd: the parts of ``capex_usd``
        (packages, engines with their tests, rework labour, external lasers), US$.
      capex_usd: capital cost per good switch, US$.
    """

    kge_pass_rate: Any
    escape_rate: Any
    attached_good_rate: Any
    clean_package_rate: Any
    engines_built_per_good_switch: Any
    packages_per_good_switch: Any
    reworks_per_good_switch: Any
    package_usd: Any
    engines_usd: Any
    rework_usd: Any
    lasers_usd: Any
    capex_usd: Any


def _policy(cost: Any, failure_policy: str | None) -> str:
    policy = cost.failure_policy if failure_policy is None else failure_policy
    if policy not in FAILURE_POLICIES:
        raise ValueError(f"failure_policy must be 'scrap' or 'rework', got {policy!r}")
    return policy


def cpo_flow(
    *,
    engine_yield: Any,
    cost: Any,
    engines_per_switch: int,
    engine_extra_usd: Any = 0.0,
    failure_policy: str | None = None,
) -> CpoFlow:
    """Cost per good CPO switch through the manufacturing flow, closed form.

    Flow (docs/cost.md#flow): build an engine (E = ``engine_usd`` +
    ``engine_extra_usd``), KGE-test it (T = ``engine_test_usd``, coverage c), attach
    the N = ``engines_per_switch`` engines that passed to the package (P =
    ``package_usd``; a good engine stays good with probability a = ``attach_yield``),
    test the switch (perfect, locates the bad engines), then

    * ``scrap``: a package with any bad engine is scrapped with all its engines::

          C = (P + N·k) / s^N + L

    * ``rework``: each bad engine is replaced by a new KGE-passed engine at
      R = ``rework_usd`` plus the engine; an attempt succeeds with probability
      r·s (r = ``rework_yield``), so a bad slot takes a geometric number of
      attempts with mean 1/(r·s)::

          C = P + N·k + N·(1 − s)·(R + k)/(r·s) + L

    with k = (E + T)/q the cost of one KGE-passed engine, q = 1 − c·(1 − y)
    (:func:`kge_pass_rate`), s = a·y/q (:func:`attached_good_rate`) and L =
    ``laser_modules_per_switch``·``laser_module_usd`` (external lasers plugged after
    the switch test, never scrapped with a package). With c = 1 and a = 1 both give
    P + L + N·(E + T)/y.

    Args:
      engine_yield: y in (0, 1], the probability that a built engine is good (the
        parametric × functional engine yield, see :func:`cost_engine_yield`).
      cost: the scenario's ``[cost]`` section (:class:`cpojax.scenario.table.Cost`)
        or any object with its attributes (floats or traced scalars).
      engines_per_switch: N.
      engine_extra_usd: added to ``engine_usd`` (the process cost change of an
        optimised process, US$ per engine).
      failure_policy: "scrap" or "rework"; default ``cost.failure_policy``.

    Returns:
      :class:`CpoFlow` (``capex_usd`` is the cost per good switch). y → 0 gives inf
      (y = 0 exactly with perfect coverage is 0/0: NaN).
    """
    policy = _policy(cost, failure_policy)
    y = _num(engine_yield)
    n = engines_per_switch
    q = kge_pass_rate(engine_yield=y, test_coverage=cost.test_coverage)
    s = attached_good_rate(
        engine_yield=y, test_coverage=cost.test_coverage, attach_yield=cost.attach_yield
    )
    k = (cost.engine_usd + engine_extra_usd + cost.engine_test_usd) / q
    clean = s**n
    lasers = cost.laser_modules_per_switch * cost.laser_module_usd
    if policy == "scrap":
        packages = 1.0 / clean
        package_usd = cost.package_usd * packages
        engines_usd = n * k * packages
        reworks = 0.0 * y
        rework_usd = 0.0 * y
        built = n * packages / q
    else:
        packages = 1.0 + 0.0 * y
        reworks = n * (1.0 - s) / (cost.rework_yield * s)
        package_usd = cost.package_usd * packages
        engines_usd = n * k + reworks * k
        rework_usd = reworks * cost.rework_usd
        built = (n + reworks) / q
    capex = package_usd + engines_usd + rework_usd + lasers
    return CpoFlow(
        kge_pass_rate=q,
        escape_rate=escape_rate(engine_yield=y, test_coverage=cost.test_coverage),
        attached_good_rate=s,
        clean_package_rate=clean,
        engines_built_per_good_switch=built,
        packages_per_good_switch=packages,
        reworks_per_good_switch=reworks,
        package_usd=package_usd,
        engines_usd=engines_usd,
        rework_usd=rework_usd,
        lasers_usd=lasers + 0.0 * y,
        capex_usd=capex,
    )


def cpo_capex_usd(
    *,
    engine_yield: Any,
    cost: Any,
    engines_per_switch: int,
    engine_extra_usd: Any = 0.0,
    failure_policy: str | None = None,
) -> Any:
    """Capital cost per good CPO switch, US$ (``cpo_flow(...).capex_usd``)."""
    return cpo_flow(
        engine_yield=engine_yield,
        cost=cost,
        engines_per_switch=engines_per_switch,
        engine_extra_usd=engine_extra_usd,
        failure_policy=failure_policy,
    ).capex_usd


def pluggable_capex_usd(*, cost: Any, engines_per_switch: int) -> Any:
    """Capital cost per pluggable switch, US$: ``H + N·M/p``.

    H = ``pluggable_host_usd`` (switch with cages and the electrical reach), N
    modules of the engine's capacity at M = ``pluggable_module_usd`` before their
    final test, of which a fraction p = ``pluggable_yield`` passes: a bad module is
    scrapped alone, so a good one costs M/p.
    """
    return cost.pluggable_host_usd + engines_per_switch * cost.pluggable_module_usd / _num(
        cost.pluggable_yield
    )


def energy_usd(*, watts: Any, cost: Any) -> Any:
    """Electricity cost of a constant load over the service life, US$.

    ``W·PUE·8766 h/yr·years·price/1000`` (no discounting).
    """
    return (
        _num(watts) * cost.pue * HOURS_PER_YEAR * cost.service_years * cost.energy_usd_per_kwh
    ) / 1000.0


def cpo_tco_usd(
    *,
    engine_yield: Any,
    engine_w: Any,
    cost: Any,
    engines_per_switch: int,
    engine_extra_usd: Any = 0.0,
    failure_policy: str | None = None,
) -> Any:
    """Capital + energy over the service life per good CPO switch, US$.

    ``engine_w``: electrical power of one engine including its lasers' share (from
    the physics, :func:`engine_power_w`).
    """
    capex = cpo_capex_usd(
        engine_yield=engine_yield,
        cost=cost,
        engines_per_switch=engines_per_switch,
        engine_extra_usd=engine_extra_usd,
        failure_policy=failure_policy,
    )
    return capex + energy_usd(watts=engines_per_switch * _num(engine_w), cost=cost)


def pluggable_tco_usd(*, cost: Any, engines_per_switch: int) -> Any:
    """Capital + energy of the modules over the service life per pluggable switch, US$."""
    return pluggable_capex_usd(cost=cost, engines_per_switch=engines_per_switch) + energy_usd(
        watts=engines_per_switch * cost.pluggable_w_per_module, cost=cost
    )


class Breakeven(NamedTuple):
    """The engine yield at which CPO costs as much as pluggables.

    Attributes:
      engine_yield: the smallest y in (0, 1] with CPO cost ≤ pluggable cost, or None.
      reason: why there is none (None when there is one).
    """

    engine_yield: float | None
    reason: str | None


def breakeven_engine_yield(
    *,
    cost: Any,
    engines_per_switch: int,
    engine_w: float | None = None,
    engine_extra_usd: float = 0.0,
    failure_policy: str | None = None,
    tol: float = 1e-12,
) -> Breakeven:
    """Breakeven engine yield, capital only (``engine_w`` None) or capital + energy.

    The CPO cost falls monotonically with the engine yield while the pluggable
    cost does not depend on it, so the crossing is found by bisection on (0, 1]
    (float64, to ``tol`` in yield). None, with a reason, when CPO costs more even
    at engine yield 1.
    """
    n = engines_per_switch

    def cpo(y):
        if engine_w is None:
            return cpo_capex_usd(
                engine_yield=y,
                cost=cost,
                engines_per_switch=n,
                engine_extra_usd=engine_extra_usd,
                failure_policy=failure_policy,
            )
        return cpo_tco_usd(
            engine_yield=y,
            engine_w=engine_w,
            cost=cost,
            engines_per_switch=n,
            engine_extra_usd=engine_extra_usd,
            failure_policy=failure_policy,
        )

    if engine_w is None:
        target = float(pluggable_capex_usd(cost=cost, engines_per_switch=n))
    else:
        target = float(pluggable_tco_usd(cost=cost, engines_per_switch=n))
    what = "capital" if engine_w is None else "capital + energy"
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        at_one = float(cpo(1.0))
        if not at_one <= target:
            return Breakeven(
                None,
                f"CPO costs more than pluggables ({what}) even at engine yield 1: "
                f"{at_one:,.0f} $ against {target:,.0f} $ per switch",
            )
        lo, hi = 0.5, 1.0
        while float(cpo(lo)) <= target:  # walk down until CPO is dearer (f(0+) = inf)
            hi, lo = lo, lo / 2.0
            if lo < 1e-300:
                return Breakeven(
                    0.0, None
                )  # CPO no dearer at any yield (zero engine and test cost)
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if float(cpo(mid)) <= target:
                hi = mid
            else:
                lo = mid
    return Breakeven(hi, None)


class FlowMC(NamedTuple):
    """Switch-by-switch Monte Carlo of the CPO flow (:func:`simulate_flow`).

    Attributes:
      cost_per_good_switch_usd: mean cost of a good switch.
      se_usd: its standard error (switches are i.i.d.).
      n_switches: good switches simulated.
      engines_built_per_good_switch, packages_per_good_switch,
      reworks_per_good_switch: means over the switches.
    """

    cost_per_good_switch_usd: float
    se_usd: float
    n_switches: int
    engines_built_per_good_switch: float
    packages_per_good_switch: float
    reworks_per_good_switch: float

    def interval(self, z: float = 1.959963984540054) -> tuple[float, float]:
        """Normal interval mean ± z·se (default 95 %)."""
        m, h = self.cost_per_good_switch_usd, z * self.se_usd
        return (m - h, m + h)


def simulate_flow(
    *,
    engine_yield: float,
    cost: Any,
    engines_per_switch: int,
    n_switches: int,
    seed: int = 0,
    failure_policy: str | None = None,
) -> FlowMC:
    """Build ``n_switches`` good CPO switches one part at a time (NumPy), with costs.

    Every random event is drawn explicitly: each built engine is good with
    probability y; a bad one is rejected by the KGE test with probability c (the
    slot then takes the next engine); an attached good engine stays good with
    probability a; the switch test sees every bad slot. Scrap: the package and
    all its engines are lost and a new package is built. Rework: each bad slot
    gets a new KGE-passed engine and R of labour; the attempt succeeds when the
    rework succeeds (probability r) and the new engine is good after attach;
    otherwise the new engine is lost and the slot is reworked again. External
    lasers are added to each good switch. A cross-check of :func:`cpo_flow`.
    """
    policy = _policy(cost, failure_policy)
    gen = np.random.default_rng(seed)
    y, c, a = float(engine_yield), float(cost.test_coverage), float(cost.attach_yield)
    unit = float(cost.engine_usd) + float(cost.engine_test_usd)
    n = int(engines_per_switch)

    def tested_engines(count: int):
        """(good after attach, cost, engines built) of `count` KGE-passed engines."""
        good = np.zeros(count, bool)
        usd = np.zeros(count)
        built = np.zeros(count, np.int64)
        todo = np.arange(count)
        while todo.size:
            is_good = gen.random(todo.size) < y
            rejected = ~is_good & (gen.random(todo.size) < c)
            usd[todo] += unit
            built[todo] += 1
            good[todo[~rejected]] = is_good[~rejected]
            todo = todo[rejected]
        attached = good & (gen.random(count) < a)
        return attached, usd, built

    usd = np.zeros(n_switches)
    built = np.zeros(n_switches)
    packages = np.zeros(n_switches)
    reworks = np.zeros(n_switches)
    todo = np.arange(n_switches)
    while todo.size:  # one package per switch still to build
        good, e_usd, e_built = tested_engines(todo.size * n)
        good = good.reshape(todo.size, n)
        usd[todo] += float(cost.package_usd) + e_usd.reshape(todo.size, n).sum(axis=1)
        built[todo] += e_built.reshape(todo.size, n).sum(axis=1)
        packages[todo] += 1
        if policy == "scrap":
            todo = todo[~good.all(axis=1)]
            continue
        sw, _ = np.nonzero(~good)  # one entry per bad slot: its switch
        slots = todo[sw]
        while slots.size:
            ok, e_usd, e_built = tested_engines(slots.size)
            ok &= gen.random(slots.size) < float(cost.rework_yield)
            np.add.at(usd, slots, float(cost.rework_usd) + e_usd)
            np.add.at(built, slots, e_built)
            np.add.at(reworks, slots, 1)
            slots = slots[~ok]
        todo = todo[:0]
    usd += cost.laser_modules_per_switch * float(cost.laser_module_usd)
    return FlowMC(
        cost_per_good_switch_usd=float(usd.mean()),
        se_usd=float(usd.std(ddof=1) / math.sqrt(n_switches)),
        n_switches=int(n_switches),
        engines_built_per_good_switch=float(built.mean()),
        packages_per_good_switch=float(packages.mean()),
        reworks_per_good_switch=float(reworks.mean()),
    )


# =========================================================================== 3. scenario → report
def functional_factor(result: Any) -> LevelYield | None:
    """The functional (defect-limited and assembly) engine-yield factor a yield result
    reports, as a :class:`LevelYield`, or None when it reports none.

    Read from ``result.functional`` when present: a LevelYield or ``(value, lo, hi)``,
    a number (an exact factor), an object or mapping with an ``engine`` entry of
    those forms (:class:`cpojax.yields.YieldResult` reports ``{"pic", "eic", ...,
    "engine": factor}``, empty when ``system.functional_yield`` is off), or a
    mapping ``{"yield": v, "ci": [lo, hi]}``.
    """
    f = getattr(result, "functional", None)
    if not isinstance(f, LevelYield | tuple | numbers.Real | type(None)):
        f = f.get("engine") if isinstance(f, Mapping) else getattr(f, "engine", f)
    if f is None:  # none reported (an empty mapping: functional yield switched off)
        return None
    if isinstance(f, Mapping):
        f = (f["yield"], *f["ci"])
    if isinstance(f, numbers.Real):
        return LevelYield(float(f), float(f), float(f))
    if isinstance(f, tuple) and len(f) == 3:
        return LevelYield(*(float(v) for v in f))
    raise TypeError(f"cannot read a functional engine yield from {type(f).__name__}: {f!r}")


def cost_engine_yield(result: Any) -> tuple[LevelYield, str]:
    """The engine yield entering the cost model, and what it is made of.

    ``parametric × functional``: the Monte Carlo engine yield of
    :func:`cpojax.estimate_yield` (``result.engine``) times the functional factor
    when the result reports one (:func:`functional_factor`). The interval multiplies
    the bounds (both factors are monotone in the yield; the product of two 95 %
    intervals is conservative, not exact).
    """
    par = LevelYield(*(float(v) for v in result.engine))
    fun = functional_factor(result)
    if fun is None:
        return par, "parametric engine yield (no functional/defect yield reported)"
    return (
        LevelYield(par.value * fun.value, par.lo * fun.lo, par.hi * fun.hi),
        "parametric × functional engine yield",
    )


@functools.lru_cache(maxsize=8)
def _power_fn(n_engines: int):
    def fn(key, scenario):
        dev = variation.sample(key, scenario, n_engines)  # fields [n, lanes]
        flat = jax.tree_util.tree_map(lambda x: x.reshape(-1), dev)
        b = lane_budget(
            design=scenario.design,
            dev=flat,
            system=scenario.system,
            window=scenario.window,
            limits=scenario.limits,
        )
        lanes = scenario.system.lanes_per_engine
        lane_mw = jnp.mean(b.lane_power_mw, axis=-1).reshape(n_engines, lanes)  # window mean
        engine_w = jnp.sum(lane_mw, axis=-1) / 1000.0
        good = jnp.all(b.g >= 0, axis=-1).reshape(n_engines, lanes)
        engine_good = jnp.sum(good, axis=-1) >= lanes - scenario.system.spare_lanes
        return engine_w, engine_good

    return jax.jit(fn)


class EnginePower(NamedTuple):
    """Electrical power of one engine from the physics (:func:`engine_power_w`).

    Attributes:
      mean_w: mean over the simulated engines (the population), W.
      se_w: its standard error, W.
      good_mean_w: mean over the engines whose lanes all pass, W (NaN if none).
      n_engines: engines simulated.
    """

    mean_w: float
    se_w: float
    good_mean_w: float
    n_engines: int


def engine_power_w(scenario: Any, *, seed: int = 0, n_engines: int = 4096) -> EnginePower:
    """Mean electrical power of one engine, including its lasers, from the physics.

    For each of ``n_engines`` simulated engines (the first engines of the yield run
    with the same seed, :func:`cpojax.variation.sample`) the lane budget gives the
    lane's electrical power (laser wall power / lanes per laser, heater, driver,
    TIA, host interface; ``Budget.lane_power_mw``) at the four corners of the
    operating window; the engine's power is the sum over its lanes of the mean over
    the corners.

    Raises:
      InvalidModelOutput: the model returned NaN/inf power.
    """
    key, _ = resolve_key(None, seed)
    w, good = _power_fn(int(n_engines))(key, scenario)
    w, good = np.asarray(w, np.float64), np.asarray(good)
    if not np.all(np.isfinite(w)):
        raise InvalidModelOutput(
            f"lane power is NaN/inf for {int(np.sum(~np.isfinite(w)))} of {n_engines} engines"
        )
    good_mean = float(w[good].mean()) if good.any() else math.nan
    return EnginePower(
        mean_w=float(w.mean()),
        se_w=float(w.std(ddof=1) / math.sqrt(n_engines)) if n_engines > 1 else 0.0,
        good_mean_w=good_mean,
        n_engines=int(n_engines),
    )


def _f(x: Any) -> float:
    return float(x)


def usd_per_yield_point(
    *,
    engine_yield: float,
    cost: Any,
    engines_per_switch: int,
    engine_extra_usd: float = 0.0,
    failure_policy: str | None = None,
) -> float:
    """What one point (0.01) of engine yield is worth at ``engine_yield``, US$ per good
    switch: −dC/dy · 0.01 (central difference in float64, h = 1e-7)."""
    h = 1e-7

    def c(y):
        return float(
            cpo_capex_usd(
                engine_yield=y,
                cost=cost,
                engines_per_switch=engines_per_switch,
                engine_extra_usd=engine_extra_usd,
                failure_policy=failure_policy,
            )
        )

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return -(c(engine_yield + h) - c(engine_yield - h)) / (2 * h) * 0.01


def _position(y: LevelYield, b: Breakeven, what: str) -> str:
    if b.engine_yield is None:
        return f"no breakeven ({what}): {b.reason}"
    if y.lo >= b.engine_yield:
        return (
            f"above the {what} breakeven {b.engine_yield:.4f} (engine yield {y.value:.4f} "
            f"[{y.lo:.4f}, {y.hi:.4f}]): CPO is cheaper"
        )
    if y.hi < b.engine_yield:
        return (
            f"below the {what} breakeven {b.engine_yield:.4f} (engine yield {y.value:.4f} "
            f"[{y.lo:.4f}, {y.hi:.4f}]): CPO is dearer; it needs "
            f"+{b.engine_yield - y.value:.4f} of engine yield"
        )
    return (
        f"at the {what} breakeven {b.engine_yield:.4f}: the engine-yield interval "
        f"[{y.lo:.4f}, {y.hi:.4f}] contains it"
    )


def assumptions(scenario: Any, *, yield_source: str, power: EnginePower | None = None) -> list[str]:
    """The assumptions behind a breakeven report, one sentence each."""
    c = scenario.cost
    s = scenario.system
    out = [
        f"engine yield entering the cost: {yield_source}",
        "known-good-engine test: rejects a fraction cost.test_coverage "
        f"({c.test_coverage:g}) of bad engines and never a good one; escapes are attached",
        f"attach: a good engine stays good with probability cost.attach_yield ({c.attach_yield:g}); "
        "a bad engine stays bad",
        "switch test is perfect and locates every bad engine; the package without optics "
        "(cost.package_usd) is bought good, its own yield inside its price",
        f"engines of one switch are independent draws (engines of many wafers); "
        f"{s.engines_per_switch} engines of {s.lanes_per_engine} × {s.lane_rate_gbps:g} Gb/s",
    ]
    if c.failure_policy == "scrap":
        out.append(
            "failure policy scrap: a package with any bad engine is scrapped with all its engines"
        )
    else:
        out.append(
            "failure policy rework: each bad engine is replaced by a new KGE-passed engine at "
            f"cost.rework_usd ({c.rework_usd:g} $) plus the engine; an attempt succeeds with "
            f"cost.rework_yield ({c.rework_yield:g}) × the new engine being good after attach; "
            "a failed attempt loses the new engine, never the package; attempts repeat "
            "(geometric)"
        )
    out += [
        f"external lasers ({c.laser_modules_per_switch} × {c.laser_module_usd:g} $) are plugged "
        "after the switch test and never scrapped with a package",
        f"pluggables: cost.pluggable_module_usd ({c.pluggable_module_usd:g} $) is the cost "
        "before the module's final test; a bad module (1 − cost.pluggable_yield = "
        f"{1 - c.pluggable_yield:.3g}) is scrapped alone; with a purchase price of tested "
        "modules set cost.pluggable_yield = 1",
        "energy (TCO): optics power only, constant over cost.service_years "
        f"({c.service_years:g} y) at {c.energy_usd_per_kwh:g} $/kWh × PUE {c.pue:g}, no "
        "discounting; power common to both switches (ASIC, fans) is left out",
    ]
    if power is not None:
        out.append(
            f"CPO power from the physics: {power.mean_w:.3f} W per engine = mean lane electrical "
            "power (laser share, heater, driver, TIA, host interface) over the window's four "
            f"corners × {s.lanes_per_engine} lanes, {power.n_engines} simulated engines "
            f"(passing engines alone: {power.good_mean_w:.3f} W)"
        )
    out += [
        f"pluggable power {c.pluggable_w_per_module:g} W per module; the host SerDes that drives "
        "it is not counted while CPO power includes its host-interface share "
        "(conservative for CPO)",
        "no field failures, spares or repairs after shipment; no cost of capital",
        "prices and flow yields are defaults of docs/cost.md (press/analyst figures [S2] and "
        "estimates [E]); no vendor publishes engine yield or external-laser prices: sweep them",
    ]
    return out


def _scenario_block(
    scenario: Any, y: LevelYield, power: EnginePower, *, other_policy: bool = True
) -> dict[str, Any]:
    """cpo / pluggable / breakeven dicts of one scenario at engine yield y."""
    c = scenario.cost
    n = scenario.system.engines_per_switch
    tbps = n * scenario.system.lanes_per_engine * scenario.system.lane_rate_gbps / 1000.0
    w = power.mean_w
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        flow = cpo_flow(engine_yield=y.value, cost=c, engines_per_switch=n)
        capex_ci = [
            _f(cpo_capex_usd(engine_yield=y.hi, cost=c, engines_per_switch=n)),
            _f(cpo_capex_usd(engine_yield=y.lo, cost=c, engines_per_switch=n)),
        ]
        e_cpo = _f(energy_usd(watts=n * w, cost=c))
        tco = _f(flow.capex_usd) + e_cpo
        pl_capex = _f(pluggable_capex_usd(cost=c, engines_per_switch=n))
        pl_tco = _f(pluggable_tco_usd(cost=c, engines_per_switch=n))
    b_capex = breakeven_engine_yield(cost=c, engines_per_switch=n)
    b_tco = breakeven_engine_yield(cost=c, engines_per_switch=n, engine_w=w)
    cpo = {
        "cost_per_good_switch_usd": _f(flow.capex_usd),
        "cost_per_good_switch_ci_usd": capex_ci,
        "cost_per_tbps_usd": _f(flow.capex_usd) / tbps,
        "tco_per_good_switch_usd": tco,
        "tco_per_good_switch_ci_usd": [capex_ci[0] + e_cpo, capex_ci[1] + e_cpo],
        "tco_per_tbps_usd": tco / tbps,
        "energy_usd": e_cpo,
        "engine_power_w": w,
        "engine_power_se_w": power.se_w,
        "optics_power_w": n * w,
        "usd_per_engine_yield_point": usd_per_yield_point(
            engine_yield=y.value, cost=c, engines_per_switch=n
        ),
        "failure_policy": c.failure_policy,
        "flow": {k: _f(v) for k, v in flow._asdict().items()},
    }
    pluggable = {
        "cost_per_switch_usd": pl_capex,
        "cost_per_tbps_usd": pl_capex / tbps,
        "tco_per_switch_usd": pl_tco,
        "tco_per_tbps_usd": pl_tco / tbps,
        "energy_usd": pl_tco - pl_capex,
        "optics_power_w": n * c.pluggable_w_per_module,
    }
    breakeven = {
        "engine_yield_capex": b_capex.engine_yield,
        "engine_yield_capex_reason": b_capex.reason,
        "engine_yield_tco": b_tco.engine_yield,
        "engine_yield_tco_reason": b_tco.reason,
        "position_capex": _position(y, b_capex, "capital"),
        "position_tco": _position(y, b_tco, "capital + energy"),
        "cpo_saving_capex_usd": pl_capex - _f(flow.capex_usd),
        "cpo_saving_tco_usd": pl_tco - tco,
    }
    out = {"cpo": cpo, "pluggable": pluggable, "breakeven": breakeven, "capacity_tbps": tbps}
    if other_policy:
        other = "rework" if c.failure_policy == "scrap" else "scrap"
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            oc = _f(
                cpo_capex_usd(
                    engine_yield=y.value, cost=c, engines_per_switch=n, failure_policy=other
                )
            )
        out["other_policy"] = {
            "failure_policy": other,
            "cost_per_good_switch_usd": oc,
            "engine_yield_capex": breakeven_engine_yield(
                cost=c, engines_per_switch=n, failure_policy=other
            ).engine_yield,
            "engine_yield_tco": breakeven_engine_yield(
                cost=c, engines_per_switch=n, engine_w=w, failure_policy=other
            ).engine_yield,
        }
    return out


def cost_curves(
    scenario: Any, *, engine_w: float, y_min: float = 0.3, points: int = 201
) -> dict[str, list]:
    """CPO capital and TCO cost per good switch on a grid of engine yields in [y_min, 1],
    and the (flat) pluggable costs: the data of the breakeven figure."""
    c = scenario.cost
    n = scenario.system.engines_per_switch
    ys = np.linspace(y_min, 1.0, points)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        capex = np.asarray(cpo_capex_usd(engine_yield=ys, cost=c, engines_per_switch=n), float)
        e = float(energy_usd(watts=n * engine_w, cost=c))
    return {
        "engine_yield": ys.tolist(),
        "cpo_capex_usd": capex.tolist(),
        "cpo_tco_usd": (capex + e).tolist(),
        "pluggable_capex_usd": float(pluggable_capex_usd(cost=c, engines_per_switch=n)),
        "pluggable_tco_usd": float(pluggable_tco_usd(cost=c, engines_per_switch=n)),
    }


@dataclasses.dataclass(frozen=True)
class BreakevenResult:
    """Outcome of :func:`analyse_breakeven` (the ``cpojax breakeven`` JSON: :meth:`to_dict`).

    Attributes:
      engine_yield: the engine yield entering the cost, with its interval.
      yield_source: what it is (simulated parametric [× functional], or given).
      parts: the parametric and functional factors (None where not available).
      power: engine power from the physics.
      report: cpo / pluggable / breakeven / other_policy dicts (see :meth:`to_dict`).
      curves: the data of the figure (:func:`cost_curves`).
      assumptions: one sentence per assumption.
      cost: the scenario's ``[cost]`` section as a dict.
      compare: the same for a compared scenario (``--compare``), or None.
      wall_s: seconds spent.
    """

    engine_yield: LevelYield
    yield_source: str
    parts: dict[str, Any]
    power: EnginePower
    report: dict[str, Any]
    curves: dict[str, list]
    assumptions: list[str]
    cost: dict[str, Any]
    compare: dict[str, Any] | None
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        y = self.engine_yield
        return {
            "engine_yield": y.value,
            "engine_yield_ci": [y.lo, y.hi],
            "engine_yield_source": self.yield_source,
            "engine_yield_parts": self.parts,
            **self.report,
            "compare": self.compare,
            "assumptions": self.assumptions,
            "cost_parameters": self.cost,
            "curves": self.curves,
            "wall_s": self.wall_s,
        }


def _check_yield(name: str, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _yield_of(scenario, engine_yield, seed, n_engines, progress):
    if engine_yield is not None:
        y = _check_yield("engine_yield", engine_yield)
        return (
            LevelYield(y, y, y),
            "given (--engine-yield / engine_yield=), no interval",
            {"parametric": None, "functional": None},
        )
    res = estimate_yield(scenario, seed=seed, n_engines=n_engines, progress=progress)
    y, what = cost_engine_yield(res)
    fun = functional_factor(res)
    parts = {
        "parametric": LevelYield(*(float(v) for v in res.engine)).to_dict(),
        "functional": None if fun is None else fun.to_dict(),
    }
    return y, f"simulated {what}: {res.n_engines} engines, seed {res.seed}", parts


def analyse_breakeven(
    scenario: Any,
    *,
    engine_yield: float | None = None,
    seed: int = 0,
    n_engines: int = 65_536,
    power_engines: int = 4096,
    compare: Any = None,
    compare_label: str = "compared scenario",
    progress=None,
) -> BreakevenResult:
    """Cost per good switch, CPO against pluggables, and the breakeven engine yield.

    Args:
      scenario: the scenario (its ``[cost]`` section and physics).
      engine_yield: use this engine yield instead of simulating one (no interval).
      seed, n_engines: the Monte Carlo engine yield (:func:`cpojax.estimate_yield`).
      power_engines: engines for the mean engine power (:func:`engine_power_w`).
      compare: a second scenario (e.g. an optimizer's result) placed on the same
        curves, simulated with the same seed and engines (common random numbers).
      compare_label: its name in the output.
      progress: passed to :func:`cpojax.estimate_yield`.

    Returns:
      :class:`BreakevenResult`.
    """
    t0 = time.perf_counter()
    scenario = check_scenario(scenario)
    seed = resolve_seed(seed)
    n_engines = as_count("n_engines", n_engines)
    power_engines = as_count("power_engines", power_engines, 2)
    if compare is not None:
        compare = check_scenario(compare, "compare")
    y, source, parts = _yield_of(scenario, engine_yield, seed, n_engines, progress)
    power = engine_power_w(scenario, seed=seed, n_engines=power_engines)
    report = _scenario_block(scenario, y, power)
    cmp = None
    ys = [y.lo]
    if compare is not None:
        cy, csource, cparts = _yield_of(compare, None, seed, n_engines, progress)
        cpower = engine_power_w(compare, seed=seed, n_engines=power_engines)
        cmp = {
            "label": compare_label,
            "engine_yield": cy.value,
            "engine_yield_ci": [cy.lo, cy.hi],
            "engine_yield_source": csource,
            "engine_yield_parts": cparts,
            **_scenario_block(compare, cy, cpower, other_policy=False),
            "cost_parameters": _cost_dict(compare),
        }
        ys.append(cy.lo)
    be = [report["breakeven"]["engine_yield_capex"], report["breakeven"]["engine_yield_tco"]]
    y_min = min([0.5] + [v - 0.05 for v in ys] + [v - 0.1 for v in be if v is not None])
    curves = cost_curves(scenario, engine_w=power.mean_w, y_min=max(0.01, y_min))
    return BreakevenResult(
        engine_yield=y,
        yield_source=source,
        parts=parts,
        power=power,
        report=report,
        curves=curves,
        assumptions=assumptions(scenario, yield_source=source, power=power),
        cost=_cost_dict(scenario),
        compare=cmp,
        wall_s=time.perf_counter() - t0,
    )


def _cost_dict(scenario: Any) -> dict[str, Any]:
    return {f.name: getattr(scenario.cost, f.name) for f in dataclasses.fields(scenario.cost)}
