"""The scenario's parameter table: every section of a scenario as a frozen pytree dataclass.

Every numeric field carries its unit, allowed range, a one-line description and
the source tag of physics.md ([S] source, [S2] press/vendor, [E] estimate) in its
dataclass metadata; the TOML writer, the validator and the CLI all read that one
table, so the documentation of a parameter cannot drift from its check. Every
allowed range is finite and inside float32's range, so a validated value stays
finite when the model evaluates it in float32.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax

__all__ = [
    "MULTI_COMPONENT_SPREADS",
    "PER_LASER_SPREADS",
    "SPREAD_LEVELS",
    "Channel",
    "Correlations",
    "Cost",
    "Coupler",
    "Design",
    "Els",
    "FiberArray",
    "Functional",
    "Laser",
    "Limits",
    "Power",
    "Receiver",
    "Ring",
    "ScenarioTable",
    "Spread",
    "Spreads",
    "System",
    "Thermal",
    "Window",
    "leaf_meta",
    "pytree_dataclass",
]

INF = math.inf


def _p(
    default,
    unit: str,
    lo: float,
    hi: float,
    doc: str,
    src: str = "E",
    *,
    lo_open=False,
    hi_open=False,
    choices: tuple[str, ...] | None = None,
):
    """Declare one scenario parameter with its metadata."""
    return dataclasses.field(
        default=default,
        metadata={
            "unit": unit,
            "lo": lo,
            "hi": hi,
            "doc": doc,
            "src": src,
            "lo_open": lo_open,
            "hi_open": hi_open,
            "choices": choices,
        },
    )


def pytree_dataclass(static: tuple[str, ...] = ()):
    """Frozen dataclass registered as a JAX pytree (fields in `static` are metadata)."""

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        jax.tree_util.register_dataclass(
            cls,
            data_fields=[n for n in names if n not in static],
            meta_fields=[n for n in names if n in static],
        )
        return cls

    return wrap


# --------------------------------------------------------------------------- system
@pytree_dataclass(
    static=(
        "lanes_per_engine",
        "engines_per_switch",
        "lanes_per_laser",
        "spare_lanes",
        "modulation",
        "symbol_rate_gbd",
        "lane_rate_gbps",
        "tref_c",
        "laser_mode",
        "els_cooled",
        "els_power_control",
        "self_heating",
        "fiber_array",
        "fiber_map",
        "thermal_coupling",
        "ring_response",
        "pam4_levels",
        "extra_spreads",
        "functional_yield",
    )
)
class System:
    """Architecture of the engine and switch (structural, not differentiable)."""

    lanes_per_engine: int = _p(
        8, "lanes", 1, 1024, "optical lanes per engine (8 × 200G = 1.6T)", "S2"
    )
    engines_per_switch: int = _p(
        72, "engines", 1, 4096, "engines per switch (115.2T: 4 ASICs × 18)", "S2"
    )
    lanes_per_laser: int = _p(
        4, "lanes", 1, 64, "lanes fed by one external-laser DFB through a 1:N splitter", "S2"
    )
    spare_lanes: int = _p(
        0,
        "lanes",
        0,
        1023,
        "spare lanes per engine: an engine passes when at least lanes − spares pass",
    )
    modulation: str = _p("pam4", "", 0, 0, "line code", "S", choices=("pam4", "nrz"))
    symbol_rate_gbd: float = _p(
        113.4375,
        "GBd",
        1.0,
        1000.0,
        "symbol rate (200G/lane PAM4 optics with the 802.3dj inner FEC; 106.25 with KP4 only)",
        "S2",
    )
    lane_rate_gbps: float = _p(
        200.0, "Gb/s", 1.0, 2000.0, "payload bit rate per lane, for pJ/bit", "S"
    )
    tref_c: float = _p(
        25.0, "°C", -50.0, 150.0, "reference temperature of all temperature coefficients"
    )
    # ---- model switches (issue 9; the legacy value of each reproduces the former model)
    laser_mode: str = _p(
        "spec",
        "",
        0,
        0,
        "spec: the engine must lock to and pass with any laser of the ELS spec (design.els; "
        "field-replaceable ELS); paired: only with the laser it was tested with (legacy)",
        "E",
        choices=("spec", "paired"),
    )
    els_cooled: bool = _p(
        False,
        "",
        0,
        0,
        "true: the ELS laser is held at design.els.setpoint_c (no wavelength or power drift); "
        "false: it follows window.laser_temp_*",
    )
    els_power_control: bool = _p(
        True,
        "",
        0,
        0,
        "true: the ELS regulates its output to design.els.power_class_dbm (APC); false: fixed "
        "drive current design.laser.current_ma (legacy)",
    )
    self_heating: bool = _p(
        True, "", 0, 0, "ring optical self-heating red-shifts the resonance at lock"
    )
    fiber_array: str = _p(
        "rigid",
        "",
        0,
        0,
        "rigid: the fiber array is a rigid body (translation, gap, roll, yaw, pitch acting on "
        "each fiber at its slot); translation: a pure per-axis translation (legacy)",
        "E",
        choices=("rigid", "translation"),
    )
    fiber_map: str = _p(
        "grouped",
        "",
        0,
        0,
        "fiber-array slots: grouped = [TX 0..L−1 | laser-in | RX 0..L−1]; interleaved = "
        "[TX0 RX0 TX1 RX1 … | laser-in in the middle]",
        "E",
        choices=("grouped", "interleaved"),
    )
    thermal_coupling: bool = _p(
        True,
        "",
        0,
        0,
        "heater-to-heater thermal crosstalk and the on-die lane temperature map (engine level)",
    )
    ring_response: str = _p(
        "cmt",
        "",
        0,
        0,
        "ring small-signal response: cmt = detuning-dependent second order (coupled-mode "
        "theory); first_order = one photon-lifetime pole (legacy)",
        "E",
        choices=("cmt", "first_order"),
    )
    pam4_levels: str = _p(
        "four",
        "",
        0,
        0,
        "four: all four PAM4 levels through the ring's nonlinear transfer (level compression); "
        "outer: only the two outer levels (legacy)",
        "E",
        choices=("four", "outer"),
    )
    extra_spreads: bool = _p(
        True,
        "",
        0,
        0,
        "sample splitter imbalance, group index, heater resistance, DFB aging and TX penalty "
        "spreads (false: those spreads are not drawn)",
    )
    functional_yield: bool = _p(
        True,
        "",
        0,
        0,
        "report defect-limited and assembly yield (section functional) next to parametric",
    )


# --------------------------------------------------------------------------- design
@pytree_dataclass()
class Laser:
    """External laser source (ELS) DFB; one laser feeds `lanes_per_laser` lanes."""

    current_ma: float = _p(
        155.0, "mA", 0.0, 2000.0, "drive current (fixed, not power-controlled)", "E", lo_open=True
    )
    ith_ma: float = _p(20.0, "mA", 0.0, 500.0, "threshold current at T_ref", "E", lo_open=True)
    slope_w_per_a: float = _p(0.32, "W/A", 0.0, 2.0, "slope efficiency at T_ref", "E", lo_open=True)
    t0_k: float = _p(
        60.0, "K", 1.0, 1000.0, "characteristic temperature of I_th (1.3-µm InGaAsP)", "S"
    )
    t1_k: float = _p(
        200.0, "K", 1.0, 10000.0, "characteristic temperature of slope efficiency", "E"
    )
    v0_v: float = _p(0.9, "V", 0.0, 5.0, "diode turn-on voltage", "E")
    series_ohm: float = _p(1.5, "Ω", 0.0, 100.0, "series resistance", "E")
    supply_efficiency: float = _p(
        0.8,
        "",
        0.0,
        1.0,
        "ELS electrical efficiency (driver; TEC if cooled) so wall power = I·V / this "
        "(uncooled ≈ 0.8, cooled ≈ 0.5)",
        "E",
        lo_open=True,
    )
    wavelength_nm: float = _p(1311.0, "nm", 1200.0, 1700.0, "DFB wavelength at T_ref", "S")
    dlambda_dt_nm_per_k: float = _p(0.1, "nm/K", 0.0, 1.0, "DFB wavelength drift", "S")
    rin_db_hz: float = _p(
        -145.0, "dB/Hz", -200.0, -100.0, "relative intensity noise (spec ≤ −136)", "E"
    )


@pytree_dataclass(static=("kind",))
class Coupler:
    """Fiber-to-chip couplers (laser-in, signal-out, signal-in): one design, three samples."""

    kind: str = _p(
        "edge",
        "",
        0,
        0,
        "coupler type: a label; the physics follows from MFD, loss, gap, tilt",
        "S",
        choices=("edge", "grating"),
    )
    chip_mfd_um: float = _p(
        6.0, "µm", 0.5, 30.0, "chip-side mode field diameter (spot-size converter)", "S"
    )
    fiber_mfd_um: float = _p(
        9.2, "µm", 0.5, 30.0, "fiber mode field diameter (SMF-28 at 1310 nm)", "S"
    )
    gap_um: float = _p(3.0, "µm", 0.0, 1000.0, "axial gap (index-matching epoxy)", "E")
    tilt_deg: float = _p(0.0, "deg", -10.0, 10.0, "nominal tilt", "E")
    n_medium: float = _p(1.45, "", 1.0, 4.0, "index of the gap medium (1 = air)", "E")
    n_fiber: float = _p(1.4677, "", 1.0, 4.0, "effective index of the fiber mode", "S")
    n_chip: float = _p(1.45, "", 1.0, 4.0, "index at the chip facet (oxide-clad converter)", "E")
    intrinsic_loss_db: float = _p(
        1.2, "dB", 0.0, 20.0, "coupler loss at perfect alignment (edge 1–2 dB/facet)", "S"
    )


@pytree_dataclass()
class Ring:
    """Micro-ring modulator, its heater and its drive."""

    radius_um: float = _p(5.0, "µm", 1.0, 100.0, "ring radius (FSR ≈ 12.7 nm at 5 µm)", "E")
    group_index: float = _p(4.3, "", 1.0, 6.0, "group index", "E")
    loss_db_per_cm: float = _p(
        60.0, "dB/cm", 0.0, 1000.0, "propagation loss of the doped ring (Q_i ≈ 15k)", "E"
    )
    power_coupling: float = _p(
        0.08, "", 0.0, 1.0, "bus-ring power coupling κ²", "E", lo_open=True, hi_open=True
    )
    dlambda_dt_nm_per_k: float = _p(
        0.07, "nm/K", 0.0, 0.5, "resonance thermal drift κ_R (O-band 60–70 pm/K)", "S"
    )
    bias_nm: float = _p(
        6.0,
        "nm",
        -100.0,
        100.0,
        "as-drawn resonance blue of the laser at T_ref (heater pulls it red)",
        "E",
    )
    mod_efficiency_pm_per_v: float = _p(
        50.0, "pm/V", 0.0, 1000.0, "resonance shift per volt of drive", "E", lo_open=True
    )
    drive_vpp: float = _p(2.0, "V", 0.0, 10.0, "peak-to-peak drive swing", "E", lo_open=True)
    electrical_bw_ghz: float = _p(
        70.0, "GHz", 1.0, 1000.0, "driver + junction electrical bandwidth", "E"
    )
    heater_efficiency_nm_per_mw: float = _p(
        0.25,
        "nm/mW",
        0.0,
        10.0,
        "heater tuning efficiency (non-undercut 0.1–0.3)",
        "S",
        lo_open=True,
    )
    heater_max_mw: float = _p(
        90.0,
        "mW",
        0.0,
        1000.0,
        "largest heater power the driver can deliver (sized for FSR + window span: spec laser)",
        "E",
        lo_open=True,
    )
    self_heating_nm_per_mw: float = _p(
        0.2,
        "nm/mW",
        0.0,
        10.0,
        "resonance red shift per mW of optical power absorbed in the ring (system.self_heating)",
        "E",
    )
    absorbed_fraction: float = _p(
        0.8,
        "",
        0.0,
        1.0,
        "share of the ring's round-trip loss absorbed as heat (free carriers) vs scattered",
        "E",
    )
    tx_penalty_db: float = _p(
        2.0,
        "dB",
        0.0,
        20.0,
        "TX implementation penalty (TDECQ-like) beyond the modelled ring bandwidth and PAM4 "
        "compression: driver ISI, jitter, noise",
        "E",
    )


@pytree_dataclass()
class Receiver:
    """Ge photodiode + TIA."""

    responsivity_a_per_w: float = _p(0.85, "A/W", 0.0, 1.2, "Ge PD responsivity", "S", lo_open=True)
    dark_na: float = _p(50.0, "nA", 0.0, 1e5, "dark current at T_ref (median)", "E")
    dark_doubling_k: float = _p(
        10.0, "K", 1.0, 100.0, "temperature rise that doubles the dark current", "E"
    )
    tia_noise_ua: float = _p(
        5.0,
        "µA",
        0.0,
        100.0,
        "TIA input-referred noise, integrated rms (2.7 µA at 37 GHz × (57/37)^1.5 at 113 GBd)",
        "E",
        lo_open=True,
    )
    noise_bw_ghz: float = _p(
        57.0, "GHz", 1.0, 1000.0, "noise bandwidth for shot and RIN noise (≈ symbol rate/2)", "E"
    )
    penalty_db: float = _p(
        2.0,
        "dB",
        0.0,
        20.0,
        "RX implementation penalty: RX ISI and equaliser, jitter, crosstalk (the TX side is "
        "design.ring.tx_penalty_db)",
        "E",
    )


@pytree_dataclass()
class Channel:
    """Passive optical path outside the ring and the couplers."""

    els_loss_db: float = _p(
        0.6, "dB", 0.0, 20.0, "ELS → engine: front-panel connector and fiber", "E"
    )
    splitter_excess_db: float = _p(0.2, "dB", 0.0, 5.0, "excess loss per 1:2 splitter stage", "E")
    tx_waveguide_db: float = _p(0.5, "dB", 0.0, 20.0, "on-chip routing loss, TX path", "S")
    rx_waveguide_db: float = _p(0.3, "dB", 0.0, 20.0, "on-chip routing loss, RX path", "S")
    plant_loss_db: float = _p(
        3.0,
        "dB",
        0.0,
        30.0,
        "fiber plant: 500 m fiber and connectors at the DR channel allocation (IEEE 802.3 "
        "DR: max channel insertion loss 3 dB)",
        "S",
    )


@pytree_dataclass()
class Power:
    """Electrical power per lane besides laser and heater."""

    driver_mw: float = _p(150.0, "mW", 0.0, 10000.0, "MRM driver", "E")
    tia_mw: float = _p(120.0, "mW", 0.0, 10000.0, "TIA and limiting/linear amplifier", "E")
    interface_pj_per_bit: float = _p(
        3.0, "pJ/bit", 0.0, 100.0, "host electrical interface share (SerDes)", "E"
    )


@pytree_dataclass()
class Els:
    """External laser source as an interface spec (system.laser_mode = "spec").

    OIF ELSFP DR-class window 1304.5–1317.5 nm and the VHP power class 20 ± 1.5 dBm per
    fiber, power-regulated [S] (docs/model.md#external-laser-source).
    """

    window_center_nm: float = _p(
        1311.0, "nm", 1200.0, 1700.0, "centre of the spec wavelength window (DR: 1311)", "S"
    )
    window_half_width_nm: float = _p(
        6.5,
        "nm",
        0.0,
        50.0,
        "half-width of the spec window over life and temperature (DR: 1304.5–1317.5 → 6.5)",
        "S",
    )
    power_class_dbm: float = _p(
        20.0,
        "dBm",
        -10.0,
        30.0,
        "nominal output power per ELS fiber (power class; APC setpoint when regulated)",
        "S",
    )
    power_tolerance_db: float = _p(
        1.5, "dB", 0.0, 10.0, "± tolerance of the power class (spec: worst = class − this)", "S"
    )
    eol_guard_db: float = _p(
        0.5,
        "dB",
        0.0,
        10.0,
        "end-of-life power guard band: the lane must pass with the laser this much weaker",
        "E",
    )
    aging_nm: float = _p(
        0.1,
        "nm",
        0.0,
        5.0,
        "largest lifetime wavelength drift of a compliant laser the lock must track (spec)",
        "E",
    )
    setpoint_c: float = _p(
        45.0, "°C", -55.0, 150.0, "laser temperature of a cooled ELS (system.els_cooled)", "E"
    )


@pytree_dataclass()
class FiberArray:
    """Fiber array as a rigid body (system.fiber_array = "rigid")."""

    pitch_um: float = _p(127.0, "µm", 1.0, 1000.0, "fiber pitch in the array (V-grooves)", "S")


@pytree_dataclass()
class Thermal:
    """Engine-level thermal coupling (system.thermal_coupling)."""

    crosstalk_nn: float = _p(
        0.06,
        "",
        0.0,
        0.24,
        "fraction of a heater's ring shift that reaches the nearest-neighbour ring",
        "E",
    )
    crosstalk_nnn: float = _p(
        0.015,
        "",
        0.0,
        0.12,
        "fraction of a heater's ring shift that reaches the next-nearest ring",
        "E",
    )
    lane_gradient_c: float = _p(
        3.0,
        "°C",
        -30.0,
        30.0,
        "temperature of the last lane minus the first at the top of the engine window "
        "(linear across the lanes, proportional to the load above the window's bottom)",
        "E",
    )


@pytree_dataclass()
class Design:
    """The knobs an engineer chooses: every nominal value of the lane."""

    laser: Laser = dataclasses.field(default_factory=Laser)
    coupler: Coupler = dataclasses.field(default_factory=Coupler)
    ring: Ring = dataclasses.field(default_factory=Ring)
    receiver: Receiver = dataclasses.field(default_factory=Receiver)
    channel: Channel = dataclasses.field(default_factory=Channel)
    power: Power = dataclasses.field(default_factory=Power)
    els: Els = dataclasses.field(default_factory=Els)
    fiber_array: FiberArray = dataclasses.field(default_factory=FiberArray)
    thermal: Thermal = dataclasses.field(default_factory=Thermal)


# --------------------------------------------------------------------------- spreads
@pytree_dataclass(static=("truncate_sigma",))
class Spread:
    """Standard deviation of one process variable at three levels (zero allowed).

    wafer: shared by every engine of a wafer (or lot); die: shared by the lanes of
    one engine; lane: independent per lane (for laser quantities: per laser, shared
    by the lanes it feeds). Units are those of the variable; log-normal variables
    (names ending in `_ln`) are in natural-log units (σ_ln ≈ relative spread).
    Each level is bounded by the upper bound of its spread in :class:`Spreads`
    (e.g. 20 nm for the ring resonance, 3 for a log-normal σ_ln): the INF below
    is replaced by that bound (:func:`leaf_meta`).
    """

    wafer: float = _p(0.0, "", 0.0, INF, "wafer-to-wafer standard deviation")
    die: float = _p(0.0, "", 0.0, INF, "die-to-die (engine-to-engine) standard deviation")
    lane: float = _p(0.0, "", 0.0, INF, "lane-to-lane standard deviation")
    truncate_sigma: float = _p(
        0.0, "σ", 0.0, 100.0, "truncate each level's normal at ±this many σ (0 = no truncation)"
    )


def _s(
    wafer=0.0,
    die=0.0,
    lane=0.0,
    truncate_sigma=0.0,
    *,
    unit: str,
    hi: float,
    doc: str,
    src: str = "E",
):
    """Declare one spread: its default σ per level and the unit and upper bound of every level."""
    return dataclasses.field(
        default_factory=lambda: Spread(wafer, die, lane, truncate_sigma),
        metadata={"unit": unit, "hi": hi, "doc": doc, "src": src},
    )


@pytree_dataclass()
class Spreads:
    """Process spreads of every random variable (physics.md, 'spreads')."""

    fiber_offset_um: Spread = _s(
        0.0,
        0.45,
        0.4,
        3.0,
        unit="µm",
        hi=10.0,
        doc="fiber placement error per axis (x, y) of every coupler; die level = the whole fiber array, lane = each fiber; passive placement ≈0.3–0.5 µm",
    )
    coupler_loss_db: Spread = _s(
        0.05, 0.1, 0.15, unit="dB", hi=10.0, doc="intrinsic coupler loss, each coupler"
    )
    laser_power_db: Spread = _s(
        0.2,
        0.0,
        0.3,
        unit="dB",
        hi=10.0,
        doc="DFB output power at fixed current (lane level = per laser)",
    )
    laser_wavelength_nm: Spread = _s(
        0.2, 0.0, 0.3, unit="nm", hi=20.0, doc="DFB wavelength offset δλ_L (lane level = per laser)"
    )
    els_loss_db: Spread = _s(
        0.0,
        0.0,
        0.15,
        unit="dB",
        hi=10.0,
        doc="ELS connector loss (lane level = per laser)",
        src="E",
    )
    ring_resonance_nm: Spread = _s(
        0.8,
        0.6,
        0.3,
        unit="nm",
        hi=20.0,
        doc="resonance fabrication shift δλ_fab (Zortman 2010: 0.84 nm within a die)",
        src="S",
    )
    ring_coupling_ln: Spread = _s(
        0.03, 0.06, 0.05, unit="ln", hi=3.0, doc="log of bus-ring power coupling κ² (gap variation)"
    )
    ring_loss_db_per_cm: Spread = _s(
        2.0,
        2.0,
        1.0,
        unit="dB/cm",
        hi=100.0,
        doc="ring propagation loss (doping, sidewall roughness)",
    )
    mod_efficiency_ln: Spread = _s(
        0.03, 0.03, 0.05, unit="ln", hi=3.0, doc="log of modulation efficiency (junction doping)"
    )
    heater_efficiency_ln: Spread = _s(
        0.03,
        0.03,
        0.03,
        unit="ln",
        hi=3.0,
        doc="log of heater efficiency (heater resistance, undercut)",
    )
    responsivity_ln: Spread = _s(
        0.02, 0.02, 0.03, unit="ln", hi=3.0, doc="log of PD responsivity (σ ≈ 5 %)", src="E"
    )
    dark_current_ln: Spread = _s(
        0.3, 0.3, 0.5, unit="ln", hi=3.0, doc="log of PD dark current (log-normal)"
    )
    tia_noise_ln: Spread = _s(
        0.02, 0.02, 0.03, unit="ln", hi=3.0, doc="log of TIA input noise current"
    )
    # ---- issue 9: drawn only with system.fiber_array = "rigid" (the four fiber_* array
    # spreads) or system.extra_spreads (the other five).
    fiber_array_roll_mrad: Spread = _s(
        0.0,
        0.7,
        0.0,
        3.0,
        unit="mrad",
        hi=50.0,
        doc="fiber-array roll about the optical axis: each fiber moves by roll × its distance "
        "from the array centre (die level = the array; keep lane at 0)",
    )
    fiber_array_yaw_mrad: Spread = _s(
        0.0,
        0.5,
        0.2,
        3.0,
        unit="mrad",
        hi=50.0,
        doc="fiber-array yaw: tilt in the array plane and a gap change of yaw × distance from "
        "the centre (lane level: each lane's V-groove angle)",
    )
    fiber_array_pitch_mrad: Spread = _s(
        0.0,
        0.5,
        0.2,
        3.0,
        unit="mrad",
        hi=50.0,
        doc="fiber-array pitch: tilt out of the array plane (lane level: each lane's V-groove)",
    )
    fiber_gap_um: Spread = _s(
        0.0,
        1.0,
        0.3,
        3.0,
        unit="µm",
        hi=20.0,
        doc="axial gap of each coupler (die level = the array standoff, lane = each fiber's "
        "end face); the gap is floored at 0",
    )
    splitter_imbalance_db: Spread = _s(
        0.0,
        0.0,
        0.15,
        unit="dB",
        hi=5.0,
        doc="1:N splitter port imbalance: loss of each lane's output port",
    )
    ring_group_index: Spread = _s(
        0.005,
        0.005,
        0.002,
        unit="",
        hi=0.5,
        doc="ring group index n_g (FSR and linewidth follow)",
    )
    heater_resistance_ln: Spread = _s(
        0.03,
        0.02,
        0.02,
        unit="ln",
        hi=3.0,
        doc="log of heater resistance: with the driver's voltage headroom fixed the heater "
        "delivers at most P_max = V²/R = heater_max_mw·exp(−dev)",
    )
    laser_aging_nm: Spread = _s(
        0.0,
        0.0,
        0.05,
        unit="nm",
        hi=5.0,
        doc="DFB lifetime wavelength drift the lock must track (lane level = per laser; "
        "paired laser mode)",
    )
    tx_penalty_db: Spread = _s(
        0.0,
        0.1,
        0.3,
        unit="dB",
        hi=10.0,
        doc="TX implementation penalty (TDECQ-like) of each lane; floored at 0",
    )


@pytree_dataclass(static=("wafer", "die", "lane"))
class Correlations:
    """Correlation coefficients between spread variables, one table per level.

    Each entry is ``(a, b, rho)`` with a, b names of single-component spreads
    (every spread except fiber_offset_um and coupler_loss_db) and |rho| < 1. In
    TOML: ``[correlation.die]`` with ``"ring_resonance_nm,ring_coupling_ln" = 0.3``.
    The resulting matrix must be positive definite.
    """

    wafer: tuple[tuple[str, str, float], ...] = ()
    die: tuple[tuple[str, str, float], ...] = ()
    lane: tuple[tuple[str, str, float], ...] = ()


# --------------------------------------------------------------------------- functional yield
@pytree_dataclass()
class Functional:
    """Defect-limited and assembly yield of an engine, reported next to parametric yield.

    Negative-binomial defect yield (Stapper 1983) per die, Y = (1 + A·D0/α)^(−α) (α → ∞:
    Poisson exp(−A·D0)), times the 3-D stack, fiber-attach and laser-connector yields
    (docs/model.md#functional-and-assembly-yield).
    """

    pic_area_mm2: float = _p(20.0, "mm²", 0.0, 10000.0, "photonic IC area per engine", "E")
    pic_d0_per_cm2: float = _p(
        0.15, "1/cm²", 0.0, 100.0, "killer-defect density of the photonic process", "E"
    )
    eic_area_mm2: float = _p(12.0, "mm²", 0.0, 10000.0, "electronic IC area per engine", "E")
    eic_d0_per_cm2: float = _p(
        0.1, "1/cm²", 0.0, 100.0, "killer-defect density of the electronic (CMOS) process", "E"
    )
    clustering_alpha: float = _p(
        2.0,
        "",
        0.05,
        1000.0,
        "defect clustering parameter α of the negative-binomial model (large α → Poisson)",
        "E",
    )
    stack_yield: float = _p(
        0.99, "", 0.0, 1.0, "3-D stacking / bonding yield of the EIC on the PIC per engine", "E"
    )
    fiber_attach_yield: float = _p(
        0.99, "", 0.0, 1.0, "fiber-array attach yield per engine (breakage, epoxy voids)", "E"
    )
    laser_connector_defect: float = _p(
        0.003,
        "",
        0.0,
        1.0,
        "probability that one laser-in connector is defective (contamination, damage); one "
        "per laser",
        "E",
    )


# --------------------------------------------------------------------------- window, limits
@pytree_dataclass()
class Window:
    """Operating window: the lane must pass at every temperature inside it."""

    engine_temp_min_c: float = _p(40.0, "°C", -55.0, 150.0, "lowest engine (ASIC-side) temperature")
    engine_temp_max_c: float = _p(85.0, "°C", -55.0, 150.0, "highest engine temperature")
    laser_temp_min_c: float = _p(25.0, "°C", -55.0, 150.0, "lowest ELS laser temperature")
    laser_temp_max_c: float = _p(55.0, "°C", -55.0, 150.0, "highest ELS laser temperature")


@pytree_dataclass(static=("allow_order_hop",))
class Limits:
    """Pass criteria of a lane (the heater maximum is a design value: design.ring.heater_max_mw)."""

    ber_threshold: float = _p(
        4.8e-3,
        "",
        1e-20,
        0.5,
        "BER threshold at the PMD: 4.8e-3 with the 802.3dj inner FEC of 200G/lane optics "
        "(2.4e-4 with KP4 RS(544,514) only); below 1e-20 float32 physics loses Q",
        "S2",
        hi_open=True,
    )
    er_floor_db: float = _p(3.5, "dB", 0.0, 30.0, "minimum dynamic extinction ratio", "S")
    power_budget_pj_per_bit: float = _p(
        6.0, "pJ/bit", 0.0, 1000.0, "lane electrical power budget", "S2", lo_open=True
    )
    allow_order_hop: bool = _p(
        False,
        "",
        0,
        0,
        "true: the lock may hop to the next resonance order inside the window (traffic hit); "
        "false: one order must stay lockable over the whole window (hitless)",
    )


# --------------------------------------------------------------------------- cost
@pytree_dataclass(static=("failure_policy", "laser_modules_per_switch"))
class Cost:
    """Manufacturing flow and prices of a switch, CPO against pluggables (docs/cost.md).

    Prices in US$ of one part; yields and coverage are probabilities. Sources:
    docs/cost.md (S2 sell-side and press figures, E assumptions to sweep).
    """

    engine_usd: float = _p(
        450.0,
        "$",
        0.0,
        1e6,
        "build cost of one 1.6T engine before its known-good-engine test",
        "S2",
    )
    engine_test_usd: float = _p(
        50.0, "$", 0.0, 1e5, "known-good-engine (KGE) test, per engine tested", "E"
    )
    test_coverage: float = _p(
        0.95, "", 0.0, 1.0, "fraction of bad engines the KGE test rejects (no good engine rejected)"
    )
    attach_yield: float = _p(
        0.995,
        "",
        0.0,
        1.0,
        "probability that attaching a good engine to the package leaves it good",
        lo_open=True,
    )
    package_usd: float = _p(
        15000.0,
        "$",
        0.0,
        1e7,
        "switch package without optics: ASIC(s), substrate, assembly, final test",
    )
    failure_policy: str = _p(
        "scrap",
        "",
        0,
        0,
        "a package with a bad engine after switch test: scrap it, or rework it (replace the engine)",
        choices=("scrap", "rework"),
    )
    rework_usd: float = _p(
        250.0, "$", 0.0, 1e6, "labour and risk of replacing one engine (new engine not included)"
    )
    rework_yield: float = _p(
        0.9, "", 0.0, 1.0, "probability that one rework attempt succeeds", lo_open=True
    )
    laser_module_usd: float = _p(
        650.0, "$", 0.0, 1e6, "one external laser module (ELS), field-replaceable", "S2"
    )
    laser_modules_per_switch: int = _p(
        18, "modules", 0, 4096, "external laser modules per switch", "S2"
    )
    pluggable_module_usd: float = _p(
        1200.0,
        "$",
        0.0,
        1e6,
        "one pluggable module of the engine's capacity, before its final test",
        "S2",
    )
    pluggable_yield: float = _p(
        0.99,
        "",
        0.0,
        1.0,
        "pluggable final-test yield (a bad module is scrapped alone)",
        lo_open=True,
    )
    pluggable_host_usd: float = _p(
        20000.0,
        "$",
        0.0,
        1e7,
        "pluggable switch without optics, with cages and the electrical reach pluggables need",
    )
    pluggable_w_per_module: float = _p(
        25.0, "W", 0.0, 1000.0, "electrical power of one pluggable module", "S2"
    )
    energy_usd_per_kwh: float = _p(0.08, "$/kWh", 0.0, 10.0, "electricity price", "S")
    pue: float = _p(1.3, "", 1.0, 5.0, "data-centre power usage effectiveness", "S2")
    service_years: float = _p(
        5.0, "years", 0.0, 50.0, "service life of a switch for energy cost", "S2", lo_open=True
    )


# --------------------------------------------------------------------------- the root
MULTI_COMPONENT_SPREADS = ("fiber_offset_um", "coupler_loss_db", "fiber_gap_um")
# Spreads whose lane-level component is drawn per laser (cpojax.variation checks this).
PER_LASER_SPREADS = ("laser_power_db", "laser_wavelength_nm", "els_loss_db", "laser_aging_nm")
# The fields of a Spread that are standard deviations (bounded per spread, see `_s`).
SPREAD_LEVELS = ("wafer", "die", "lane")


@dataclasses.dataclass(frozen=True)
class ScenarioTable:
    """The sections of a scenario (the fields of :class:`cpojax.scenario.Scenario`).

    A plain frozen dataclass: `Scenario` adds the methods and the pytree registration,
    so walking the table (dotted keys, the codec) needs no reference to `Scenario`.
    """

    system: System = dataclasses.field(default_factory=System)
    design: Design = dataclasses.field(default_factory=Design)
    spread: Spreads = dataclasses.field(default_factory=Spreads)
    correlation: Correlations = dataclasses.field(default_factory=Correlations)
    window: Window = dataclasses.field(default_factory=Window)
    limits: Limits = dataclasses.field(default_factory=Limits)
    functional: Functional = dataclasses.field(default_factory=Functional)
    cost: Cost = dataclasses.field(default_factory=Cost)


def leaf_meta(
    field: dataclasses.Field, owner: Any, owner_meta: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Metadata (unit, range, doc, source) of the leaf `field` of the section `owner`.

    The level fields of a :class:`Spread` (wafer, die, lane) take their unit and
    upper bound from the spread they belong to (`owner_meta`: the metadata of that
    spread's field in :class:`Spreads`).
    """
    meta = dict(field.metadata)
    if isinstance(owner, Spread) and field.name in SPREAD_LEVELS and owner_meta:
        meta["unit"] = owner_meta.get("unit", "")
        meta["hi"] = owner_meta.get("hi", meta["hi"])
    return meta
