"""Fiber-to-chip coupling: Gaussian mode overlap, Fresnel loss, coupler efficiency."""

from __future__ import annotations

import jax.numpy as jnp

from cpojax.physics.units import db_to_lin

__all__ = ["coupler_efficiency", "fresnel_transmission", "mode_overlap"]


def mode_overlap(
    *,
    w1_um,
    w2_um,
    offset_um,
    gap_um,
    tilt_rad,
    wavelength_nm,
    n_medium=1.0,
    offset_y_um=0.0,
    tilt_y_rad=None,
):
    """Power coupling efficiency between two Gaussian modes (linear, in [0, 1]).

    Joyce & DeLoach, Appl. Opt. 23, 4187 (1984); Marcuse, Bell Syst. Tech. J. 56,
    703 (1977). With chip-mode waist w1 at the reference plane, fiber waist w2 at
    axial gap z, lateral offset d² = offset² + offset_y², tilt θ, medium index n,
    g = λz/(πn), D = (w1² + w2²)² + g²::

        η = (4 w1² w2² / D) · exp{−(2/D)·[d²(w1² + w2²)
              + (π n θ w1/λ)²·(w2²(w1² + w2²) + g²) − 2π n θ d g w1²/λ]}

    Special cases: offset only → (2w1w2/(w1²+w2²))²·exp(−2d²/(w1²+w2²)); equal
    waists → exp(−d²/w²) (offset), exp(−(πnwθ/λ)²) (tilt), 1/(1+Z²),
    Z = λz/(2πnw²) (gap). The offset enters squared, so the gradient at d = 0 is
    finite (zero). Waists are 1/e² intensity radii (MFD/2).

    Args:
      w1_um: chip-mode waist radius [µm].
      w2_um: fiber-mode waist radius [µm].
      offset_um: lateral offset along x [µm] (or the radial offset if offset_y_um=0).
      gap_um: axial gap between the waist planes [µm], >= 0.
      tilt_rad: angular misalignment [rad], in the plane of offset_um.
      wavelength_nm: vacuum wavelength [nm].
      n_medium: refractive index of the gap medium (1 air, ≈1.45 index-matching epoxy).
      offset_y_um: lateral offset along y [µm].
      tilt_y_rad: angular misalignment in the y plane [rad] (None: none). Circular
        Gaussian beams separate in x and y, so the y plane adds the same tilt and
        offset–tilt terms with (offset_y, tilt_y); the prefactor is shared.

    Returns:
      Linear power coupling efficiency.
    """
    lam_um = wavelength_nm * 1e-3
    w1s, w2s = w1_um * w1_um, w2_um * w2_um
    ssum = w1s + w2s
    g = lam_um * gap_um / (jnp.pi * n_medium)
    den = ssum * ssum + g * g
    d2 = offset_um * offset_um + offset_y_um * offset_y_um
    k_tilt = jnp.pi * n_medium * tilt_rad * w1_um / lam_um
    expo = (
        d2 * ssum
        + k_tilt * k_tilt * (w2s * ssum + g * g)
        - 2.0 * jnp.pi * n_medium * tilt_rad * offset_um * g * w1s / lam_um
    )
    if tilt_y_rad is not None:
        k_y = jnp.pi * n_medium * tilt_y_rad * w1_um / lam_um
        expo = (
            expo
            + k_y * k_y * (w2s * ssum + g * g)
            - 2.0 * jnp.pi * n_medium * tilt_y_rad * offset_y_um * g * w1s / lam_um
        )
    return 4.0 * w1s * w2s / den * jnp.exp(-2.0 * expo / den)


def fresnel_transmission(*, n1, n2):
    """Normal-incidence Fresnel power transmission 1 − ((n1 − n2)/(n1 + n2))².

    Hecht, Optics, eq. 4.67. Multiple reflections (etalon ripple) between the two
    facets are neglected: their phase is random across lanes and they average out.
    """
    rho = (n1 - n2) / (n1 + n2)
    return 1.0 - rho * rho


def coupler_efficiency(
    *,
    chip_mfd_um,
    fiber_mfd_um,
    offset_x_um,
    offset_y_um,
    gap_um,
    tilt_rad,
    wavelength_nm,
    n_medium,
    n_fiber,
    n_chip,
    intrinsic_loss_db,
    tilt_y_rad=None,
):
    """Total power efficiency of one fiber-to-chip coupler (linear).

    η_total = η_overlap · T_F(n_fiber → n_medium) · T_F(n_medium → n_chip) · 10^(−IL/10)
    where η_overlap is :func:`mode_overlap` (waists = MFD/2) and IL the coupler's
    intrinsic loss (edge coupler 1–2 dB/facet, apodized grating 1–2 dB, uniform
    grating 3–6 dB; docs/model.md#fiber-coupling). Reciprocal: the same for either direction.

    Args:
      chip_mfd_um, fiber_mfd_um: mode field diameters [µm].
      offset_x_um, offset_y_um: lateral placement errors [µm].
      gap_um: axial gap [µm]; tilt_rad: tilt in the x plane [rad]; wavelength_nm: [nm].
      n_medium, n_fiber, n_chip: refractive indices of gap, fiber core, chip facet.
      intrinsic_loss_db: intrinsic loss of the coupler at perfect alignment [dB].
      tilt_y_rad: tilt in the y plane [rad] (None: none; see :func:`mode_overlap`).
    """
    eta = mode_overlap(
        w1_um=0.5 * chip_mfd_um,
        w2_um=0.5 * fiber_mfd_um,
        offset_um=offset_x_um,
        offset_y_um=offset_y_um,
        gap_um=gap_um,
        tilt_rad=tilt_rad,
        wavelength_nm=wavelength_nm,
        n_medium=n_medium,
        tilt_y_rad=tilt_y_rad,
    )
    fres = fresnel_transmission(n1=n_fiber, n2=n_medium) * fresnel_transmission(
        n1=n_medium, n2=n_chip
    )
    return eta * fres * db_to_lin(db=-intrinsic_loss_db)
