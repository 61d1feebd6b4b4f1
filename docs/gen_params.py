"""Print the default-scenario parameter table of docs/model.md (Markdown) from the code.

Usage: ``python docs/gen_params.py > /tmp/params.md`` and paste the output over the
table in docs/model.md#default-parameters. Every row comes from the dataclass metadata
of the scenario table (default, unit, allowed range, description, source tag), so the
documentation cannot drift from the validator.
"""

from __future__ import annotations

import dataclasses
import math

from cpojax.scenario import Scenario, iter_params


def _num(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return f"`{v}`"
    return f"{v:g}"


def _range(meta) -> str:
    if meta.get("choices"):
        return " / ".join(f"`{c}`" for c in meta["choices"])
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo == 0 and hi == 0:
        return "true / false"
    lb = "(" if meta.get("lo_open") else "["
    rb = ")" if meta.get("hi_open") or hi == math.inf else "]"
    hs = "∞" if hi == math.inf else f"{hi:g}"
    return f"{lb}{lo:g}, {hs}{rb}"


def main() -> None:
    sc = Scenario.default()
    spread_meta = {f.name: f.metadata for f in dataclasses.fields(sc.spread)}
    print("| key | default | unit | allowed | src | description |")
    print("|---|---|---|---|---|---|")
    done_spreads = set()
    for key, field, value in iter_params(sc):
        parts = key.split(".")
        if parts[0] == "correlation":
            print(f"| `{key}` | none | | | | correlation pairs at this level (empty) |")
            continue
        if parts[0] == "spread":
            name = parts[1]
            if name in done_spreads:
                continue
            done_spreads.add(name)
            sp = getattr(sc.spread, name)
            m = spread_meta[name]
            trunc = f", truncated ±{sp.truncate_sigma:g}σ" if sp.truncate_sigma else ""
            default = f"{sp.wafer:g} / {sp.die:g} / {sp.lane:g}{trunc}"
            hi = m.get("hi")
            allowed = f"[0, {hi:g}] each" if hi is not None else "≥ 0"
            print(
                f"| `spread.{name}` | {default} | {m['unit']} | {allowed} "
                f"| [{m.get('src', 'E')}] | {m['doc']} |"
            )
            continue
        meta = field.metadata
        print(
            f"| `{key}` | {_num(value)} | {meta.get('unit', '')} | {_range(meta)} "
            f"| [{meta.get('src', 'E')}] | {meta.get('doc', '')} |"
        )


if __name__ == "__main__":
    main()
