"""Kernel-safe copies of two JAX special functions used by the random stream and the hierarchy.

A Pallas kernel cannot capture array constants, and :func:`jax.scipy.special.ndtri`
evaluates its rational approximations with ``jnp.polyval`` on numpy coefficient arrays
(captured constants, indexed inside a ``scan``). :func:`ndtri` here is the same
algorithm, line by line (Cephes ``ndtri`` as transcribed in ``jax._src.scipy.special``,
JAX 0.10): the same coefficients, each polynomial evaluated by the same Horner recurrence
``y = y·x + c`` from ``y = 0`` as ``jnp.polyval``, but with the coefficients as scalar
literals. ``tests/test_kernels.py`` checks that it is bit-identical to
``jax.scipy.special.ndtri`` (float32 and float64); if a JAX upgrade changes that
function, the test says so and this copy must follow.

:func:`normals_from_bits` is :func:`cpojax.rng.normals_from_bits` on this ``ndtri``.

:func:`ndtr_elementary` is Φ from ``exp`` and arithmetic only, for the compiled (Triton)
kernel, whose lowering has no ``erf``/``erfc``: not bit-identical to
``jax.scipy.special.ndtr`` (relative error of min(Φ, 1 − Φ) < 1.2e-7, tested).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["ndtr_elementary", "ndtri", "normals_from_bits"]

_P0 = (
    -5.99633501014107895267e1,
    9.80010754185999661536e1,
    -5.66762857469070293439e1,
    1.39312609387279679503e1,
    -1.23916583867381258016e0,
)
_Q0 = (
    1.0,
    1.95448858338141759834e0,
    4.67627912898881538453e0,
    8.63602421390890590575e1,
    -2.25462687854119370527e2,
    2.00260212380060660359e2,
    -8.20372256168333339912e1,
    1.59056225126211695515e1,
    -1.18331621121330003142e0,
)
_P1 = (
    4.05544892305962419923e0,
    3.15251094599893866154e1,
    5.71628192246421288162e1,
    4.40805073893200834700e1,
    1.46849561928858024014e1,
    2.18663306850790267539e0,
    -1.40256079171354495875e-1,
    -3.50424626827848203418e-2,
    -8.57456785154685413611e-4,
)
_Q1 = (
    1.0,
    1.57799883256466749731e1,
    4.53907635128879210584e1,
    4.13172038254672030440e1,
    1.50425385692907503408e1,
    2.50464946208309415979e0,
    -1.42182922854787788574e-1,
    -3.80806407691578277194e-2,
    -9.33259480895457427372e-4,
)
_P2 = (
    3.23774891776946035970e0,
    6.91522889068984211695e0,
    3.93881025292474443415e0,
    1.33303460815807542389e0,
    2.01485389549179081538e-1,
    1.23716634817820021358e-2,
    3.01581553508235416007e-4,
    2.65806974686737550832e-6,
    6.23974539184983293730e-9,
)
_Q2 = (
    1.0,
    6.02427039364742014255e0,
    3.67983563856160859403e0,
    1.37702099489081330271e0,
    2.16236993594496635890e-1,
    1.34204006088543189037e-2,
    3.28014464682127739104e-4,
    2.89247864745380683936e-6,
    6.79019408009981274425e-9,
)


def _polyval(coeffs, x):
    """``jnp.polyval(coeffs, x)``: y = 0, then y = y·x + c for each coefficient."""
    dt = x.dtype.type
    y = jnp.zeros_like(x)
    for c in coeffs:
        y = y * x + dt(c)
    return y


def ndtri(p):
    """Φ⁻¹(p), bit-identical to ``jax.scipy.special.ndtri`` (see the module docstring)."""
    dtype = p.dtype.type
    if p.dtype not in (np.float32, np.float64):
        raise TypeError(f"x.dtype={p.dtype} is not supported")
    maybe_complement_p = jnp.where(p > dtype(-np.expm1(-2.0)), dtype(1.0) - p, p)
    sanitized_mcp = jnp.where(
        maybe_complement_p == dtype(0.0),
        jnp.full(p.shape, dtype(0.5)),
        maybe_complement_p,
    )
    w = sanitized_mcp - dtype(0.5)
    ww = lax.square(w)
    x_for_big_p = w + w * ww * (_polyval(_P0, ww) / _polyval(_Q0, ww))
    x_for_big_p *= -dtype(np.sqrt(2.0 * np.pi))
    z = lax.sqrt(dtype(-2.0) * lax.log(sanitized_mcp))
    first_term = z - lax.log(z) / z
    second_term_small_p = _polyval(_P2, 1 / z) / _polyval(_Q2, 1 / z) / z
    second_term_otherwise = _polyval(_P1, 1 / z) / _polyval(_Q1, 1 / z) / z
    x_for_small_p = first_term - second_term_small_p
    x_otherwise = first_term - second_term_otherwise
    x = jnp.where(
        sanitized_mcp > dtype(np.exp(-2.0)),
        x_for_big_p,
        jnp.where(z >= dtype(8.0), x_for_small_p, x_otherwise),
    )
    x = jnp.where(p > dtype(1.0 - np.exp(-2.0)), x, -x)
    infinity = jnp.full(p.shape, dtype(np.inf))
    return jnp.where(p == dtype(0.0), -infinity, jnp.where(p == dtype(1.0), infinity, x))


def normals_from_bits(bits):
    """:func:`cpojax.rng.normals_from_bits` with :func:`ndtri`: sign from the top bit,
    ±Φ⁻¹(q) from the other 31 bits."""
    m = (bits & jnp.uint32(0x7FFFFFFF)).astype(jnp.float32)
    q = (m + jnp.float32(0.5)) * jnp.float32(2.0**-32)
    z = -ndtri(q)
    return jnp.where((bits >> jnp.uint32(31)) == 1, -z, z)


# Chebyshev fit of erfc (Press, Teukolsky, Vetterling & Flannery, Numerical Recipes,
# 2nd ed., §6.2, ``erfcc``): fractional error < 1.2e-7 everywhere.
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def ndtr_elementary(x):
    """Φ(x) = ½·erfc(−x/√2) with erfc by the Chebyshev fit above (exp and arithmetic)."""
    dt = x.dtype.type
    z = jnp.abs(x) * dt(np.sqrt(0.5))
    t = dt(1.0) / (dt(1.0) + dt(0.5) * z)
    poly = dt(_ERFC[-1])
    for c in _ERFC[-2::-1]:
        poly = dt(c) + t * poly
    tail = dt(0.5) * t * jnp.exp(-z * z + poly)  # Φ(−|x|)
    return jnp.where(x < 0, tail, dt(1.0) - tail)
