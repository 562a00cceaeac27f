"""Where a sweep's compile time went: nvcc's phases and the costliest template instantiations
summed over its distinct builds, and a hint for each variant key that only changes values
the kernel could take at run time (a ``[variants.runtime]`` candidate: its builds would be
one). Torch-free; ``cutlens bench`` prints it under the table and puts it in the JSON
report as ``compile_summary``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cutlens.render.shapes import COMPILE_TIME_LINE
from cutlens.render.unit import RenderedUnit

TOP = 10
_CONTROL = re.compile(r"\s*(for|while|if|switch|do|else)\b")
_ASSIGN = re.compile(r"[^=!<>]=[^=]")


def summarize(rows: Iterable[Mapping[str, Any]],
              hints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Phases and instantiations summed over the distinct builds of ``rows`` (each build
    once, however many variants it serves), the dominant phase, and ``hints``."""
    builds: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        c = r.get("compile")
        if isinstance(c, Mapping) and r.get("build"):
            builds.setdefault(str(r["build"]), c)
    phases: dict[str, float] = defaultdict(float)
    inst: dict[str, float] = defaultdict(float)
    for c in builds.values():
        for k, v in (c.get("phases") or {}).items():
            phases[k] += float(v)
        for name, s in c.get("top_instantiations") or []:
            inst[str(name)] += float(s)
    total = sum(phases.values())
    ranked = sorted(phases.items(), key=lambda kv: -kv[1])
    out: dict[str, Any] = {
        "builds": len(builds),
        "compiled_now": sum(1 for c in builds.values() if not c.get("cached")),
        "phase_seconds": round(total, 3),
        "phases": {k: round(v, 3) for k, v in ranked},
        "dominant_phase": ranked[0][0] if ranked else None,
        "dominant_share": round(ranked[0][1] / total, 3) if ranked and total else None,
        "top_instantiations": [[k, round(v, 3)] for k, v in sorted(
            inst.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "hints": list(hints or []),
    }
    return out


def format_summary(summary: Mapping[str, Any]) -> str:
    """A few lines for the terminal (empty when there is nothing to say)."""
    lines = []
    if summary.get("dominant_phase"):
        top = ", ".join(f"{k} {v:.1f} s" for k, v in list(summary["phases"].items())[:4])
        lines.append(f"compile: {summary['builds']} build(s), {summary['phase_seconds']:.1f} s "
                     f"of nvcc phases; {summary['dominant_phase']} dominates "
                     f"({100 * summary['dominant_share']:.0f} %): {top}")
    for name, s in summary.get("top_instantiations", [])[:3]:
        lines.append(f"  instantiation {s:6.2f} s  {_short(name)}")
    for h in summary.get("hints", []):
        lines.append(f"hint: {h['message']}")
    return "".join(line + "\n" for line in lines)


def _short(name: str, limit: int = 140) -> str:
    return name if len(name) <= limit else name[:limit - 3] + "..."


# ---- keys that could be runtime parameters ------------------------------------------------
def runtime_hints(units: list[RenderedUnit]) -> list[dict[str, Any]]:
    """Variant keys compiled in whose values only flow into assignments in the kernel
    function's body (``args.scheduler.max_swizzle_size = 8;``), which could as well read an
    argument: not a type, template argument, ``constexpr``, preprocessor line or a loop or
    branch the compiler may specialise. Each with the builds it costs and where it is
    used."""
    keys = {k for u in units for k in u.variant.values if k not in u.variant.runtime}
    out = []
    for key in sorted(keys):
        hint = _hint(key, units)
        if hint is not None:
            out.append(hint)
    return out


def _hint(key: str, units: list[RenderedUnit]) -> dict[str, Any] | None:
    groups: dict[tuple[str, str], dict[str, RenderedUnit]] = defaultdict(dict)
    for u in units:
        if key not in u.variant.values or u.signature is None:
            continue
        rest = {k: v for k, v in u.variant.values.items() if k != key}
        sig = (u.sample.name, json.dumps(rest, sort_keys=True, default=str))
        groups[sig].setdefault(json.dumps(u.variant.values[key], default=str), u)
    where: tuple[str, int] | None = None
    differing = 0
    for members in groups.values():
        first, *others = members.values()
        for other in others:
            if other.text == first.text:
                continue
            lines = _body_differences(first, other)
            if lines is None:
                return None
            differing += 1
            if where is None and lines:
                o = first.source_map.origin(lines[0])
                where = (o.file, o.line) if o else None
    if not differing:
        return None
    texts = {u.text for u in units if key in u.variant.values}
    # with the key an argument, each group would be one build: its first value's text
    merged = {members[min(members)].text for members in groups.values()}
    at = f" (used at {Path(where[0]).name}:{where[1]})" if where else ""
    return {"key": key, "builds": len(texts), "builds_if_runtime": len(merged),
            "file": where[0] if where else None, "line": where[1] if where else None,
            "message": f"variant key {key!r} only changes values in the kernel function's "
                       f"body{at}: in [variants.runtime] it would be an argument of the kernel, "
                       f"and {len(texts)} build(s) would be {len(merged)}"}


def _compile_time(line: str) -> bool:
    """Not a plain assignment in a function body: a line whose values C++ fixes at compile
    time (or a template argument list), a loop or branch header, or no assignment."""
    return bool(COMPILE_TIME_LINE.search(line) or re.search(r"<[^<>;]*>", line)
                or _CONTROL.match(line) or not _ASSIGN.search(line))


def _body_differences(a: RenderedUnit, b: RenderedUnit) -> list[int] | None:
    """Lines of ``a`` (1-based) that differ from ``b``, when every one is a runtime-capable
    line of the kernel function's body; else None."""
    assert a.signature is not None
    a_lines, b_lines = a.text.splitlines(), b.text.splitlines()
    start = next((i for i, line in enumerate(a_lines, start=1)
                  if f" {a.signature.kernel_name}(" in line and "PT_EXPORT" in line), None)
    if start is None:
        return None
    out = []
    sm = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if tag != "replace" or i2 - i1 != j2 - j1:
            return None  # lines added or removed: structure, not a value
        for i in range(i1, i2):
            if i + 1 <= start or _compile_time(a_lines[i]) \
                    or _compile_time(b_lines[j1 + i - i1]):
                return None
            out.append(i + 1)
    return out
