"""Switch-by-switch Monte Carlo of the CPO manufacturing flow (docs/cost.md).

Every part of every switch is drawn explicitly (NumPy): a cross-check of the closed
forms of :mod:`cpojax.cost.flow`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from cpojax.cost.flow import resolve_failure_policy

__all__ = ["FlowMC", "simulate_flow"]


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
    policy = resolve_failure_policy(cost, failure_policy)
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
