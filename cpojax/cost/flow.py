"""Cost per good switch, closed form (docs/cost.md).

The manufacturing flow of a CPO switch — known-good-engine (KGE) test with imperfect
coverage, attach yield, switch test, then rework (replace the engine, a geometric
number of attempts) or scrap — and a pluggable switch, each as pure, differentiable
functions of the engine yield and the scenario's ``[cost]`` section
(:class:`cpojax.scenario.table.Cost`); energy over the service life (TCO); the
breakeven engine yield; the worth of one point of engine yield.

Pure functions of numbers (Python floats, NumPy scalars or traced jnp scalars), so the
optimizer differentiates through them. :mod:`cpojax.cost.simulate` cross-checks them
switch by switch.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FAILURE_POLICIES",
    "HOURS_PER_YEAR",
    "Breakeven",
    "CpoFlow",
    "attached_good_rate",
    "breakeven_engine_yield",
    "cpo_capex_usd",
    "cpo_flow",
    "cpo_tco_usd",
    "energy_usd",
    "escape_rate",
    "kge_pass_rate",
    "pluggable_capex_usd",
    "pluggable_tco_usd",
    "resolve_failure_policy",
    "usd_per_yield_point",
]

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


def resolve_failure_policy(cost: Any, failure_policy: str | None) -> str:
    """The failure policy in force: `failure_policy`, else ``cost.failure_policy``.

    Raises:
      ValueError: neither "scrap" nor "rework".
    """
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
    policy = resolve_failure_policy(cost, failure_policy)
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
