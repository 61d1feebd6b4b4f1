"""From a scenario to the breakeven report: :func:`analyse_breakeven`, the Python side
of ``cpojax breakeven`` (docs/cost.md).

The engine yield entering the cost (:mod:`cpojax.cost.inputs`), the engine's power from
the physics, the cost per good switch of CPO and pluggables (:mod:`cpojax.cost.flow`),
the breakeven engine yields, where the scenario sits, and the assumptions behind it.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Any

import numpy as np

from cpojax.cost.flow import (
    Breakeven,
    breakeven_engine_yield,
    cpo_capex_usd,
    cpo_flow,
    energy_usd,
    pluggable_capex_usd,
    pluggable_tco_usd,
    usd_per_yield_point,
)
from cpojax.cost.inputs import EnginePower, cost_engine_yield, engine_power_w, functional_factor
from cpojax.levels import LevelYield
from cpojax.validate import as_count, check_scenario, resolve_seed
from cpojax.yields import estimate_yield

__all__ = ["BreakevenResult", "analyse_breakeven", "assumptions", "cost_curves"]


def _f(x: Any) -> float:
    return float(x)


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
