"""Small-signal response of the ring modulator: first-order pole and coupled-mode theory.

The bandwidth penalty of the modulator (docs/model.md#bandwidth-penalty,
#ring-small-signal-response): ``system.ring_response = "first_order"`` uses one photon-lifetime
pole combined with the driver's pole; ``"cmt"`` the detuning-dependent second-order response
of coupled-mode theory (Haus 1984) behind the driver, whose one-symbol pulse response gives
the main cursor. Re-exported by :mod:`cpojax.physics.ring`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from cpojax.physics.units import optical_frequency_thz

__all__ = [
    "bandwidth_penalty_db",
    "cmt_bandwidth_ghz",
    "cmt_bandwidth_penalty_db",
    "cmt_rates",
    "cmt_response",
    "cmt_step_response",
    "photon_lifetime_bandwidth_ghz",
]


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
    we, alpha1, r_re, r_im = _step_coeffs(
        gamma=gamma,
        gamma_e=gamma_e,
        detuning_rad_ns=detuning_rad_ns,
        electrical_bw_ghz=electrical_bw_ghz,
    )
    d, t = detuning_rad_ns, t_ns
    return (
        1.0
        + alpha1 * jnp.exp(-we * t)
        + 2.0 * jnp.exp(-gamma * t) * (r_re * jnp.cos(d * t) - r_im * jnp.sin(d * t))
    )


def _step_coeffs(*, gamma, gamma_e, detuning_rad_ns, electrical_bw_ghz):
    """(ω_e, α₁, Re R₁, Im R₁) of :func:`cmt_step_response`'s partial fractions."""
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
    return we, alpha1, r_re, r_im


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

    Evaluation (docs/model.md#performance-formulation): with y(t) = 1 + α₁e^(−ω_e t) +
    2·Re(R₁·Z(t)), Z(t) = e^(p₁t), p₁ = −γ + jΔ (:func:`cmt_step_response`), the grid is
    t = (20 + 4k)·h for k = 0…15 (0.25 … 1 T_s) and (80 + 5m)·h for m = 1…16, h = T_s/80,
    where p(t) = α₁(e^(−ω_e t) − e^(−ω_e(t − T_s))) + 2·Re(R₁(Z(T_s) − 1)·Z(5m·h)). Every
    Z is a power of u = Z(h): one complex exponential per lane and a chain of complex
    products (u⁴, u⁵ and their powers), instead of 48 evaluations of e^(−γt), cos Δt and
    sin Δt; e^(−ω_e t) does not depend on the lane. Elementwise in every argument.
    """
    we, alpha1, r_re, r_im = _step_coeffs(
        gamma=gamma,
        gamma_e=gamma_e,
        detuning_rad_ns=detuning_rad_ns,
        electrical_bw_ghz=electrical_bw_ghz,
    )
    ts = 1.0 / symbol_rate_gbd
    h = ts / 80.0

    def mul(x, y):
        return x[0] * y[0] - x[1] * y[1], x[0] * y[1] + x[1] * y[0]

    decay = jnp.exp(-gamma * h)
    angle = detuning_rad_ns * h
    u = (decay * jnp.cos(angle), decay * jnp.sin(angle))
    u4 = mul(mul(u, u), mul(u, u))
    u5 = mul(u4, u)
    z = mul(mul(u5, u5), mul(u5, u5))  # u^20 = Z(T_s / 4)
    pts = []
    for k in range(16):  # t = (20 + 4k) h = (0.25 + 0.05k) T_s
        if k:
            z = mul(z, u4)
        e = jnp.exp(-we * ((0.25 + 0.05 * k) * ts))
        pts.append(1.0 + alpha1 * e + 2.0 * (r_re * z[0] - r_im * z[1]))
    s = mul((r_re, r_im), (z[0] - 1.0, z[1]))  # R1 (Z(T_s) − 1)
    zb = u5
    for m in range(1, 17):  # t = T_s + 5m h = (1 + m/16) T_s
        if m > 1:
            zb = mul(zb, u5)
        de = jnp.exp(-we * ((1.0 + m / 16.0) * ts)) - jnp.exp(-we * ((m / 16.0) * ts))
        pts.append(alpha1 * de + 2.0 * (s[0] * zb[0] - s[1] * zb[1]))
    while len(pts) > 1:  # pairwise maximum (a balanced tree, no reduce over an axis)
        pts = [jnp.maximum(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 2)] + (
            [pts[-1]] if len(pts) % 2 else []
        )
    # (+ 0.0 turns the −0.0 of a full cursor into 0.0 for reports)
    return -10.0 * jnp.log10(jnp.clip(pts[0], 1e-6, 1.0)) + 0.0


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
