"""Scenario ↔ nested dict ↔ TOML, with strict validation.

Every value read from a dict (a TOML file, ``--set``, `Scenario.replace`) is checked
against the parameter table: known key, type, finite, inside the allowed range; the
message names the dotted key and the range. NumPy and JAX scalars (0-d arrays
included) are accepted where a number is expected and stored as Python scalars.
`check` then tests what single-field ranges cannot express (lanes a multiple of
lanes per laser, window order, positive-definite correlations).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from cpojax.scenario.errors import ScenarioError
from cpojax.scenario.keys import suggest
from cpojax.scenario.table import (
    MULTI_COMPONENT_SPREADS,
    PER_LASER_SPREADS,
    SPREAD_LEVELS,
    Correlations,
    Spread,
    Spreads,
    leaf_meta,
)

__all__ = [
    "check",
    "check_value",
    "from_dict",
    "from_toml",
    "load",
    "range_text",
    "to_dict",
    "to_toml",
]


# --------------------------------------------------------------------------- one value
def range_text(meta: Mapping[str, Any]) -> str:
    """The allowed values of a parameter as text: ``[1, 100]``, ``(0, 0.5)``, ``one of 'a', 'b'``."""
    if meta.get("lo") == 0 and meta.get("hi") == 0 and not meta.get("choices"):
        return "true or false"
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    lo, hi = meta["lo"], meta["hi"]
    lb = "(" if meta.get("lo_open") else "["
    rb = ")" if meta.get("hi_open") or hi == math.inf else "]"
    hi_s = "inf" if hi == math.inf else f"{hi:g}"
    return f"{lb}{lo:g}, {hi_s}{rb}"


def _as_python(key: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """A NumPy scalar or a 0-d NumPy/JAX array as the Python scalar it holds; else unchanged."""
    if not isinstance(value, np.generic | np.ndarray | jax.Array):
        return value
    try:
        arr = np.asarray(value)
    except TypeError:  # a tracer (jax.errors.TracerArrayConversionError)
        raise ScenarioError(
            f"{key} must be a concrete value, not a traced one (inside jit/grad use "
            f"cpojax.scenario.with_values, which does not validate); got {value!r}"
        ) from None
    if arr.ndim != 0:
        raise ScenarioError(
            f"{key} must be a single value in {range_text(meta)}; got an array of shape {arr.shape}"
        )
    return arr.item()


def check_value(key: str, value: Any, default: Any, meta: Mapping[str, Any]) -> Any:
    """`value` for the parameter `key` (whose default is `default`), validated against `meta`
    and converted to the parameter's Python type (float, int, bool or str)."""
    value = _as_python(key, value, meta)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"{key} must be true or false; got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ScenarioError(f"{key} must be a string, {range_text(meta)}; got {value!r}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ScenarioError(f"{key} must be {range_text(meta)}; got {value!r}")
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ScenarioError(f"{key} must be {kind} in {range_text(meta)}; got {value!r}")
    if isinstance(default, int) and not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ScenarioError(f"{key} must be an integer in {range_text(meta)}; got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(f"{key} must be a finite number in {range_text(meta)}; got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    bad = (
        value < lo
        or value > hi
        or (meta.get("lo_open") and value == lo)
        or (meta.get("hi_open") and value == hi)
    )
    if bad:
        raise ScenarioError(
            f"{key} = {value!r} is out of range: allowed {range_text(meta)} {meta['unit']}".rstrip()
        )
    return float(value) if isinstance(default, float) else int(value)


# --------------------------------------------------------------------------- dict → scenario
def _correlations_from_dict(data: Mapping[str, Any], prefix: str) -> Correlations:
    spreads = [f.name for f in dataclasses.fields(Spreads)]
    single = [n for n in spreads if n not in MULTI_COMPONENT_SPREADS]
    levels = {}
    for level, table in data.items():
        key = f"{prefix}{level}"
        if level not in SPREAD_LEVELS:
            raise ScenarioError(
                f"unknown parameter {key!r}: correlation levels are wafer, die, lane"
            )
        if not isinstance(table, Mapping):
            raise ScenarioError(f'{key} must be a table of "a,b" = rho entries')
        entries = []
        seen = set()
        for pair, raw in table.items():
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
            rho = _as_python(f'{key}."{pair}"', raw, {"lo": -1, "hi": 1, "lo_open": True})
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


def _decode(
    cls, data: Mapping[str, Any], base: Any, prefix: str, owner_meta: Mapping[str, Any] | None
) -> Any:
    """`cls` built from `data` on top of `base` (an instance of `cls`), every value checked."""
    if cls is Correlations:
        merged = to_dict(base)
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
            raise ScenarioError(f"unknown parameter {key!r}{suggest(key)}")
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
            kwargs[name] = _decode(type(cur), val, cur, key + ".", f.metadata)
        else:
            if isinstance(val, Mapping):
                raise ScenarioError(f"{key} must be a value, not a table")
            kwargs[name] = check_value(key, val, cur, leaf_meta(f, base, owner_meta))
    return cls(**kwargs)


def from_dict(cls, data: Mapping[str, Any], *, base: Any = None) -> Any:
    """A `cls` (the Scenario class) from a (possibly partial) nested dict on top of `base`
    (default: ``cls()``), every value validated and the result cross-checked."""
    if not isinstance(data, Mapping):
        raise ScenarioError("scenario must be a table of tables")
    sc = _decode(cls, data, base if base is not None else cls(), "", None)
    check(sc)
    return sc


def from_toml(cls, text: str, *, source: str = "<string>") -> Any:
    """A `cls` from TOML text (any subset of keys); messages are prefixed with `source`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: malformed TOML: {e}") from None
    try:
        return from_dict(cls, data)
    except ScenarioError as e:
        raise ScenarioError(f"{source}: {e}") from None


#: Largest scenario file read (a full scenario is about 10 kB of TOML).
MAX_FILE_BYTES = 1 << 20


def load(cls, path: str | os.PathLike) -> Any:
    """A `cls` from a UTF-8 TOML file (any subset of keys)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # bounded: `/dev/zero` must not hang
    except OSError as e:
        raise ScenarioError(
            f"cannot read scenario file {os.fspath(path)!r}: {e.strerror}"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(
            f"{os.fspath(path)}: larger than {MAX_FILE_BYTES} bytes; a scenario file is a "
            "few kB of TOML"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{os.fspath(path)}: not UTF-8 text") from None
    return from_toml(cls, text, source=os.fspath(path))


# --------------------------------------------------------------------------- scenario → dict, TOML
def to_dict(obj: Any) -> dict[str, Any]:
    """Nested plain-Python dict of every value of a scenario or one of its sections."""
    if isinstance(obj, Correlations):
        return {
            level: {f"{a},{b}": rho for a, b, rho in getattr(obj, level)} for level in SPREAD_LEVELS
        }
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _write_toml(obj: Any, out: io.StringIO, path: list[str], comments: bool, meta=None) -> None:
    if isinstance(obj, Correlations):
        if comments:
            out.write("\n# Correlations between single-component spreads, per level:\n")
            out.write(
                '# "a,b" = rho with |rho| < 1, e.g. "ring_resonance_nm,ring_coupling_ln" = 0.3\n'
            )
        for level, table in to_dict(obj).items():
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
                m = leaf_meta(f, obj, meta)
                unit = m.get("unit", "")
                note = f"{m.get('doc', '')}; {unit + ', ' if unit else ''}allowed {range_text(m)}"
                if m.get("src") and not isinstance(obj, Spread):
                    note += f" [{m['src']}]"
                line = f"{line:<40} # {note}"
            out.write(line + "\n")
    for f in tables:
        _write_toml(getattr(obj, f.name), out, [*path, f.name], comments, f.metadata)


def to_toml(obj: Any, *, comments: bool = True) -> str:
    """Full TOML text of a scenario; with `comments`, a comment per key (description, unit,
    allowed range, source tag)."""
    out = io.StringIO()
    if comments:
        out.write("# cpojax scenario. Every key is optional: missing keys take the default.\n")
        out.write("# Source tags: [S] published figure, [S2] press/vendor, [E] estimate.\n")
    _write_toml(obj, out, [], comments)
    return out.getvalue()


# --------------------------------------------------------------------------- consistency
def check(sc: Any) -> None:
    """Cross-field checks of a scenario that single-field ranges cannot express."""
    s, w = sc.system, sc.window
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
    if not sc.limits.ber_threshold < ber_max:
        raise ScenarioError(
            f"limits.ber_threshold must be in (0, {ber_max}) for {s.modulation.upper()} "
            f"(where the Gaussian BER formula reaches Q = 0), got {sc.limits.ber_threshold}"
        )
    for a, b, _ in sc.correlation.lane:
        if (a in PER_LASER_SPREADS) != (b in PER_LASER_SPREADS):
            raise ScenarioError(
                f'correlation.lane."{a},{b}": a per-laser spread ({", ".join(PER_LASER_SPREADS)}) '
                "can only be correlated with another per-laser spread at lane level"
            )
    for level in SPREAD_LEVELS:
        entries = getattr(sc.correlation, level)
        if entries:
            names = sorted({n for a, b, _ in entries for n in (a, b)})
            idx = {n: i for i, n in enumerate(names)}
            m = [[1.0 if i == j else 0.0 for j in range(len(names))] for i in range(len(names))]
            for a, b, rho in entries:
                m[idx[a]][idx[b]] = m[idx[b]][idx[a]] = rho
            if np.linalg.eigvalsh(np.asarray(m)).min() <= 1e-9:
                raise ScenarioError(
                    f"correlation.{level}: the correlation matrix of {', '.join(names)} is not positive definite"
                )
    if w.engine_temp_min_c > w.engine_temp_max_c:
        raise ScenarioError("window.engine_temp_min_c must be <= window.engine_temp_max_c")
    if w.laser_temp_min_c > w.laser_temp_max_c:
        raise ScenarioError("window.laser_temp_min_c must be <= window.laser_temp_max_c")
