"""Matplotlib figures from plain arrays / result dicts.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), not
``pyplot``: no global backend is chosen or changed at import, so a notebook keeps
its inline backend, the figures display there, and files are written by the
figure's own canvas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "bar_ranked",
    "breakeven_curves",
    "cost_trajectory",
    "failure_pareto",
    "heater_histogram",
    "margin_histogram",
    "optimize_trajectory",
    "save_atomic",
    "sweep_curves",
    "sweep_heatmap",
    "sweep_small_multiples",
    "yield_vs_lanes",
]


def save_atomic(fig, path: str) -> None:
    """Save a figure via a temporary file and an atomic rename, then close it."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=os.path.splitext(path)[1][1:])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _hist_axes(hist: Mapping[str, Any]):
    counts = np.asarray(hist["counts"], float)
    lo, hi = hist["lo"], hist["hi"]
    bins = len(counts) - 2
    edges = np.linspace(lo, hi, bins + 1)
    return edges, counts[1:-1], counts[0], counts[-1]


def margin_histogram(hist: Mapping[str, Any], *, title: str = "Optical margin (worst corner)"):
    """Histogram of the optical limit state (dB) with the pass line at 0."""
    edges, c, under, over = _hist_axes(hist)
    fig = Figure(figsize=(6.4, 4))
    ax = fig.subplots()
    centers = 0.5 * (edges[1:] + edges[:-1])
    ax.bar(centers, c, width=np.diff(edges), color=np.where(centers < 0, "tab:red", "tab:blue"))
    ax.axvline(0.0, color="k", ls="--", label="pass line (margin = 0 dB)")
    ax.set_yscale("log")
    ax.set_xlabel("optical margin [dB]")
    ax.set_ylabel("lanes")
    ax.set_title(
        title + (f"  (below range: {int(under)}, above: {int(over)})" if under or over else "")
    )
    ax.legend()
    return fig


def heater_histogram(hist: Mapping[str, Any], heater_max_mw: float):
    """Distribution of the worst-case heater power (from the thermal limit state) vs its maximum."""
    edges, c, under, over = _hist_axes(hist)
    beyond = int(under)  # g below range = heater power above the plotted range
    p_edges = heater_max_mw - edges[::-1]  # g = max − P  →  P = max − g
    c = c[::-1]
    fig = Figure(figsize=(6.4, 4))
    ax = fig.subplots()
    centers = 0.5 * (p_edges[1:] + p_edges[:-1])
    ax.bar(
        centers,
        c,
        width=np.diff(p_edges),
        color=np.where(centers > heater_max_mw, "tab:red", "tab:orange"),
    )
    ax.axvline(heater_max_mw, color="k", ls="--", label=f"heater maximum {heater_max_mw:g} mW")
    ax.set_xlabel("heater power needed at the worst temperature in the window [mW]")
    ax.set_ylabel("lanes")
    ax.set_title(
        "Heater power for thermal lock"
        + (f"  ({beyond} lanes beyond range)" if beyond else "")
        + (f" ({int(over)} below)" if over else "")
    )
    ax.legend()
    return fig


def yield_vs_lanes(
    simulated: Sequence[float],
    independent: Sequence[float],
    *,
    engines_per_switch: int | None = None,
):
    """Engine yield vs number of lanes: simulated (correlated lanes) vs lane_yield^k."""
    k = np.arange(1, len(simulated) + 1)
    fig = Figure(figsize=(6.4, 4))
    ax = fig.subplots()
    ax.plot(k, simulated, "o-", label="simulated (die-level variation shared)")
    ax.plot(k, independent, "s--", label="independent lanes: lane yield^k")
    ax.set_xlabel("lanes per engine")
    ax.set_ylabel("engine yield")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Yield compounding with lanes per engine")
    ax.legend()
    return fig


def failure_pareto(modes: Mapping[str, float], attribution: Mapping[str, Mapping[str, float]]):
    """Pareto of failures by limit state and by variable (excess E[z²|fail] − 1)."""
    fig = Figure(figsize=(11, 4))
    a1, a2 = fig.subplots(1, 2)
    names = sorted(modes, key=modes.get, reverse=True)
    vals = [modes[n] for n in names]
    a1.bar(names, vals, color="tab:red")
    a1.set_ylabel("share of failing lanes")
    a1.set_title("Failures by limit state")
    var = sorted(attribution, key=lambda n: attribution[n]["excess_z2"], reverse=True)
    ex = [attribution[n]["excess_z2"] for n in var]
    a2.barh(var[::-1], ex[::-1], color="tab:purple")
    a2.set_xlabel("E[z² | lane fails] − 1 (0 = unrelated)")
    a2.set_title("Which spread pushed failing lanes out")
    fig.tight_layout()
    return fig


def bar_ranked(labels: Sequence[str], values: Sequence[float], *, xlabel: str, title: str):
    """Horizontal bar chart of values ranked by magnitude."""
    order = np.argsort(np.abs(np.asarray(values)))
    fig = Figure(figsize=(7, 0.3 * len(labels) + 1.5))
    ax = fig.subplots()
    ax.barh([labels[i] for i in order], [values[i] for i in order], color="tab:green")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.axvline(0, color="k", lw=0.8)
    fig.tight_layout()
    return fig


def optimize_trajectory(
    history: Mapping[str, Sequence[float]], *, target: float, level: str
) -> Figure:
    """Yield, β = Φ⁻¹(yield) and cost per optimizer step, with the target line.

    Args:
      history: per-step ``yield``, ``beta`` and ``cost``.
      target: the yield aimed at, at `level` (for a switch target: its engine yield).
      level: the level of the plotted yield.
    """
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].plot(history["yield"])
    axes[0].axhline(target, color="k", ls="--")
    axes[0].set_title(f"{level} yield per step")
    axes[1].plot(history["beta"])
    axes[1].set_title("β = Φ⁻¹(yield)")
    axes[2].plot(history["cost"])
    axes[2].set_title("cost [$ per engine + 1]")
    for a in axes:
        a.set_xlabel("step")
    return fig


_LEVEL_COLORS = {"lane": "tab:blue", "engine": "tab:orange", "switch": "tab:green"}


def sweep_curves(x, bands: Mapping[str, Sequence], *, xlabel: str) -> Figure:
    """Yield vs one swept value at each level, with its 95 % interval as a band.

    Args:
      x: the swept values (one per point).
      bands: ``{level: (yield, lo, hi)}`` arrays, one entry per point.
      xlabel: the swept key.
    """
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for level, (y, lo, hi) in bands.items():
        c = _LEVEL_COLORS.get(level)
        y, lo, hi = (np.asarray(a, float)[order] for a in (y, lo, hi))
        ax.plot(x[order], y, "o-", ms=3, color=c, label=f"{level} yield")
        ax.fill_between(x[order], lo, hi, color=c, alpha=0.25, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("yield (band: 95 % interval)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Yield sweep (every point on the same engines)")
    ax.legend()
    fig.tight_layout()
    return fig


def _heatmap(ax, x, y, z, *, target: float, norm):
    """One yield heatmap z[len(x), len(y)] (x on the horizontal axis) with a target contour."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    x, y, z = x[ox], y[oy], np.asarray(z, float)[np.ix_(ox, oy)].T  # [ny, nx]
    mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap="viridis", norm=norm)
    if len(x) > 1 and len(y) > 1 and np.nanmin(z) < target < np.nanmax(z):
        cs = ax.contour(x, y, z, levels=[target], colors="white", linewidths=1.8)
        ax.clabel(cs, fmt={target: f"{target:g}"}, fontsize=8)
    return mesh


def sweep_heatmap(x, y, z, *, xlabel: str, ylabel: str, level: str, target: float) -> Figure:
    """Yield over two swept values, with the contour where it reaches `target`.

    Args:
      x, y: values of the first and second key.
      z: yield, shape [len(x), len(y)].
      level: the level of z (title and colour bar).
      target: the contour level.
    """
    from matplotlib.colors import Normalize

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    mesh = _heatmap(ax, x, y, z, target=target, norm=Normalize(0.0, 1.0))
    fig.colorbar(mesh, ax=ax, label=f"{level} yield")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{level} yield (white: {target:g} contour)")
    fig.tight_layout()
    return fig


def sweep_small_multiples(
    x, y, panels: Sequence, *, xlabel: str, ylabel: str, level: str, target: float
) -> Figure:
    """Heatmaps over two swept values, one panel per value of a third (shared colour scale).

    Args:
      x, y: values of the first and second key.
      panels: ``[(title, z[len(x), len(y)]), ...]``.
    """
    from matplotlib.colors import Normalize

    n = len(panels)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.6 * cols + 1, 3.2 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    mesh = None
    for ax, (title, z) in zip(axes, panels, strict=False):
        mesh = _heatmap(ax, x, y, z, target=target, norm=Normalize(0.0, 1.0))
        ax.set_title(title, fontsize=9)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols :]:
        ax.set_xlabel(xlabel)
    for ax in axes[::cols]:
        ax.set_ylabel(ylabel)
    fig.colorbar(mesh, ax=axes.tolist(), label=f"{level} yield")
    fig.suptitle(f"{level} yield (white: {target:g} contour)")
    return fig


def breakeven_curves(
    curves: Mapping[str, Any],
    *,
    engine_yield: Sequence[float],
    breakeven_capex: float | None,
    breakeven_tco: float | None,
    point_capex_usd: float,
    compare: Mapping[str, Any] | None = None,
) -> Figure:
    """CPO cost per good switch against engine yield, the flat pluggable costs, the
    crossovers, the scenario's engine yield with its interval and a compared point.

    Args:
      curves: ``engine_yield``, ``cpo_capex_usd``, ``cpo_tco_usd`` (lists) and
        ``pluggable_capex_usd``, ``pluggable_tco_usd`` (numbers), US$ per switch.
      engine_yield: ``(value, lo, hi)`` of the scenario.
      breakeven_capex, breakeven_tco: crossover engine yields (None: no crossing).
      point_capex_usd: the scenario's CPO capital cost per good switch.
      compare: ``{"label", "engine_yield": (value, lo, hi), "capex_usd"}`` or None.
    """
    ys = np.asarray(curves["engine_yield"], float)
    k = 1e-3
    capex = np.asarray(curves["cpo_capex_usd"], float) * k
    tco = np.asarray(curves["cpo_tco_usd"], float) * k
    pl_c, pl_t = curves["pluggable_capex_usd"] * k, curves["pluggable_tco_usd"] * k
    fig = Figure(figsize=(7.5, 4.6))
    ax = fig.subplots()
    ax.plot(ys, capex, color="tab:blue", label="CPO, capital per good switch")
    ax.plot(ys, tco, color="tab:blue", ls="--", label="CPO, capital + energy")
    ax.axhline(pl_c, color="tab:orange", label="pluggable, capital")
    ax.axhline(pl_t, color="tab:orange", ls="--", label="pluggable, capital + energy")
    for b, ls, name in ((breakeven_capex, "-", "capital"), (breakeven_tco, "--", "TCO")):
        if b is not None and ys[0] <= b <= ys[-1]:
            ax.axvline(b, color="k", ls=ls, lw=0.8)
            ax.annotate(
                f"{name} breakeven {b:.3f}",
                (b, 0.02),
                xycoords=("data", "axes fraction"),
                rotation=90,
                ha="right",
                va="bottom",
                fontsize=8,
            )
    y, lo, hi = engine_yield
    ax.axvspan(lo, hi, color="tab:green", alpha=0.25, lw=0)
    ax.plot([y], [point_capex_usd * k], "o", color="tab:green", label=f"scenario: {y:.4f}")
    if compare is not None:
        cy, clo, chi = compare["engine_yield"]
        ax.axvspan(clo, chi, color="tab:red", alpha=0.25, lw=0)
        ax.plot(
            [cy],
            [compare["capex_usd"] * k],
            "s",
            color="tab:red",
            label=f"{compare['label']}: {cy:.4f}",
        )
    top = 2.5 * max(pl_c, pl_t)
    ax.set_ylim(0, top)
    ax.set_xlim(ys[0], ys[-1] + 0.01 * (ys[-1] - ys[0]))  # room for a point at yield 1
    ax.set_xlabel("engine yield")
    ax.set_ylabel("cost per good switch [k$]")
    ax.set_title("CPO against pluggables")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def cost_trajectory(history: Mapping[str, Sequence[float]]) -> Figure:
    """Engine yield, cost per good switch and process cost per optimizer step
    (``cpojax optimize --objective cost-per-good-switch``).

    Args:
      history: per-step ``yield``, ``cost_per_good_switch`` (US$) and ``process_usd``
        (US$ per engine, change of the free items).
    """
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].plot(history["yield"])
    axes[0].set_title("engine yield per step (step estimate)")
    axes[1].plot(np.asarray(history["cost_per_good_switch"], float) / 1e3)
    axes[1].set_title("cost per good switch [k$]")
    axes[2].plot(history["process_usd"])
    axes[2].set_title("process cost change [$ per engine]")
    for a in axes:
        a.set_xlabel("step")
    fig.tight_layout()
    return fig
