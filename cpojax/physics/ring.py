"""All-pass micro-ring modulator (MRM): spectrum, resonance, modulation, heater lock.

Notation: a = single-pass amplitude transmission, r = self-coupling coefficient,
φ = round-trip phase (Bogaerts et al., "Silicon microring resonators", Laser
Photonics Rev. 6, 47 (2012), eqs. 1–9). Detunings are wavelengths [nm] measured
from the resonance; the laser sits on the blue side of the resonance
(detuning δ = λ_R − λ_L > 0), the thermally stable side with respect to
self-heating, which red-shifts the ring away from the laser.
"""

from __future__ import annotations

import jax.numpy as jnp

from cpojax.physics.ring_response import (
    bandwidth_penalty_db,
    cmt_bandwidth_ghz,
    cmt_bandwidth_penalty_db,
    cmt_rates,
    cmt_response,
    cmt_step_response,
    photon_lifetime_bandwidth_ghz,
)

__all__ = [
    "allpass_transmission",
    "bandwidth_penalty_db",
    "chosen_order",
    "cmt_bandwidth_ghz",
    "cmt_bandwidth_penalty_db",
    "cmt_rates",
    "cmt_response",
    "cmt_step_response",
    "fab_shift_nm",
    "fsr_nm",
    "fwhm_nm",
    "heater_power_mw",
    "level_mismatch_ratio",
    "loaded_q",
    "lock_margin_nm",
    "lock_margin_spec_nm",
    "lock_nearer_red_edge",
    "min_transmission",
    "modulation_levels",
    "oma_detuning_nm",
    "pam4_levels",
    "photon_lifetime_bandwidth_ghz",
    "required_shift_nm",
    "resonance_nm",
    "round_trip_amplitude",
    "self_coupling",
    "self_heating_shift_nm",
    "transmission_at_detuning",
    "window_lock",
    "window_worst_shift_nm",
]


def round_trip_amplitude(*, loss_db_per_cm, length_um):
    """Single-pass amplitude a = 10^(−α_dB·L/20) for propagation loss α_dB [dB/cm], L [µm]."""
    return 10.0 ** (-loss_db_per_cm * length_um * 1e-4 / 20.0)


def self_coupling(*, power_coupling):
    """Self-coupling amplitude r = sqrt(1 − κ²) of a lossless coupler with power coupling κ²."""
    return jnp.sqrt(1.0 - power_coupling)


def allpass_transmission(*, a, r, phase_rad):
    """All-pass ring power transmission (Bogaerts 2012, eq. 4).

    T(φ) = (a² − 2ar·cos φ + r²) / (1 − 2ar·cos φ + a²r²).

    Args:
      a: single-pass amplitude transmission (0 < a <= 1).
      r: self-coupling coefficient (0 < r < 1).
      phase_rad: round-trip phase φ = 2π n_eff L / λ [rad].
    """
    # Same function written with sin²(φ/2) = (1 − cos φ)/2, which keeps full float32
    # precision near resonance where 1 − cos φ cancels:
    # T = ((a − r)² + 4ar·sin²(φ/2)) / ((1 − ar)² + 4ar·sin²(φ/2)).
    s2 = jnp.sin(0.5 * phase_rad) ** 2
    four_ar_s2 = 4.0 * a * r * s2
    return ((a - r) ** 2 + four_ar_s2) / ((1.0 - a * r) ** 2 + four_ar_s2)


def min_transmission(*, a, r):
    """On-resonance transmission T_min = (r − a)² / (1 − ra)² (Bogaerts 2012, eq. 5)."""
    return (r - a) ** 2 / (1.0 - r * a) ** 2


def fsr_nm(*, wavelength_nm, group_index, length_um):
    """Free spectral range FSR = λ² / (n_g·L) [nm] (Bogaerts 2012, eq. 6)."""
    return wavelength_nm * wavelength_nm / (group_index * length_um * 1e3)


def fwhm_nm(*, a, r, fsr_nm):
    """Resonance full width at half depth FWHM = (1 − ra)·λ² / (π n_g L √(ra)) [nm].

    Bogaerts 2012, eq. 7, written with FSR = λ²/(n_g L).
    """
    ra = r * a
    return (1.0 - ra) * fsr_nm / (jnp.pi * jnp.sqrt(ra))


def loaded_q(*, wavelength_nm, fwhm_nm):
    """Loaded quality factor Q_L = λ / FWHM."""
    return wavelength_nm / fwhm_nm


def fab_shift_nm(*, width_error_nm, thickness_error_nm, dlam_dw=1.0, dlam_dt=2.0):
    """Resonance shift from waveguide width/thickness errors: δλ = dλ/dw·δw + dλ/dt·δt [nm].

    dλ/dw ≈ 1 nm/nm, dλ/dt ≈ 2 nm/nm for 220-nm SOI [E]. The link samples δλ_fab
    directly (``spread.ring_resonance_nm``); this is the conversion from geometry
    errors for whoever sets that spread (docs/model.md#micro-ring-modulator).
    """
    return dlam_dw * width_error_nm + dlam_dt * thickness_error_nm


def resonance_nm(*, design_nm, fab_shift_nm, temp_c, dlambda_dt_nm_per_k, tref_c=25.0):
    """Resonance wavelength λ_R(T) = λ_R0 + δλ_fab + κ_R·(T − T_ref), κ_R ≈ 60–90 pm/K.

    Thermo-optic shift of silicon, dn/dT ≈ 1.8e-4 /K (docs/model.md#thermal-lock).
    """
    return design_nm + fab_shift_nm + dlambda_dt_nm_per_k * (temp_c - tref_c)


def transmission_at_detuning(*, a, r, detuning_nm, fsr_nm):
    """Ring transmission at a wavelength detuning from resonance: φ = 2π·detuning/FSR."""
    return allpass_transmission(a=a, r=r, phase_rad=2.0 * jnp.pi * detuning_nm / fsr_nm)


def oma_detuning_nm(*, fwhm_nm, shift_nm):
    """Lock detuning δ* that maximises the OMA of a resonance shifted by ±Δλ_mod/2.

    For a Lorentzian line L(x) = 1/(1 + x²) (x in half-widths γ = FWHM/2) and a
    half-swing s = Δλ_mod/(2γ), the OMA ∝ L(x − s) − L(x + s) is maximal at
    x*² = y = [(s² − 1) + sqrt((1 − s²)² + 3(1 + s²)²)] / 3 (derived by setting the
    derivative of 4xs / ((1 + x² + s²)² − 4x²s²) to zero; s → 0 gives the
    maximum-slope point x = 1/√3). The all-pass line is Lorentzian to O(1/finesse);
    the test suite checks the OMA at δ* against a brute-force search on the exact
    all-pass line (docs/model.md#lock-detuning).

    Args:
      fwhm_nm: resonance FWHM [nm].
      shift_nm: peak-to-peak resonance swing Δλ_mod under drive [nm].
    """
    gamma = 0.5 * fwhm_nm
    s = 0.5 * shift_nm / gamma
    s2 = s * s
    y = ((s2 - 1.0) + jnp.sqrt((1.0 - s2) ** 2 + 3.0 * (1.0 + s2) ** 2)) / 3.0
    return gamma * jnp.sqrt(y)


def modulation_levels(*, a, r, fsr_nm, detuning_nm, shift_nm):
    """Ring transmission of the two outer levels under a peak-to-peak swing Δλ_mod.

    The drive moves the resonance by ±Δλ_mod/2 around the lock point; with the
    laser on the blue side at detuning δ the outer levels are
    T_high = T(δ + Δλ_mod/2) and T_low = T(δ − Δλ_mod/2). Then
    OMA = P_in·(T_high − T_low) and the dynamic extinction ratio is T_high/T_low
    (docs/model.md#micro-ring-modulator).

    Returns:
      (t_high, t_low), linear power transmissions.
    """
    h = 0.5 * shift_nm
    t_high = transmission_at_detuning(a=a, r=r, detuning_nm=detuning_nm + h, fsr_nm=fsr_nm)
    t_low = transmission_at_detuning(a=a, r=r, detuning_nm=detuning_nm - h, fsr_nm=fsr_nm)
    return t_high, t_low


def required_shift_nm(*, laser_nm, resonance_nm, lock_detuning_nm, fsr_nm):
    """Red shift the heater must supply: s = (λ_L + δ − λ_R) mod FSR ∈ [0, FSR).

    Heaters only red-shift; when the resonance already sits red of the lock point,
    the next-bluer order (one FSR away) is pulled in instead (docs/model.md#thermal-lock).
    Not used by the link, which works with the unwrapped shift (:func:`lock_margin_nm`).
    """
    return jnp.mod(laser_nm + lock_detuning_nm - resonance_nm, fsr_nm)


def window_worst_shift_nm(*, s_min_nm, s_max_nm, fsr_nm):
    """Worst required shift over a continuous temperature window.

    The unwrapped required shift s = λ_L + δ − λ_R is linear in the engine and
    laser temperatures, so over the rectangular window it spans [s_min, s_max]
    (attained at corners). If that span contains a multiple of the FSR, some
    temperature inside the window puts the lock point just blue of an order
    boundary and the heater must supply (almost) a full FSR; otherwise the worst
    case is s_max mod FSR. Evaluating only the four corners would miss this.
    """
    k_min = jnp.floor(s_min_nm / fsr_nm)
    k_max = jnp.floor(s_max_nm / fsr_nm)
    inside = s_max_nm - k_max * fsr_nm
    return jnp.where(k_max > k_min, fsr_nm, inside)


def chosen_order(*, s_min_nm, fsr_nm):
    """Resonance order the hitless lock uses over the whole window: k = floor(s_min/FSR).

    Order k brings the unwrapped required shift s to s − k·FSR. The hitless lock keeps
    one order over the window, and the lowest heater power with s − k·FSR >= 0 at every
    temperature is the one where the smallest shift s_min lands in [0, FSR): its
    heater range is [x, x + Δ] with x = s_min mod FSR (:func:`lock_margin_nm`). Heater
    power, lane power and pJ/bit are reported for this order at every corner, so the
    power budget is the one of the lock that the thermal limit state accepts
    (docs/model.md#reported-heater-power). When the lane fails the thermal lock, this
    is still the order closest to lockable from the blue side (heater powers may then
    exceed the heater maximum).
    """
    return jnp.floor(s_min_nm / fsr_nm)


def lock_margin_nm(*, s_min_nm, s_max_nm, fsr_nm, range_nm, allow_order_hop: bool = False):
    """Continuous thermal-lock margin over a temperature window [nm of heater shift].

    The unwrapped required shift spans [s_min, s_max] over the window (span
    Δ = s_max − s_min). The heater covers [0, R] (R = η_h·P_max). Hitless lock
    (default): one resonance order k must stay lockable at every temperature,
    [s_min − k·FSR, s_max − k·FSR] ⊂ [0, R]; with x = s_min mod FSR and w = R − Δ
    that is x ∈ [0, w] (repeated every FSR), or any x when w >= FSR. With
    ``allow_order_hop`` the lock may release and re-acquire the next order inside
    the window (the resonance sweeps across the laser: a traffic hit), and any
    heater with R >= FSR passes. The margin is the signed distance of x to the
    edges of the pass set::

        tri = max(min(x, w − x), min(x − FSR, w − x + FSR)),
        g = max(tri, w − FSR)   (hitless)   or   max(tri, R − FSR)   (order hop),

    which is >= 0 exactly on the pass set, continuous in x across the wrap
    (x = 0 ≡ FSR), in w and in R, and crosses zero at both edges: the red edge
    (heater runs out, x + Δ = R) and the blue edge (the resonance crosses the lock
    point and the next order is out of reach). The required heater power itself
    jumps at the wrap; this distance does not, so design-point searches (FORM) and
    smoothed-indicator gradients see both failure boundaries (docs/model.md#lock-margin).
    """
    x = jnp.mod(s_min_nm, fsr_nm)
    w = range_nm - (s_max_nm - s_min_nm)
    tri = jnp.maximum(jnp.minimum(x, w - x), jnp.minimum(x - fsr_nm, w - x + fsr_nm))
    return jnp.maximum(tri, (range_nm if allow_order_hop else w) - fsr_nm)


def heater_power_mw(*, shift_nm, efficiency_nm_per_mw):
    """Heater power P_h = s / η_h [mW]; η_h ≈ 0.1–0.3 nm/mW (≈5× with undercut)."""
    return shift_nm / efficiency_nm_per_mw


# --------------------------------------------------------------------------- issue 9
def lock_margin_spec_nm(
    *, s_min_nm, s_max_nm, fsr_nm, range_nm, arc_nm, allow_order_hop: bool = False
):
    """Lock margin for every laser of a spec window (external laser as an interface spec).

    A compliant laser sits anywhere on a static arc of width W (its unit-to-unit position
    in the spec window; the wavelength it drifts through while running is part of the
    window [s_min, s_max] of the required shift, span Δ). Each laser is locked once at
    insertion, so every laser may use its own resonance order, but each must then stay
    locked hitlessly over the window. With x = s_min mod FSR of the bluest laser and
    w = R − Δ, the laser at arc position t needs (x + t) mod FSR ∈ [0, w]; the pass set
    of one order is an interval and consecutive intervals are FSR − w apart, so the whole
    arc passes iff x ∈ [0, w − W] (one interval) or w >= FSR (every position is lockable:
    the standard ring-heater sizing rule R >= FSR + Δ). The signed margin::

        w' = w − W,   tri = max(min(x, w' − x), min(x − FSR, w' − x + FSR)),
        g = max(tri, w − FSR)   (hitless)   or   max(tri, R − FSR)   (order hop),

    is :func:`lock_margin_nm` with w' in the triangle and w in the full-coverage term
    (W = 0 gives :func:`lock_margin_nm` exactly); continuous in x, W, Δ and R
    (docs/model.md#external-laser-source).
    """
    x = jnp.mod(s_min_nm, fsr_nm)
    w = range_nm - (s_max_nm - s_min_nm)
    wp = w - arc_nm
    tri = jnp.maximum(jnp.minimum(x, wp - x), jnp.minimum(x - fsr_nm, wp - x + fsr_nm))
    return jnp.maximum(tri, (range_nm if allow_order_hop else w) - fsr_nm)


def lock_nearer_red_edge(*, s_min_nm, s_max_nm, fsr_nm, range_nm, arc_nm=0.0):
    """1.0 where the lock point is nearer the red edge of its lockable interval, else 0.0.

    With x = s_min mod FSR and w' = R − Δ − W (see :func:`lock_margin_spec_nm`), the
    position y of the lock relative to the nearest pass interval [0, w'] is x wrapped into
    [w'/2 − FSR/2, w'/2 + FSR/2). A failing lane with y > w' is a **red-edge** failure (the
    heater runs out: the ring needs more heat than the driver delivers); y < 0 is a
    **blue-edge** failure (the ring is fabricated too red: at the hot corner the resonance
    sits red of the lock point with the heater off, and the next order is out of reach).
    Used to split thermal failures (docs/model.md#failure-breakdown); not differentiated.
    """
    x = jnp.mod(s_min_nm, fsr_nm)
    wp = range_nm - (s_max_nm - s_min_nm) - arc_nm
    y = jnp.mod(x - 0.5 * wp + 0.5 * fsr_nm, fsr_nm) - 0.5 * fsr_nm + 0.5 * wp
    return (y > 0.5 * wp).astype(jnp.result_type(s_min_nm))


def self_heating_shift_nm(*, ring_in_mw, mean_transmission, absorbed_fraction, nm_per_mw):
    """Red shift of the resonance by the optical power the ring absorbs at lock [nm].

    Δλ_sh = η_sh·P_abs,  P_abs = f_abs·P_in·(1 − T̄): in an all-pass ring everything that is
    not transmitted is lost in the ring, a share f_abs of it absorbed by free carriers in
    the doped junction (the rest scattered), and the heat shifts the resonance through the
    ring's thermal impedance times κ_R (η_sh, nm per mW absorbed, of the order of the
    heater efficiency). T̄ is the data-averaged transmission at the lock detuning; the
    thermal time constant (µs) averages over symbols. The lock controller holds the
    detuning, so Δλ_sh is a static offset per corner: the heater supplies s − Δλ_sh. On the
    blue side of the resonance the effect is self-stabilising (more heat → larger detuning
    → less absorbed power; Carmon, Yang & Vahala, Opt. Express 12, 4742 (2004)); a 7 dBm
    ring input at T̄ ≈ 0.37 absorbs ≈ 3 mW (docs/model.md#self-heating).
    """
    return nm_per_mw * absorbed_fraction * ring_in_mw * (1.0 - mean_transmission)


def pam4_levels(*, a, r, fsr_nm, detuning_nm, shift_nm):
    """Transmission of the four PAM4 levels through the ring's nonlinear transfer.

    Equally spaced drive voltages move the resonance by −h, −h/3, +h/3, +h around the lock
    point (h = Δλ_mod/2): T_k = T(δ + (2k − 3)h/3), k = 0..3, T_0 lowest. The Lorentzian
    line compresses the eyes unequally (docs/model.md#pam4-level-compression).

    Returns:
      (t0, t1, t2, t3), lowest to highest.
    """
    h = 0.5 * shift_nm
    return tuple(
        transmission_at_detuning(a=a, r=r, detuning_nm=detuning_nm + c * h, fsr_nm=fsr_nm)
        for c in (-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0)
    )


def level_mismatch_ratio(*, t0, t1, t2, t3):
    """RLM-like eye linearity 3·min(eye)/OMA ∈ (0, 1] of four PAM4 levels.

    With equal noise on every level the smallest eye sets the BER, so the eye amplitude
    available to the receiver is the outer OMA times this ratio; the penalty is
    −10·log10(ratio) dB (equal eyes: 0 dB). Cf. the level-separation mismatch ratio
    R_LM of IEEE 802.3 Clause 120D.3.1.2.
    """
    oma = jnp.maximum(t3 - t0, 1e-12)
    e_min = jnp.minimum(jnp.minimum(t1 - t0, t2 - t1), t3 - t2)
    return jnp.clip(3.0 * e_min / oma, 1e-6, 1.0)


def window_lock(
    *, s_min_nm, s_max_nm, fsr_nm, range_nm, arc_nm, ext_lo_nm, ext_hi_nm, allow_order_hop
):
    """Thermal lock of a lane over the operating window, from its corner-wide extremes.

    The former model (``arc_nm`` and ``ext_lo_nm`` None): :func:`lock_margin_nm` and
    :func:`lock_nearer_red_edge` on [s_min, s_max]. Otherwise the span is widened by the
    spec laser's window extension (``ext_lo_nm``/``ext_hi_nm``, when given) and judged by
    :func:`lock_margin_spec_nm` with the resonance arc ``arc_nm`` (0 when None).

    Returns:
      (s_min, s_max, arc, lock margin [nm], red): the extremes as judged, the arc (None
      for the former model), the margin and 1.0 where the lock is nearer its red edge.
    """
    s_min, s_max, hop = s_min_nm, s_max_nm, allow_order_hop
    if arc_nm is None and ext_lo_nm is None:
        lock = lock_margin_nm(
            s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr_nm, range_nm=range_nm, allow_order_hop=hop
        )
        red = lock_nearer_red_edge(s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr_nm, range_nm=range_nm)
        return s_min, s_max, None, lock, red
    if ext_lo_nm is not None:
        s_min = s_min - ext_lo_nm
        s_max = s_max + ext_hi_nm
    arc = jnp.zeros_like(s_min) if arc_nm is None else arc_nm
    lock = lock_margin_spec_nm(
        s_min_nm=s_min,
        s_max_nm=s_max,
        fsr_nm=fsr_nm,
        range_nm=range_nm,
        arc_nm=arc,
        allow_order_hop=hop,
    )
    red = lock_nearer_red_edge(
        s_min_nm=s_min, s_max_nm=s_max, fsr_nm=fsr_nm, range_nm=range_nm, arc_nm=arc
    )
    return s_min, s_max, arc, lock, red
