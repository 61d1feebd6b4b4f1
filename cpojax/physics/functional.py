"""Functional (defect-limited) and assembly yield of an engine, next to parametric yield.

Parametric yield (every other module) asks whether a correctly built engine meets its
specs under process variation; functional yield asks whether it was built at all: a
killer defect on a die, a failed 3-D stack, a broken fiber attach, a bad laser connector.
The two are independent and multiply (Cunningham, IEEE Trans. Semicond. Manuf. 3, 60
(1990)).

Defect-limited die yield, negative binomial with clustering α (Stapper, IBM J. Res. Dev.
27, 549 (1983)):

    Y = (1 + A·D₀/α)^(−α),     α → ∞:  Y = exp(−A·D₀)  (Poisson, unclustered defects),

A the die area, D₀ the killer-defect density. Engine functional yield:

    Y_f = Y_PIC · Y_EIC · Y_stack · Y_attach · (1 − p_conn)^(N_lasers),

one laser-in connector per laser. Switch functional yield is Y_f^N (engines from many
wafers, like the parametric switch yield). docs/model.md#functional-and-assembly-yield.
"""

from __future__ import annotations

import math

__all__ = ["defect_yield", "engine_functional_yield"]


def defect_yield(*, area_mm2: float, d0_per_cm2: float, alpha: float) -> float:
    """Negative-binomial defect yield (1 + A·D₀/α)^(−α); Poisson exp(−A·D₀) for α >= 1e6."""
    lam = area_mm2 * 1e-2 * d0_per_cm2  # mm² → cm²
    if alpha >= 1e6:
        return math.exp(-lam)
    return (1.0 + lam / alpha) ** (-alpha)


def engine_functional_yield(functional, *, n_lasers: int) -> dict[str, float]:
    """Functional yield of one engine and its factors.

    Args:
      functional: the scenario's ``functional`` section.
      n_lasers: laser-in connectors per engine (lanes / lanes per laser).

    Returns:
      ``{"pic", "eic", "stack", "fiber_attach", "laser_connectors", "engine"}``.
    """
    f = functional
    a = float(f.clustering_alpha)
    out = {
        "pic": defect_yield(
            area_mm2=float(f.pic_area_mm2), d0_per_cm2=float(f.pic_d0_per_cm2), alpha=a
        ),
        "eic": defect_yield(
            area_mm2=float(f.eic_area_mm2), d0_per_cm2=float(f.eic_d0_per_cm2), alpha=a
        ),
        "stack": float(f.stack_yield),
        "fiber_attach": float(f.fiber_attach_yield),
        "laser_connectors": (1.0 - float(f.laser_connector_defect)) ** int(n_lasers),
    }
    y = 1.0
    for v in out.values():
        y *= v
    out["engine"] = y
    return out
