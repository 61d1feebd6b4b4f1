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
import numpy as np

from cpojax.physics.units import optical_frequency_thz

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


def photon_lifetime_bandwidth_ghz(*, wavelength_nm, loaded_q):
    """Photon-lifetime-limited 3-dB bandwidth f = ν/Q_L [GHz] (τ_p = Q_L/ω, f = 1/(2πτ_p))."""
    return optical_frequency_thz(wavelength_nm=wavelength_nm) * 1e3 / loaded_q


def bandwidth_penalty_db(*, bandwidth_ghz, symbol_rate_gbd):
    """OMA penalty of a first-order roll-off: −10·log10(1 − exp(−2π f_3dB T_s)) [dB].

    Model (documented choice): the modulator's optical response to a level step is
    first order with time constant τ = 1/(2π f_3dB); after one symbol period T_s the
    main cursor reaches 1 − exp(−T_s/τ) of the full swing, and the receiver's
    equaliser removes the post-cursor ISI, so the eye amplitude (OMA) is scaled by
    the main cursor. Noise enhancement by the equaliser is not modelled (optimistic
    by a fraction of a dB at f_3dB ≈ 0.5 × symbol rate). f_3dB combines the photon
    lifetime and the electrical bandwidth as 1/f² = 1/f_ring² + 1/f_el²
    (docs/model.md#bandwidth-penalty).
    """
    return -10.0 * jnp.log10(1.0 - jnp.exp(-2.0 * jnp.pi * bandwidth_ghz / symbol_rate_gbd))


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


def cmt_rates(*, a, r, fwhm_nm, wavelength_nm):
    """Coupled-mode-theory rates of the all-pass ring [rad/ns]: (γ, γ_e).

    Haus, *Waves and Fields in Optoelectronics* (1984), ch. 7: the field amplitude decays at
    γ = γ_i + γ_e = π·Δν (Δν = c·FWHM/λ² the full linewidth), γ_e through the bus coupler.
    The split follows from matching the on-resonance transmission of the all-pass ring,
    (γ_i − γ_e)/(γ_i + γ_e) = (r − a)/(1 − ra) (signed: > 0 under-coupled).
    """
    dnu_ghz = 299792458.0 * fwhm_nm / (wavelength_nm * wavelength_nm)
    gamma = jnp.pi * dnu_ghz
    rho = (r - a) / (1.0 - r * a)
    return gamma, 0.5 * gamma * (1.0 - rho)


def _cmt_coeffs(*, gamma, gamma_e, detuning_rad_ns):
    """(A, B, G) of H_opt(s) = G·(A(s + γ) + B)/((s + γ)² + Δ²), H_opt(0) = 1."""
    d = detuning_rad_ns
    # X = conj(t0)·(−j)/(γ + jΔ) with t0 = 1 − 2γ_e/(γ + jΔ); all in real pairs.
    den = gamma * gamma + d * d
    t_re = 1.0 - 2.0 * gamma_e * gamma / den  # t0 = 1 − 2γ_e(γ − jΔ)/den
    t_im = 2.0 * gamma_e * d / den
    q_re, q_im = -d / den, -gamma / den  # (−j)/(γ + jΔ) = (−j)(γ − jΔ)/den = (−Δ − jγ)/den
    x_re = t_re * q_re + t_im * q_im  # conj(t0)·q = (t_re − j t_im)(q_re + j q_im)
    x_im = t_re * q_im - t_im * q_re
    a_ = x_re
    b_ = d * x_im
    g_ = den / (a_ * gamma + b_)
    return a_, b_, g_


def cmt_response(*, omega_rad_ns, gamma, gamma_e, detuning_rad_ns):
    """Normalised small-signal response H_opt(jΩ)/H_opt(0) of the detuned ring: (re, im).

    Coupled-mode theory (Haus 1984): da/dt = −(γ + jΔ)a − jκ·s_in, t = s_in − jκ·a,
    |κ|² = 2γ_e, Δ = ω_L − ω_r. A small resonance modulation δω_r(t) gives the
    transmitted-power response

        H(s) ∝ X/(s + γ + jΔ) + X*/(s + γ − jΔ) = 2[Re X·(s + γ) + Δ·Im X]/((s + γ)² + Δ²),

    X = t0*·a0: a second-order system with poles −γ ± jΔ and one zero, i.e. a detuned ring
    is second order with peaking (Müller et al., Sci. Rep. 4, 6310 (2014)); at Δ = 0 its DC
    response vanishes (the resonance centre has no slope). docs/model.md#ring-small-signal-response.
    """
    a_, b_, g_ = _cmt_coeffs(gamma=gamma, gamma_e=gamma_e, detuning_rad_ns=detuning_rad_ns)
    w = omega_rad_ns
    # numerator A(jw + γ) + B, denominator (γ + jw)² + Δ² = γ² − w² + Δ² + 2jγw
    n_re, n_im = a_ * gamma + b_, a_ * w
    d_re = gamma * gamma - w * w + detuning_rad_ns * detuning_rad_ns
    d_im = 2.0 * gamma * w
    dd = d_re * d_re + d_im * d_im
    return g_ * (n_re * d_re + n_im * d_im) / dd, g_ * (n_im * d_re - n_re * d_im) / dd


def cmt_step_response(*, t_ns, gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz):
    """Step response y(t) of the ring (:func:`cmt_response`) behind a first-order driver.

    H(s) = H_opt(s)·ω_e/(s + ω_e), ω_e = 2π·f_el, expanded in partial fractions:
    y(t) = 1 + α₁·e^(−ω_e t) + 2·e^(−γt)·(Re R₁·cos Δt − Im R₁·sin Δt), with
    α₁ = −G(A(γ − ω_e) + B)/((γ − ω_e)² + Δ²) and R₁ the residue of H(s)/s at
    p₁ = −γ + jΔ: R₁ = Gω_e(B + jAΔ)/(p₁(p₁ + ω_e)·2jΔ). y(0) = 0, y(∞) = 1.
    """
    a_, b_, g_ = _cmt_coeffs(gamma=gamma, gamma_e=gamma_e, detuning_rad_ns=detuning_rad_ns)
    d = detuning_rad_ns
    we = 2.0 * jnp.pi * electrical_bw_ghz
    gm = gamma - we
    alpha1 = -g_ * (a_ * gm + b_) / (gm * gm + d * d)
    # R1 = G ω_e (B + jAΔ) / (p1 (p1 + ω_e) 2jΔ), p1 = −γ + jΔ
    n_re, n_im = g_ * we * b_, g_ * we * a_ * d
    # p1·(p1 + ω_e) = (−γ + jΔ)(−gm + jΔ) = (γ gm − Δ²) − jΔ(γ + gm)
    m_re, m_im = gamma * gm - d * d, -d * (gamma + gm)
    # times 2jΔ: (m_re + j m_im)(2jΔ) = −2Δ m_im + 2jΔ m_re
    q_re, q_im = -2.0 * d * m_im, 2.0 * d * m_re
    qq = q_re * q_re + q_im * q_im
    r_re = (n_re * q_re + n_im * q_im) / qq
    r_im = (n_im * q_re - n_re * q_im) / qq
    t = t_ns
    return (
        1.0
        + alpha1 * jnp.exp(-we * t)
        + 2.0 * jnp.exp(-gamma * t) * (r_re * jnp.cos(d * t) - r_im * jnp.sin(d * t))
    )


#: Frequency grid of :func:`cmt_bandwidth_ghz` [GHz].
_F_GRID_GHZ = tuple(float(x) for x in np.logspace(0.0, np.log10(400.0), 96))
#: Sampling instants of the pulse response, in symbol periods (main cursor search).
_CURSOR_GRID = tuple(
    float(c) for c in np.r_[np.linspace(0.25, 1.0, 16), np.linspace(1.0, 2.0, 17)[1:]]
)


def cmt_bandwidth_penalty_db(
    *, gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz, symbol_rate_gbd
):
    """OMA penalty of the detuned ring behind the driver: −10·log10(main cursor) [dB].

    The same documented choice as :func:`bandwidth_penalty_db` (the receiver's equaliser
    removes pre- and post-cursor ISI, the eye keeps the main cursor), with the exact
    response: the pulse response of one symbol, p(t) = y(t) − y(t − T_s), is sampled at
    its maximum over t ∈ [0.25, 2]·T_s (32 points, T_s among them), capped at 1 (peaking
    is not counted as gain). For a first-order response the maximum is at T_s and the
    penalty is that of :func:`bandwidth_penalty_db`.
    """
    shape = jnp.broadcast_shapes(
        jnp.shape(gamma),
        jnp.shape(gamma_e),
        jnp.shape(detuning_rad_ns),
        jnp.shape(electrical_bw_ghz),
    )
    dt = jnp.result_type(gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz)
    ex = lambda x: jnp.broadcast_to(jnp.asarray(x, dt), shape)[..., None]  # noqa: E731
    c = jnp.asarray(_CURSOR_GRID, dt).reshape((1,) * len(shape) + (-1,))
    ts = 1.0 / symbol_rate_gbd
    kw = dict(
        gamma=ex(gamma),
        gamma_e=ex(gamma_e),
        detuning_rad_ns=ex(detuning_rad_ns),
        electrical_bw_ghz=ex(electrical_bw_ghz),
    )
    later = c > 1.0
    p = cmt_step_response(t_ns=c * ts, **kw) - jnp.where(
        later, cmt_step_response(t_ns=jnp.where(later, c - 1.0, 0.0) * ts, **kw), 0.0
    )
    # (+ 0.0 turns the −0.0 of a full cursor into 0.0 for reports)
    return -10.0 * jnp.log10(jnp.clip(jnp.max(p, axis=-1), 1e-6, 1.0)) + 0.0


def cmt_bandwidth_ghz(*, gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz):
    """−3 dB frequency of |H_opt(jΩ)·H_el(jΩ)| [GHz] (for reports; 96-point log grid 1–400 GHz,
    linear interpolation of the first crossing; 400 GHz if it never crosses)."""
    shape = jnp.broadcast_shapes(
        jnp.shape(gamma),
        jnp.shape(gamma_e),
        jnp.shape(detuning_rad_ns),
        jnp.shape(electrical_bw_ghz),
    )
    dt = jnp.result_type(gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz)
    ex = lambda x: jnp.broadcast_to(jnp.asarray(x, dt), shape)[..., None]  # noqa: E731
    f = jnp.asarray(_F_GRID_GHZ, dt).reshape((1,) * len(shape) + (-1,))
    re, im = cmt_response(
        omega_rad_ns=2.0 * jnp.pi * f,
        gamma=ex(gamma),
        gamma_e=ex(gamma_e),
        detuning_rad_ns=ex(detuning_rad_ns),
    )
    mag2 = (re * re + im * im) / (1.0 + (f / ex(electrical_bw_ghz)) ** 2)
    below = mag2 < 0.5
    i1 = jnp.maximum(jnp.argmax(below, axis=-1), 1)[..., None]
    m0 = jnp.take_along_axis(mag2, i1 - 1, axis=-1)[..., 0]
    m1 = jnp.take_along_axis(mag2, i1, axis=-1)[..., 0]
    fg = jnp.broadcast_to(f, mag2.shape)
    f0 = jnp.take_along_axis(fg, i1 - 1, axis=-1)[..., 0]
    f1 = jnp.take_along_axis(fg, i1, axis=-1)[..., 0]
    fx = f0 + (m0 - 0.5) / jnp.maximum(m0 - m1, 1e-12) * (f1 - f0)
    return jnp.where(jnp.any(below, axis=-1), fx, _F_GRID_GHZ[-1])
