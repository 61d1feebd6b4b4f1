"""Nominal link budget of a scenario (the Python side of `cpojax link`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np

from cpojax import model
from cpojax.estimators.result import InvalidModelOutput
from cpojax.physics.link import lane_budget
from cpojax.scenario import Scenario
from cpojax.validate import check_scenario

__all__ = ["STAGES", "LinkBudget", "nominal_budget"]

# (field of Budget, row label, unit) in signal-chain order, for the table and JSON.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("laser_power_dbm", "laser output (per DFB)", "dBm"),
    ("laser_wpe", "laser wall-plug efficiency", ""),
    ("els_loss_db", "ELS → engine loss", "dB"),
    ("coupler_in_db", "laser-in coupler loss", "dB"),
    ("splitter_db", "1:N splitter loss", "dB"),
    ("tx_waveguide_db", "TX waveguide loss", "dB"),
    ("ring_in_dbm", "power at the ring", "dBm"),
    ("ring_il_db", "ring insertion loss at lock", "dB"),
    ("oma_ring_dbm", "OMA at ring output", "dBm"),
    ("coupler_out_db", "signal-out coupler loss", "dB"),
    ("oma_out_dbm", "OMA out (into fiber)", "dBm"),
    ("plant_loss_db", "channel (fiber plant) loss", "dB"),
    ("coupler_rx_db", "signal-in coupler loss", "dB"),
    ("rx_waveguide_db", "RX waveguide loss", "dB"),
    ("oma_rx_dbm", "OMA at the receiver (PD)", "dBm"),
    ("avg_rx_dbm", "average power at the PD", "dBm"),
    ("sensitivity_dbm", "sensitivity (OMA at BER threshold)", "dBm"),
    ("impl_penalty_db", "RX implementation penalty", "dB"),
    ("bandwidth_penalty_db", "ring/driver bandwidth penalty", "dB"),
    ("compression_db", "PAM4 level compression", "dB"),
    ("tx_penalty_db", "TX penalty (TDECQ-like, all TX terms)", "dB"),
    ("required_oma_dbm", "required OMA", "dBm"),
    ("margin_db", "optical margin", "dB"),
    ("er_db", "dynamic extinction ratio", "dB"),
    ("lane_temp_c", "ring / PD temperature", "°C"),
    ("self_heating_nm", "self-heating red shift", "nm"),
    ("neighbour_shift_nm", "shift from neighbour heaters", "nm"),
    ("heater_shift_nm", "heater red shift (lock order)", "nm"),
    ("heater_mw", "heater power (lock order)", "mW"),
    ("lane_power_mw", "lane electrical power", "mW"),
    ("pj_per_bit", "energy per bit", "pJ/bit"),
)


@dataclasses.dataclass(frozen=True)
class LinkBudget:
    """The nominal lane's budget.

    Attributes:
      passes: every limit state is >= 0.
      limit_states: {name: g} (worst over the window).
      limit_units: {name: unit of g}.
      corners: one dict per operating corner with every stage of :data:`STAGES`
        and the corner's engine and laser temperatures.
      ring: FSR, FWHM, loaded Q, bandwidth and lock detuning.
      heater_worst_mw: worst heater power over the window, for the resonance order the
        lock uses (spec laser: the worst compliant laser).
      tx: transmitter-side figures, worst corner: OMA into the fiber, dynamic ER, the
        TDECQ-like penalty (TX penalty + bandwidth + PAM4 compression), OMA − TDECQ, the
        level ratio 3·min(eye)/OMA.
      rx: receiver-side figures, worst corner: OMA at the PD, sensitivity, RX penalty,
        required OMA, margin, at the symbol rate and BER threshold of the scenario.
      thermal: heater worst and maximum, self-heating and neighbour shifts, laser mode.
    """

    passes: bool
    limit_states: dict[str, float]
    limit_units: dict[str, str]
    corners: list[dict[str, float]]
    ring: dict[str, float]
    heater_worst_mw: float
    tx: dict[str, float] = dataclasses.field(default_factory=dict)
    rx: dict[str, float] = dataclasses.field(default_factory=dict)
    thermal: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The `cpojax link --json` object (``pass`` is the verdict)."""
        return {
            "pass": self.passes,
            "limit_states": self.limit_states,
            "limit_units": self.limit_units,
            "corners": self.corners,
            "ring": self.ring,
            "heater_worst_mw": self.heater_worst_mw,
            "tx": self.tx,
            "rx": self.rx,
            "thermal": self.thermal,
        }


def _non_finite(corners, g, ring) -> list[str]:
    bad = [f"limit state {k}" for k, v in g.items() if not math.isfinite(v)]
    bad += sorted({k for c in corners for k, v in c.items() if not math.isfinite(v)})
    bad += [f"ring {k}" for k, v in ring.items() if not math.isfinite(v)]
    return bad


def nominal_budget(scenario: Scenario) -> LinkBudget:
    """Budget of the nominal lane (no spread) at every operating corner.

    Raises:
      InvalidModelOutput: a stage of the budget is NaN/inf (the message names it).
    """
    scenario = check_scenario(scenario)
    b = jax.jit(
        lambda d: lane_budget(
            design=d, system=scenario.system, window=scenario.window, limits=scenario.limits
        )
    )(scenario.design)
    b = jax.tree_util.tree_map(np.asarray, b)
    corners = []
    for i in range(b.engine_temp_c.shape[-1]):
        row = {"engine_temp_c": float(b.engine_temp_c[i]), "laser_temp_c": float(b.laser_temp_c[i])}
        row.update({k: float(getattr(b, k)[i]) for k, _, _ in STAGES})
        corners.append(row)
    g = {name: float(b.g[j]) for j, name in enumerate(model.LIMIT_NAMES)}
    ring = {
        "fsr_nm": float(b.fsr_nm),
        "fwhm_nm": float(b.fwhm_nm),
        "loaded_q": float(b.loaded_q),
        "bandwidth_ghz": float(b.ring_bw_ghz),
        "lock_detuning_nm": float(b.lock_detuning_nm),
    }
    mn = lambda k: float(np.min(getattr(b, k)))  # noqa: E731
    mx = lambda k: float(np.max(getattr(b, k)))  # noqa: E731
    tx = {
        "oma_out_dbm": mn("oma_out_dbm"),
        "er_db": mn("er_db"),
        "tdecq_db": mx("tx_penalty_db"),
        "oma_minus_tdecq_dbm": mn("oma_minus_tdecq_dbm"),
        "compression_db": mx("compression_db"),
        "level_ratio": mn("level_ratio"),
        "bandwidth_penalty_db": mx("bandwidth_penalty_db"),
    }
    rx = {
        "oma_rx_dbm": mn("oma_rx_dbm"),
        "sensitivity_dbm": mx("sensitivity_dbm"),
        "rx_penalty_db": mx("impl_penalty_db"),
        "required_oma_dbm": mx("required_oma_dbm"),
        "margin_db": mn("margin_db"),
        "symbol_rate_gbd": float(scenario.system.symbol_rate_gbd),
        "ber_threshold": float(scenario.limits.ber_threshold),
    }
    thermal = {
        "laser_mode": scenario.system.laser_mode,
        "heater_worst_mw": float(b.heater_worst_mw),
        "heater_max_mw": float(b.heater_max_mw),
        "self_heating_nm": mx("self_heating_nm"),
        "neighbour_shift_nm": mx("neighbour_shift_nm"),
        "nearer_red_edge": bool(float(b.thermal_red) > 0.5),
    }
    bad = _non_finite(corners, g, ring)
    bad += [f"tx {k}" for k, v in tx.items() if not math.isfinite(v)]
    bad += [f"rx {k}" for k, v in rx.items() if not math.isfinite(v)]
    if bad:
        raise InvalidModelOutput(
            "the nominal lane budget is NaN/inf in: " + ", ".join(bad) + "; check the scenario "
            "for values that break the physics"
        )
    return LinkBudget(
        passes=bool(all(v >= 0 for v in g.values())),
        limit_states=g,
        limit_units={ls.name: ls.unit for ls in model.LIMIT_STATES},
        corners=corners,
        ring=ring,
        heater_worst_mw=float(b.heater_worst_mw),
        tx=tx,
        rx=rx,
        thermal=thermal,
    )
