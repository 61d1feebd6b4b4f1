"""Nominal link budget of a scenario (the Python side of `cpojax link`)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from cpojax.physics.link import LIMIT_STATES, lane_budget
from cpojax.scenario import Scenario

__all__ = ["STAGES", "nominal_budget"]

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
    ("impl_penalty_db", "implementation penalty", "dB"),
    ("bandwidth_penalty_db", "ring/driver bandwidth penalty", "dB"),
    ("required_oma_dbm", "required OMA", "dBm"),
    ("margin_db", "optical margin", "dB"),
    ("er_db", "dynamic extinction ratio", "dB"),
    ("heater_shift_nm", "heater red shift", "nm"),
    ("heater_mw", "heater power", "mW"),
    ("lane_power_mw", "lane electrical power", "mW"),
    ("pj_per_bit", "energy per bit", "pJ/bit"),
)

LIMIT_UNITS = {"optical": "dB", "thermal": "mW", "modulator": "dB", "power": "pJ/bit"}
LIMIT_TEXT = {
    "optical": "OMA at receiver − required OMA, worst corner",
    "thermal": "heater power to the nearest lock edge over the window (red: heater runs out; blue: ring crosses the laser)",
    "modulator": "dynamic ER − ER floor, worst corner",
    "power": "power budget − lane power, worst corner",
}


def nominal_budget(scenario: Scenario) -> dict[str, Any]:
    """Budget of the nominal lane (no spread) at every operating corner.

    Returns:
      JSON-friendly dict: ``pass`` (bool), ``limit_states`` {name: worst value},
      ``limit_units``, ``corners`` [one dict per corner with every stage],
      ``ring`` (FSR, FWHM, Q_L, bandwidth, lock detuning) and ``heater_worst_mw``.
    """
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
    g = {name: float(b.g[j]) for j, name in enumerate(LIMIT_STATES)}
    return {
        "pass": bool(all(v >= 0 for v in g.values())),
        "limit_states": g,
        "limit_units": dict(LIMIT_UNITS),
        "corners": corners,
        "ring": {
            "fsr_nm": float(b.fsr_nm),
            "fwhm_nm": float(b.fwhm_nm),
            "loaded_q": float(b.loaded_q),
            "bandwidth_ghz": float(b.ring_bw_ghz),
            "lock_detuning_nm": float(b.lock_detuning_nm),
        },
        "heater_worst_mw": float(b.heater_worst_mw),
    }
