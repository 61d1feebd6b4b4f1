"""Scalar hoisting of the fused yield kernel's body (:mod:`cpojax.kernels.yield_block`)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.extend import core as jcore

__all__ = ["eval_eqn", "read", "res_dtype", "split_jaxpr"]


# --------------------------------------------------------------------------- hoisting
# The kernel body is traced once to a jaxpr; every equation whose inputs are all
# scenario values (or literals) and whose outputs are all scalars is *hoisted*: evaluated
# once per call by XLA outside the kernel (unit conversions of design values, the
# receiver's Q for the BER target, ...), its scalar results passed in as inputs. The rest
# is staged into the kernel. Besides saving work per program, this keeps out of the
# kernel the scalar code of cpojax.physics that a kernel cannot hold (e.g. ``ndtri`` on a
# scalar BER, which evaluates polynomials from captured coefficient arrays).


def read(env, v):
    return v.val if isinstance(v, jcore.Literal) else env[v]


def eval_eqn(eqn, invals):
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    return out if eqn.primitive.multiple_results else [out]


def _is_scalar(v) -> bool:
    return getattr(v.aval, "shape", None) == ()


def split_jaxpr(closed, n_params: int):
    """(hoisted eqns, staged eqns, residual vars) of a body jaxpr whose first n_params
    inputs are the scenario values."""
    jaxpr = closed.jaxpr
    known = set(jaxpr.invars[:n_params]) | set(jaxpr.constvars)
    hoisted, staged = [], []
    for eqn in jaxpr.eqns:
        ins = [v for v in eqn.invars if not isinstance(v, jcore.Literal)]
        if (
            all(v in known for v in ins)
            and all(_is_scalar(v) for v in eqn.outvars)
            and not eqn.effects
        ):
            hoisted.append(eqn)
            known.update(eqn.outvars)
        else:
            staged.append(eqn)
    produced = {v for e in hoisted for v in e.outvars}
    needed = []
    for eqn in staged:
        for v in eqn.invars:
            if not isinstance(v, jcore.Literal) and v in produced and v not in needed:
                needed.append(v)
    for v in jaxpr.outvars:
        if not isinstance(v, jcore.Literal) and v in produced and v not in needed:
            needed.append(v)
    constvars, param_vars = set(jaxpr.constvars), set(jaxpr.invars[:n_params])
    params_used = []  # scenario values used by staged code are residuals too
    for eqn in staged:
        for v in eqn.invars:
            if isinstance(v, jcore.Literal):
                continue
            if v in constvars and not _is_scalar(v):
                raise ValueError(f"kernel body uses a non-scalar constant {v.aval}")
            if v in param_vars and v not in params_used:
                params_used.append(v)
    return hoisted, staged, needed + params_used


def res_dtype(dt) -> str:
    """Residuals travel as one vector per dtype (bools as int32)."""
    return "int32" if jnp.dtype(dt) == jnp.bool_ else jnp.dtype(dt).name
