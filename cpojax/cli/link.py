"""`cpojax scenario` and `cpojax link`: the scenario as TOML, the nominal lane budget."""

from __future__ import annotations

import sys

from cpojax.budget import STAGES, nominal_budget
from cpojax.cli.common import LIMIT_TEXT, add_scenario_args, load_scenario, print_json

__all__ = ["register"]


def register(sub) -> None:
    sp = sub.add_parser("scenario", help="print the scenario as a commented TOML file")
    add_scenario_args(sp)
    sp.set_defaults(func=_cmd_scenario)
    lp = sub.add_parser("link", help="nominal lane budget at every operating corner")
    add_scenario_args(lp)
    lp.set_defaults(func=_cmd_link)


def _cmd_scenario(args) -> int:
    sc = load_scenario(args.config, args.set)
    sys.stdout.write(sc.to_toml())
    return 0


def _cmd_link(args) -> int:
    sc = load_scenario(args.config, args.set)
    rep = nominal_budget(sc)
    code = 0 if rep.passes else 1
    if args.json:
        print_json(rep.to_dict())
        return code
    corners = rep.corners
    head = [f"TE {c['engine_temp_c']:g}/TL {c['laser_temp_c']:g} °C" for c in corners]
    w = max(len(h) for h in head) + 2
    print(
        f"Nominal lane budget — {sc.system.lanes_per_engine} × {sc.system.lane_rate_gbps:g}G "
        f"{sc.system.modulation.upper()}, {sc.design.laser.wavelength_nm:g} nm, "
        f"1 laser : {sc.system.lanes_per_laser} lanes"
    )
    print(f"{'stage':<38}{'unit':>7}" + "".join(f"{h:>{w}}" for h in head))
    for key, label, unit in STAGES:
        vals = "".join(f"{c[key]:>{w}.3f}" for c in corners)
        print(f"{label:<38}{unit:>7}{vals}")
    r = rep.ring
    print(
        f"\nring: FSR {r['fsr_nm']:.2f} nm, FWHM {r['fwhm_nm'] * 1e3:.0f} pm, Q_L {r['loaded_q']:.0f}, "
        f"bandwidth {r['bandwidth_ghz']:.1f} GHz, lock detuning {r['lock_detuning_nm'] * 1e3:.0f} pm"
    )
    th = rep.thermal
    who = "worst compliant laser" if th.get("laser_mode") == "spec" else "paired laser"
    print(
        f"heater (the lock's resonance order, {who}): worst {rep.heater_worst_mw:.1f} mW of "
        f"{th.get('heater_max_mw', float('nan')):.1f} mW; self-heating "
        f"{th.get('self_heating_nm', 0.0):.2f} nm, neighbour heaters "
        f"{th.get('neighbour_shift_nm', 0.0):.2f} nm"
    )
    t, x = rep.tx, rep.rx
    if t and x:
        print(
            f"TX (worst corner): OMA into fiber {t['oma_out_dbm']:.2f} dBm, ER {t['er_db']:.2f} dB, "
            f"TDECQ-like {t['tdecq_db']:.2f} dB (compression {t['compression_db']:.2f}, bandwidth "
            f"{t['bandwidth_penalty_db']:.2f}), OMA − TDECQ {t['oma_minus_tdecq_dbm']:.2f} dBm"
        )
        print(
            f"RX (worst corner): OMA at PD {x['oma_rx_dbm']:.2f} dBm, sensitivity "
            f"{x['sensitivity_dbm']:.2f} dBm at BER {x['ber_threshold']:.2g} and "
            f"{x['symbol_rate_gbd']:g} GBd, RX penalty {x['rx_penalty_db']:.2f} dB, required "
            f"{x['required_oma_dbm']:.2f} dBm, margin {x['margin_db']:.2f} dB"
        )
    print("\nlimit states (g >= 0 passes):")
    for name, g in rep.limit_states.items():
        verdict = "PASS" if g >= 0 else "FAIL"
        print(
            f"  {verdict}  {name:<10} g = {g:+9.3f} {rep.limit_units[name]:<7} ({LIMIT_TEXT[name]})"
        )
    print(f"\nlane: {'PASS' if rep.passes else 'FAIL'}")
    return code
