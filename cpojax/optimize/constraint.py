"""The yield constraint on the β scale, as augmented-Lagrangian pieces.

Problem: minimise cost(θ) subject to Y(θ) ≥ Y_t, with Y = 1 − Pf. The
constraint is written on the reliability-index scale, c(θ) = β(θ) − β_t ≥ 0 with
β = Φ⁻¹(Y) = −Φ⁻¹(Pf), so that Y_t = 0.99 (β_t = 2.33) and Y_t = 0.99999
(β_t = 4.26) are equally well conditioned: ∇β = −∇Pf/φ(β) has the same magnitude
whatever the size of Pf.

Each step minimises the augmented Lagrangian for inequality constraints
(Nocedal & Wright, *Numerical Optimization*, 2nd ed., Springer 2006, §17.4,
eq. 17.65), with penalty ρ and multiplier λ ≥ 0,

    L(θ) = f(θ)/f₀ + ψ(c(θ); λ, ρ),
    ψ(c; λ, ρ) = −λc + ρc²/2   if c ≤ λ/ρ,   else −λ²/(2ρ),
    ∇L = ∇f/f₀ − max(0, λ − ρc)·∇β.

The multiplier is either

* ``multiplier="ls"`` (default): the least-squares first-order estimate
  λ_LS = ⟨∇f, ∇β⟩/‖∇β‖² over the free parameters (N&W §18.3, eq. 18.21),
  exponentially averaged with weight ``multiplier_ema``; on the constraint the
  step then follows the projection of ∇f orthogonal to ∇β while the penalty term
  ρ·c restores feasibility. It does not integrate the (noisy, initially large)
  constraint violation, so it cannot overshoot; or
* ``multiplier="dual"``: the classical first-order update λ ← max(0, λ − η·c)
  (N&W eq. 17.39 has η = ρ; the default η = ρ/10 averages the noise in ĉ, at
  the price of overshoot when the primal moves slowly).

f₀ = |cost(θ₀)| normalises the cost so that λ and ρ are O(1); the multiplier
reported by the step is the effective max(0, λ − ρc)·f₀ (cost per unit of β;
→ λ* at a KKT point).

Every function here is traceable and works on pytrees of gradients shaped like
the unconstrained parameters (:mod:`cpojax.optimize.free`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = [
    "PF_FLOOR",
    "beta_gradient",
    "dual_multiplier",
    "lagrangian_grad",
    "ls_multiplier",
    "penalty_coefficient",
    "reliability_index",
]

#: Keeps β finite (≈ 11.4) and φ(β) a normal float32 when no sample fails.
PF_FLOOR = 1e-30


def reliability_index(pf, dtype):
    """``(β, φ(β))`` for a failure probability estimate, β = −Φ⁻¹(Pf).

    Pf is clipped to [PF_FLOOR, 1 − eps] so that β and φ(β) stay finite.
    """
    pf_c = jnp.clip(pf, PF_FLOOR, 1.0 - jnp.finfo(dtype).eps)
    beta = -jax.scipy.special.ndtri(pf_c)
    pdf = jnp.exp(-0.5 * beta * beta) / math.sqrt(2.0 * math.pi)
    return beta, pdf


def beta_gradient(grad_pf_u: dict, pf, pdf, mask: dict) -> dict:
    """∇β = −∇Pf/φ(β) over the free parameters (zero where the mask is 0).

    A step with no failing sample says only Pf ≲ 1/n: φ(β) at the floor is ~1e-29,
    and −∇Pf/φ(β) would be ~1e20 or more; one such step poisons Adam's second
    moment and freezes every parameter for thousands of steps. Such steps carry no
    usable direction for β, so their β-gradient is zero.
    """
    has_fail = pf > 0
    return jax.tree_util.tree_map(
        lambda gp, m: jnp.where(has_fail, -m * gp / pdf, jnp.zeros_like(gp)), grad_pf_u, mask
    )


def ls_multiplier(f_grad: dict, d_beta: dict, lam, ema: float, dtype):
    """Least-squares multiplier λ_LS = ⟨∇f, ∇β⟩/‖∇β‖², exponentially averaged.

    N&W eq. 18.21 over the free parameters (both gradients already masked);
    λ_LS is clipped at 0, and a non-finite estimate keeps the previous λ.
    Returns ``λ + ema·(λ_LS − λ)``.
    """
    dots = [
        jnp.sum(a * b)
        for a, b in zip(
            jax.tree_util.tree_leaves(f_grad),
            jax.tree_util.tree_leaves(d_beta),
            strict=True,
        )
    ]
    norms = [jnp.sum(b * b) for b in jax.tree_util.tree_leaves(d_beta)]
    lam_ls = jnp.maximum(sum(dots), 0.0) / jnp.maximum(sum(norms), jnp.finfo(dtype).tiny)
    lam_ls = jnp.where(jnp.isfinite(lam_ls), lam_ls, lam)
    return lam + ema * (lam_ls - lam)


def dual_multiplier(lam, c, eta: float):
    """First-order dual update λ ← max(0, λ − η·c) (N&W eq. 17.39)."""
    return jnp.maximum(0.0, lam - eta * c)


def penalty_coefficient(lam, c, penalty: float):
    """max(0, λ − ρc): the weight of −∇β in ∇L (the effective multiplier)."""
    return jnp.maximum(0.0, lam - penalty * c)


def lagrangian_grad(f_grad: dict, d_beta: dict, coef) -> dict:
    """∇L = ∇f/f₀ − max(0, λ − ρc)·∇β (``f_grad`` is already ∇f/f₀)."""
    return jax.tree_util.tree_map(lambda gf, gb: gf - coef * gb, f_grad, d_beta)
