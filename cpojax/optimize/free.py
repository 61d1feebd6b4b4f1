"""Which parameters move, in which coordinates, within which bounds.

The optimiser's parameters are ``{"mean": f[dim], "std": f[dim], "design": pytree}``
(the *constrained* parameters, what the limit state and the cost see). optax acts
on an unconstrained twin ``{"mean", "log_std", "design"}``: standard deviations
move as log σ so they stay positive, means and design values move linearly.

``free`` selects the moving entries; it becomes a float mask pytree shaped like
the unconstrained parameters (1 moves, 0 is fixed) that multiplies both the
gradient and the optax update, so a fixed entry stays bit-identical. Box bounds
on means and standard deviations are enforced by projection after each update
(projected gradient step).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "NAMES",
    "free_mask",
    "grad_to_unconstrained",
    "moves_design",
    "parse_bounds",
    "project",
    "to_constrained",
    "to_unconstrained",
]

#: Names of the parameter groups, in the order of the params dict.
NAMES = ("mean", "std", "design")


def to_unconstrained(params: dict) -> dict:
    """``{"mean", "std", "design"}`` → ``{"mean", "log_std", "design"}``."""
    return {"mean": params["mean"], "log_std": jnp.log(params["std"]), "design": params["design"]}


def to_constrained(params_u: dict) -> dict:
    """``{"mean", "log_std", "design"}`` → ``{"mean", "std", "design"}`` (σ = exp(log σ))."""
    return {
        "mean": params_u["mean"],
        "std": jnp.exp(params_u["log_std"]),
        "design": params_u["design"],
    }


def grad_to_unconstrained(grad: dict, params: dict) -> dict:
    """Chain rule from a gradient w.r.t. constrained params to unconstrained ones.

    ∂/∂log σ = σ·∂/∂σ; means and design pass through.
    """
    return {
        "mean": grad["mean"],
        "log_std": grad["std"] * params["std"],
        "design": grad["design"],
    }


def _vector_mask(value, dim: int, name: str) -> np.ndarray:
    if isinstance(value, bool | np.bool_):
        return np.full(dim, bool(value))
    arr = np.asarray(value)
    if arr.dtype == bool:
        if arr.shape != (dim,):
            raise ValueError(
                f"free[{name!r}] as a bool mask must have shape ({dim},), got {arr.shape}"
            )
        return arr
    if np.issubdtype(arr.dtype, np.integer) and arr.ndim <= 1:
        idx = arr.reshape(-1)
        if np.any(idx < 0) or np.any(idx >= dim):
            raise ValueError(f"free[{name!r}] indices must be in [0, {dim}), got {idx.tolist()}")
        mask = np.zeros(dim, bool)
        mask[idx] = True
        return mask
    raise ValueError(
        f"free[{name!r}] must be a bool, a bool mask of shape ({dim},) or a list "
        f"of indices in [0, {dim}), got {value!r}"
    )


def free_mask(free, params: dict) -> dict:
    """Turn ``free`` into a float mask pytree shaped like the unconstrained params.

    Args:
      free: None (everything free); a name or a sequence of names from
        ("mean", "std", "design"); or a dict name -> spec where the spec is a bool,
        for "mean"/"std" also a bool mask f[dim] or a list of indices, and for
        "design" a pytree of bools that is a prefix of the design pytree. Names
        absent from the dict are fixed.
      params: constrained parameters ``{"mean": f[dim], "std": f[dim], "design"}``.

    Returns:
      ``{"mean": f[dim], "log_std": f[dim], "design": pytree}`` of 0/1 in the
      dtype of each leaf.

    Raises:
      ValueError: an unknown name, a malformed spec, or nothing selected.
    """
    dim = params["mean"].shape[0]
    if free is None:
        spec = dict.fromkeys(NAMES, True)
    elif isinstance(free, str):
        spec = {free: True}
    elif isinstance(free, dict):
        spec = dict(free)
    elif isinstance(free, Sequence) and all(isinstance(f, str) for f in free):
        spec = dict.fromkeys(free, True)
    else:
        raise ValueError(
            f"free must be None, a name, a sequence of names from {NAMES} or a "
            f"dict name -> mask, got {free!r}"
        )
    unknown = [k for k in spec if k not in NAMES]
    if unknown:
        raise ValueError(f"free: unknown name(s) {unknown}; allowed names are {NAMES}")
    dtype = params["mean"].dtype
    masks = {
        "mean": jnp.asarray(_vector_mask(spec.get("mean", False), dim, "mean"), dtype),
        "log_std": jnp.asarray(_vector_mask(spec.get("std", False), dim, "std"), dtype),
    }
    design = params["design"]
    dspec = spec.get("design", False)
    try:
        masks["design"] = jax.tree_util.tree_map(
            lambda m, sub: jax.tree_util.tree_map(
                lambda leaf: jnp.broadcast_to(
                    jnp.asarray(bool(m), jnp.asarray(leaf).dtype), jnp.shape(leaf)
                ),
                sub,
            ),
            dspec,
            design,
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"free['design'] must be a bool or a pytree of bools that is a prefix "
            f"of the design pytree: {err}"
        ) from err
    if not any(bool(jnp.any(leaf != 0)) for leaf in jax.tree_util.tree_leaves(masks)):
        raise ValueError(f"free selects no parameter at all: {free!r}")
    return masks


def moves_design(mask: dict) -> bool:
    """True when the mask lets some design leaf move."""
    return any(bool(jnp.any(m != 0)) for m in jax.tree_util.tree_leaves(mask["design"]))


def parse_bounds(bounds, dim: int, dtype) -> dict:
    """Box bounds in unconstrained coordinates: ``{"mean"|"log_std": (lo, hi)}``.

    Args:
      bounds: None or ``{"mean": (lo, hi), "std": (lo, hi)}`` with scalars or
        f[dim]; lo <= hi, and lo > 0 for std.
      dim: number of random inputs.
      dtype: working float dtype.

    Raises:
      ValueError: an unknown name or lo > hi (or lo <= 0 for std).
    """
    if bounds is None:
        return {}
    out = {}
    for name, pair in bounds.items():
        if name not in ("mean", "std"):
            raise ValueError(f"bounds: unknown name {name!r}; allowed names are ('mean', 'std')")
        lo, hi = (np.broadcast_to(np.asarray(b, float), (dim,)) for b in pair)
        if np.any(lo > hi) or (name == "std" and np.any(lo <= 0)):
            raise ValueError(
                f"bounds[{name!r}] must satisfy lo <= hi (and lo > 0 for std), got {pair!r}"
            )
        key = "log_std" if name == "std" else "mean"
        tr = np.log if name == "std" else (lambda a: a)
        out[key] = (jnp.asarray(tr(lo), dtype), jnp.asarray(tr(hi), dtype))
    return out


def project(params_u: dict, lo_hi: dict) -> dict:
    """Projection onto box bounds after each update (projected gradient step)."""
    out = dict(params_u)
    for name, (lo, hi) in lo_hi.items():
        out[name] = jnp.clip(params_u[name], lo, hi)
    return out
