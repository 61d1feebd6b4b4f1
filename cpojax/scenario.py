"""Scenario: what is built (design), how it varies (spreads), where it runs (window),
and what counts as a pass (limits). TOML load/save with strict validation.

Every numeric field carries its unit, allowed range, a one-line description and
the source tag of physics.md ([S] source, [S2] press/vendor, [E] estimate) in its
dataclass metadata; the TOML writer, the validator and the CLI all read that one
table, so the documentation of a parameter cannot drift from its check.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

import jax

__all__ = [
    "Channel",
    "Correlations",
    "Coupler",
    "Design",
    "Laser",
    "Limits",
    "Power",
    "Receiver",
    "Ring",
    "Scenario",
    "ScenarioError",
    "Spread",
    "Spreads",
    "System",
    "Window",
]

INF = math.inf


class ScenarioError(ValueError):
    """A scenario value or file is invalid; the message names the key and the allowed range."""


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


def _pytree(static: tuple[str, ...] = ()):
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
@_pytree(
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
@_pytree()
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


@_pytree(static=("kind",))
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


@_pytree()
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


@_pytree()
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


@_pytree()
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


@_pytree()
class Power:
    """Electrical power per lane besides laser and heater."""

    driver_mw: float = _p(150.0, "mW", 0.0, 10000.0, "MRM driver", "E")
    tia_mw: float = _p(120.0, "mW", 0.0, 10000.0, "TIA and limiting/linear amplifier", "E")
    interface_pj_per_bit: float = _p(
        3.0, "pJ/bit", 0.0, 100.0, "host electrical interface share (SerDes)", "E"
    )


@_pytree()
class Design:
    """The knobs an engineer chooses: every nominal value of the lane."""

    laser: Laser = dataclasses.field(default_factory=Laser)
    coupler: Coupler = dataclasses.field(default_factory=Coupler)
    ring: Ring = dataclasses.field(default_factory=Ring)
    receiver: Receiver = dataclasses.field(default_factory=Receiver)
    channel: Channel = dataclasses.field(default_factory=Channel)
    power: Power = dataclasses.field(default_factory=Power)


# --------------------------------------------------------------------------- spreads
@_pytree(static=("truncate_sigma",))
class Spread:
    """Standard deviation of one process variable at three levels (zero allowed).

    wafer: shared by every engine of a wafer (or lot); die: shared by the lanes of
    one engine; lane: independent per lane (for laser quantities: per laser, shared
    by the lanes it feeds). Units are those of the variable; log-normal variables
    (names ending in `_ln`) are in natural-log units (σ_ln ≈ relative spread).
    """

    wafer: float = _p(0.0, "", 0.0, INF, "wafer-to-wafer standard deviation")
    die: float = _p(0.0, "", 0.0, INF, "die-to-die (engine-to-engine) standard deviation")
    lane: float = _p(0.0, "", 0.0, INF, "lane-to-lane standard deviation")
    truncate_sigma: float = _p(
        0.0, "σ", 0.0, 100.0, "truncate each level's normal at ±this many σ (0 = no truncation)"
    )


def _s(wafer=0.0, die=0.0, lane=0.0, truncate_sigma=0.0, *, unit: str, doc: str, src: str = "E"):
    return dataclasses.field(
        default_factory=lambda: Spread(wafer, die, lane, truncate_sigma),
        metadata={"unit": unit, "doc": doc, "src": src},
    )


@_pytree()
class Spreads:
    """Process spreads of every random variable (physics.md, 'spreads')."""

    fiber_offset_um: Spread = _s(
        0.0,
        0.45,
        0.4,
        3.0,
        unit="µm",
        doc="fiber placement error per axis (x, y) of every coupler; die level = the whole fiber array, lane = each fiber; passive placement ≈0.3–0.5 µm",
    )
    coupler_loss_db: Spread = _s(
        0.05, 0.1, 0.15, unit="dB", doc="intrinsic coupler loss, each coupler"
    )
    laser_power_db: Spread = _s(
        0.2, 0.0, 0.3, unit="dB", doc="DFB output power at fixed current (lane level = per laser)"
    )
    laser_wavelength_nm: Spread = _s(
        0.2, 0.0, 0.3, unit="nm", doc="DFB wavelength offset δλ_L (lane level = per laser)"
    )
    els_loss_db: Spread = _s(
        0.0, 0.0, 0.15, unit="dB", doc="ELS connector loss (lane level = per laser)", src="E"
    )
    ring_resonance_nm: Spread = _s(
        0.8,
        0.6,
        0.3,
        unit="nm",
        doc="resonance fabrication shift δλ_fab (Zortman 2010: 0.84 nm within a die)",
        src="S",
    )
    ring_coupling_ln: Spread = _s(
        0.03, 0.06, 0.05, unit="ln", doc="log of bus-ring power coupling κ² (gap variation)"
    )
    ring_loss_db_per_cm: Spread = _s(
        2.0, 2.0, 1.0, unit="dB/cm", doc="ring propagation loss (doping, sidewall roughness)"
    )
    mod_efficiency_ln: Spread = _s(
        0.03, 0.03, 0.05, unit="ln", doc="log of modulation efficiency (junction doping)"
    )
    heater_efficiency_ln: Spread = _s(
        0.03, 0.03, 0.03, unit="ln", doc="log of heater efficiency (heater resistance, undercut)"
    )
    responsivity_ln: Spread = _s(
        0.02, 0.02, 0.03, unit="ln", doc="log of PD responsivity (σ ≈ 5 %)", src="E"
    )
    dark_current_ln: Spread = _s(
        0.3, 0.3, 0.5, unit="ln", doc="log of PD dark current (log-normal)"
    )
    tia_noise_ln: Spread = _s(0.02, 0.02, 0.03, unit="ln", doc="log of TIA input noise current")


@_pytree(static=("wafer", "die", "lane"))
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
@_pytree()
class Window:
    """Operating window: the lane must pass at every temperature inside it."""

    engine_temp_min_c: float = _p(40.0, "°C", -55.0, 150.0, "lowest engine (ASIC-side) temperature")
    engine_temp_max_c: float = _p(85.0, "°C", -55.0, 150.0, "highest engine temperature")
    laser_temp_min_c: float = _p(25.0, "°C", -55.0, 150.0, "lowest ELS laser temperature")
    laser_temp_max_c: float = _p(55.0, "°C", -55.0, 150.0, "highest ELS laser temperature")


@_pytree(static=("allow_order_hop",))
class Limits:
    """Pass criteria of a lane (the heater maximum is a design value: design.ring.heater_max_mw)."""

    ber_threshold: float = _p(
        2.4e-4,
        "",
        0.0,
        0.5,
        "pre-FEC BER threshold (KP4 RS(544,514))",
        "S",
        lo_open=True,
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


# --------------------------------------------------------------------------- scenario
@_pytree()
class Scenario:
    """A complete simulation scenario; `Scenario.default()` is the 1.6T engine of physics.md."""

    system: System = dataclasses.field(default_factory=System)
    design: Design = dataclasses.field(default_factory=Design)
    spread: Spreads = dataclasses.field(default_factory=Spreads)
    correlation: Correlations = dataclasses.field(default_factory=Correlations)
    window: Window = dataclasses.field(default_factory=Window)
    limits: Limits = dataclasses.field(default_factory=Limits)

    @classmethod
    def default(cls) -> Scenario:
        """The embedded default: 8 × 200G PAM4 MRM engine, ELS 1:4, edge couplers, 72/switch."""
        return cls()

    # ---- dotted access ---------------------------------------------------
    def get(self, key: str) -> Any:
        """Value at a dotted path, e.g. ``design.ring.bias_nm`` or ``spread.fiber_offset_um.die``."""
        obj: Any = self
        for part in _split_key(key):
            if not dataclasses.is_dataclass(obj) or part not in _field_names(obj):
                raise ScenarioError(f"unknown parameter {key!r}{_suggest(key)}")
            obj = getattr(obj, part)
        return obj

    def replace(self, updates: Mapping[str, Any]) -> Scenario:
        """New scenario with dotted-path values replaced, validated like a file."""
        tree = self.to_dict()
        for key, value in updates.items():
            parts = _split_key(key)
            node = tree
            for part in parts[:-1]:
                if (
                    not isinstance(node, dict)
                    or part not in node
                    or not isinstance(node[part], dict)
                ):
                    raise ScenarioError(f"unknown parameter {key!r}{_suggest(key)}")
                node = node[part]
            corr_entry = len(parts) == 3 and parts[0] == "correlation"
            if not corr_entry and (parts[-1] not in node or isinstance(node[parts[-1]], dict)):
                raise ScenarioError(f"unknown parameter {key!r}{_suggest(key)}")
            node[parts[-1]] = value
        return Scenario.from_dict(tree)

    # ---- dict / TOML -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain-Python dict of every value (loads back with :meth:`from_dict`)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Scenario | None = None) -> Scenario:
        """Build from a (possibly partial) nested dict on top of `base` (default scenario).

        Raises:
          ScenarioError: unknown key, wrong type, NaN/inf, value out of range, or an
            inconsistent combination; the message names the dotted key and the range.
        """
        if not isinstance(data, Mapping):
            raise ScenarioError("scenario must be a table of tables")
        sc = _from_dict(cls, data, base if base is not None else cls(), "")
        sc.check()
        return sc

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Scenario:
        """Parse TOML text (any subset of keys) on top of the default scenario."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{source}: malformed TOML: {e}") from None
        try:
            return cls.from_dict(data)
        except ScenarioError as e:
            raise ScenarioError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Scenario:
        """Load a TOML file (any subset of keys; the rest from the default)."""
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ScenarioError(
                f"cannot read scenario file {os.fspath(path)!r}: {e.strerror}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(f"{os.fspath(path)}: not UTF-8 text") from None
        return cls.from_toml(text, source=os.fspath(path))

    def to_toml(self, *, comments: bool = True) -> str:
        """Full TOML text with a comment per key (description, unit, allowed range, source)."""
        out = io.StringIO()
        if comments:
            out.write("# cpojax scenario. Every key is optional: missing keys take the default.\n")
            out.write("# Source tags: [S] published figure, [S2] press/vendor, [E] estimate.\n")
        _write_toml(self, out, [], comments)
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        """Write the full TOML atomically (temporary file + rename)."""
        atomic_write_text(path, self.to_toml())

    # ---- consistency -----------------------------------------------------
    def check(self) -> None:
        """Cross-field checks that single-field ranges cannot express."""
        s, w = self.system, self.window
        if s.lanes_per_engine % s.lanes_per_laser:
            raise ScenarioError(
                f"system.lanes_per_engine ({s.lanes_per_engine}) must be a multiple of "
                f"system.lanes_per_laser ({s.lanes_per_laser})"
            )
        if s.spare_lanes >= s.lanes_per_engine:
            raise ScenarioError(
                f"system.spare_lanes must be in [0, lanes_per_engine − 1 = {s.lanes_per_engine - 1}], "
                f"got {s.spare_lanes}"
            )
        ber_max = 0.375 if s.modulation == "pam4" else 0.5
        if not self.limits.ber_threshold < ber_max:
            raise ScenarioError(
                f"limits.ber_threshold must be in (0, {ber_max}) for {s.modulation.upper()} "
                f"(where the Gaussian BER formula reaches Q = 0), got {self.limits.ber_threshold}"
            )
        for a, b, _ in self.correlation.lane:
            if (a in PER_LASER_SPREADS) != (b in PER_LASER_SPREADS):
                raise ScenarioError(
                    f'correlation.lane."{a},{b}": a per-laser spread ({", ".join(PER_LASER_SPREADS)}) '
                    "can only be correlated with another per-laser spread at lane level"
                )
        for level in ("wafer", "die", "lane"):
            entries = getattr(self.correlation, level)
            if entries:
                names = sorted({n for a, b, _ in entries for n in (a, b)})
                idx = {n: i for i, n in enumerate(names)}
                m = [[1.0 if i == j else 0.0 for j in range(len(names))] for i in range(len(names))]
                for a, b, rho in entries:
                    m[idx[a]][idx[b]] = m[idx[b]][idx[a]] = rho
                import numpy as np

                if np.linalg.eigvalsh(np.asarray(m)).min() <= 1e-9:
                    raise ScenarioError(
                        f"correlation.{level}: the correlation matrix of {', '.join(names)} is not positive definite"
                    )
        if w.engine_temp_min_c > w.engine_temp_max_c:
            raise ScenarioError("window.engine_temp_min_c must be <= window.engine_temp_max_c")
        if w.laser_temp_min_c > w.laser_temp_max_c:
            raise ScenarioError("window.laser_temp_min_c must be <= window.laser_temp_max_c")

    def corners(self) -> tuple[tuple[float, float], ...]:
        """Operating corners (engine °C, laser °C): the four corners of the window."""
        w = self.window
        return tuple(
            (te, tl)
            for te in (w.engine_temp_min_c, w.engine_temp_max_c)
            for tl in (w.laser_temp_min_c, w.laser_temp_max_c)
        )


# --------------------------------------------------------------------------- helpers
def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to `path` via a temporary file in the same folder and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _split_key(key: str) -> list[str]:
    parts = key.strip().split(".")
    if not key or any(not p for p in parts):
        raise ScenarioError(
            f"malformed parameter name {key!r} (expected a dotted path such as design.ring.bias_nm)"
        )
    return parts


def _field_names(obj) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def iter_params(obj: Any = None, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """Yield (dotted key, field, value) for every leaf parameter of a scenario."""
    obj = Scenario() if obj is None else obj
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from iter_params(v, key + ".")
        else:
            yield key, f, v


def param_keys() -> list[str]:
    """Every valid dotted parameter key."""
    return [k for k, _, _ in iter_params()]


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, param_keys(), n=3, cutoff=0.6)
    return (
        f" (did you mean {', '.join(close)}?)" if close else " (run `cpojax scenario` for the list)"
    )


def _range_text(meta: Mapping[str, Any]) -> str:
    if meta.get("lo") == 0 and meta.get("hi") == 0 and not meta.get("choices"):
        return "true or false"
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    lo, hi = meta["lo"], meta["hi"]
    lb = "(" if meta.get("lo_open") else "["
    rb = ")" if meta.get("hi_open") or hi == INF else "]"
    hi_s = "inf" if hi == INF else f"{hi:g}"
    return f"{lb}{lo:g}, {hi_s}{rb}"


def _check_value(key: str, value: Any, default: Any, meta: Mapping[str, Any]) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"{key} must be true or false; got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ScenarioError(f"{key} must be a string, {_range_text(meta)}; got {value!r}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ScenarioError(f"{key} must be {_range_text(meta)}; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ScenarioError(f"{key} must be {kind} in {_range_text(meta)}; got {value!r}")
    if isinstance(default, int) and not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ScenarioError(f"{key} must be an integer in {_range_text(meta)}; got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(f"{key} must be a finite number in {_range_text(meta)}; got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    bad = (
        value < lo
        or value > hi
        or (meta.get("lo_open") and value == lo)
        or (meta.get("hi_open") and value == hi)
    )
    if bad:
        raise ScenarioError(
            f"{key} = {value!r} is out of range: allowed {_range_text(meta)} {meta['unit']}".rstrip()
        )
    return float(value) if isinstance(default, float) else value


MULTI_COMPONENT_SPREADS = ("fiber_offset_um", "coupler_loss_db")
# Spreads whose lane-level component is drawn per laser (cpojax.variation checks this).
PER_LASER_SPREADS = ("laser_power_db", "laser_wavelength_nm", "els_loss_db")


def _correlations_from_dict(data: Mapping[str, Any], prefix: str) -> Correlations:
    spreads = [f.name for f in dataclasses.fields(Spreads)]
    single = [n for n in spreads if n not in MULTI_COMPONENT_SPREADS]
    levels = {}
    for level, table in data.items():
        key = f"{prefix}{level}"
        if level not in ("wafer", "die", "lane"):
            raise ScenarioError(
                f"unknown parameter {key!r}: correlation levels are wafer, die, lane"
            )
        if not isinstance(table, Mapping):
            raise ScenarioError(f'{key} must be a table of "a,b" = rho entries')
        entries = []
        seen = set()
        for pair, rho in table.items():
            names = [x.strip() for x in str(pair).split(",")]
            if len(names) != 2 or names[0] == names[1]:
                raise ScenarioError(f'{key}."{pair}": expected two different spread names "a,b"')
            for n in names:
                if n not in single:
                    raise ScenarioError(
                        f'{key}."{pair}": {n!r} is not a single-component spread; allowed: {", ".join(single)}'
                    )
            if frozenset(names) in seen:
                raise ScenarioError(f'{key}."{pair}": pair given twice')
            seen.add(frozenset(names))
            if (
                isinstance(rho, bool)
                or not isinstance(rho, int | float)
                or not math.isfinite(rho)
                or abs(rho) >= 1
            ):
                raise ScenarioError(f'{key}."{pair}" must be a number in (-1, 1); got {rho!r}')
            entries.append((names[0], names[1], float(rho)))
        levels[level] = tuple(entries)
    return Correlations(**levels)


def _from_dict(cls, data: Mapping[str, Any], base: Any, prefix: str) -> Any:
    if cls is Correlations:
        merged = _to_dict(base)
        for level, table in data.items():
            if isinstance(table, Mapping) and isinstance(merged.get(level), dict):
                merged[level] = {**merged[level], **table}
            else:
                merged[level] = table
        return _correlations_from_dict(merged, prefix)
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k in data:
        if k not in names:
            key = f"{prefix}{k}"
            raise ScenarioError(f"unknown parameter {key!r}{_suggest(key)}")
    for name, f in names.items():
        key = f"{prefix}{name}"
        cur = getattr(base, name)
        if name not in data:
            kwargs[name] = cur
            continue
        val = data[name]
        if dataclasses.is_dataclass(cur):
            if not isinstance(val, Mapping):
                raise ScenarioError(f"{key} must be a table ([{key}]), got {val!r}")
            kwargs[name] = _from_dict(type(cur), val, cur, key + ".")
        else:
            if isinstance(val, Mapping):
                raise ScenarioError(f"{key} must be a value, not a table")
            meta = dict(f.metadata)
            if cls is Spread and name != "truncate_sigma":
                meta.setdefault("unit", "")
            kwargs[name] = _check_value(key, val, cur, meta)
    return cls(**kwargs)


def _to_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Correlations):
        return {
            level: {f"{a},{b}": rho for a, b, rho in getattr(obj, level)}
            for level in ("wafer", "die", "lane")
        }
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    r = repr(float(v))
    return r


def _write_toml(obj: Any, out: io.StringIO, path: list[str], comments: bool, meta=None) -> None:
    if isinstance(obj, Correlations):
        if comments:
            out.write("\n# Correlations between single-component spreads, per level:\n")
            out.write(
                '# "a,b" = rho with |rho| < 1, e.g. "ring_resonance_nm,ring_coupling_ln" = 0.3\n'
            )
        for level, table in _to_dict(obj).items():
            out.write(f"[{'.'.join([*path, level])}]\n")
            for pair, rho in table.items():
                out.write(f'"{pair}" = {_fmt(rho)}\n')
        return
    leaves = [
        f for f in dataclasses.fields(obj) if not dataclasses.is_dataclass(getattr(obj, f.name))
    ]
    tables = [f for f in dataclasses.fields(obj) if dataclasses.is_dataclass(getattr(obj, f.name))]
    if leaves:
        out.write(f"\n[{'.'.join(path)}]\n")
        if comments:
            doc = (meta or {}).get("doc") or (type(obj).__doc__ or "").strip().splitlines()[0]
            unit = (meta or {}).get("unit")
            src = (meta or {}).get("src")
            head = doc + (f" [{unit}]" if unit else "") + (f" [{src}]" if src and meta else "")
            out.write(f"# {head}\n")
        for f in leaves:
            v = getattr(obj, f.name)
            line = f"{f.name} = {_fmt(v)}"
            if comments:
                m = dict(f.metadata)
                unit = m.get("unit", "")
                if isinstance(obj, Spread):
                    unit = (meta or {}).get("unit", "") if f.name != "truncate_sigma" else "σ"
                note = f"{m.get('doc', '')}; {unit + ', ' if unit else ''}allowed {_range_text(m)}"
                if m.get("src") and not isinstance(obj, Spread):
                    note += f" [{m['src']}]"
                line = f"{line:<40} # {note}"
            out.write(line + "\n")
    for f in tables:
        _write_toml(getattr(obj, f.name), out, [*path, f.name], comments, f.metadata)
