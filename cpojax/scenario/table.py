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
    "Laser",
    "Limits",
    "Power",
    "Receiver",
    "Ring",
    "ScenarioTable",
    "Spread",
    "Spreads",
    "System",
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
        106.25, "GBd", 1.0, 1000.0, "symbol rate (200G PAM4 with KP4 FEC)", "S"
    )
    lane_rate_gbps: float = _p(
        200.0, "Gb/s", 1.0, 2000.0, "payload bit rate per lane, for pJ/bit", "S"
    )
    tref_c: float = _p(
        25.0, "°C", -50.0, 150.0, "reference temperature of all temperature coefficients"
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
        0.5,
        "",
        0.0,
        1.0,
        "ELS electrical efficiency (driver + TEC) so wall power = I·V / this",
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
        46.0, "mW", 0.0, 1000.0, "largest heater power the driver can deliver", "E", lo_open=True
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
        3.5, "µA", 0.0, 100.0, "TIA input-referred noise, integrated rms (200G)", "E", lo_open=True
    )
    noise_bw_ghz: float = _p(
        53.0, "GHz", 1.0, 1000.0, "noise bandwidth for shot and RIN noise", "E"
    )
    penalty_db: float = _p(
        2.0, "dB", 0.0, 20.0, "implementation penalty (TDECQ-like): ISI, jitter, crosstalk", "E"
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
        2.0,
        "dB",
        0.0,
        30.0,
        "fiber plant: fiber array, 2 MPO, 500 m fiber (DR allocation ≤ 3 dB)",
        "E",
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
class Design:
    """The knobs an engineer chooses: every nominal value of the lane."""

    laser: Laser = dataclasses.field(default_factory=Laser)
    coupler: Coupler = dataclasses.field(default_factory=Coupler)
    ring: Ring = dataclasses.field(default_factory=Ring)
    receiver: Receiver = dataclasses.field(default_factory=Receiver)
    channel: Channel = dataclasses.field(default_factory=Channel)
    power: Power = dataclasses.field(default_factory=Power)


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
        2.4e-4,
        "",
        1e-20,
        0.5,
        "pre-FEC BER threshold (KP4 RS(544,514)); below 1e-20 float32 physics loses Q",
        "S",
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
MULTI_COMPONENT_SPREADS = ("fiber_offset_um", "coupler_loss_db")
# Spreads whose lane-level component is drawn per laser (cpojax.variation checks this).
PER_LASER_SPREADS = ("laser_power_db", "laser_wavelength_nm", "els_loss_db")
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
