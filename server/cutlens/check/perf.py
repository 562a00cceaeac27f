"""The compiler's performance warnings on the variant key that caused them.

ptxas says when code will be slow: ``(C7511) Potential Performance Loss: wgmma.mma_async
instructions are serialized ...`` (an info line :mod:`cutlens.nvcc.ptxas` reads as a warning
with its code), ``Registers are spilled to local memory`` (``spill``), and a stack frame in
its resource usage (``stack``, added here from ``-Xptxas -v``'s figures). Each is about a
kernel, which :mod:`cutlens.nvcc.mapping` places on the kernel's line (or the ``#include``
that brings a CUTLASS kernel in): the same line for every variant, not what the author would
change. Here, among the variants of a sample that were compiled, the keys whose values
separate the variants with the warning from those without it are its cause: each variant's
warning moves to the line that chose that key (its ``[[variant]]`` entry's key, the grid's
key, the config table's key), with the kernel's line kept as related information. When no
key separates them (one variant checked, or all warn), the warning goes on the variant's own
line (its ``[[variant]]`` table, the ``[variants]`` grid).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from cutlens.diagnostics import Diagnostic, Related
from cutlens.nvcc.mapping import UnitMap, map_message, suppressed
from cutlens.nvcc.messages import CompilerMessage
from cutlens.nvcc.pool import CompileResult
from cutlens.render.renderer import RenderedUnit
from cutlens.template.model import Template, Variant

#: Codes of the performance warnings made from ptxas's resource usage.
SPILL, STACK = "spill", "stack"
_PTXAS_PERF = re.compile(r"^C\d+$")
_KEY_LINE = r"^\s*(?:{key}|\"{key}\"|'{key}')\s*="


def is_perf(d: Diagnostic) -> bool:
    """A ptxas performance warning (Potential Performance Loss, spills, a stack frame)."""
    return d.source == "ptxas" and d.severity == "warning" and (
        d.code in (SPILL, STACK) or bool(_PTXAS_PERF.match(d.code or "")))


def resource_diagnostics(unit: RenderedUnit, res: CompileResult, found: list[Diagnostic],
                         suppress: Collection[str] = ()) -> list[Diagnostic]:
    """Performance warnings from ptxas's resource usage that its messages lack: a kernel's
    stack frame (local memory) without spills, spills when ``-warn-spills`` was not on."""
    spilled = {d.message for d in found if d.code == SPILL}
    out: list[Diagnostic] = []
    um: UnitMap | None = None
    for r in res.resources:
        spills = r.spill_stores + r.spill_loads
        if spills and not any(r.kernel in m or r.mangled in m for m in spilled):
            code, text = SPILL, (f"Registers are spilled to local memory in function "
                                 f"'{r.kernel}', {r.spill_stores} bytes spill stores, "
                                 f"{r.spill_loads} bytes spill loads")
        elif r.stack_bytes and not spills:
            code, text = STACK, (f"Potential Performance Loss: {r.stack_bytes} bytes stack "
                                 f"frame (local memory) in function '{r.kernel}'")
        else:
            continue
        if suppressed(code, suppress):
            continue
        um = um or UnitMap(unit, res)
        m = CompilerMessage(tool="ptxas", severity="warning", file=None, line=None,
                            column=None, message=text, code=code, chain=[], raw="",
                            kernel=r.kernel)
        d = map_message(m, um)
        if d is not None:
            out.append(d)
    return out


def _value_text(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def cause_keys(warned: list[Variant], clean: list[Variant]) -> list[str]:
    """The compile-time keys whose values in ``warned`` never occur in ``clean``."""
    if not warned or not clean:
        return []
    keys = dict.fromkeys(k for v in warned for k in v.build_values)
    out = []
    for k in keys:
        bad = {_value_text(v.values.get(k)) for v in warned}
        good = {_value_text(v.values.get(k)) for v in clean}
        if not bad & good:
            out.append(k)
    return out


def key_line(t: Template, v: Variant, key: str | None) -> tuple[str, int]:
    """(file, line) that chose ``key`` for variant ``v``: its ``[[variant]]`` entry's key,
    the grid's key, the key of a per-template table in the config; the variant's own line
    when the key has none (or ``key`` is None)."""
    if t.settings_file is not None and t.settings_file != t.path:
        return t.setting_line("variants", key)
    spec = t.settings.get("variants")
    if isinstance(spec, dict) and "generator" in spec and v.line <= 1:
        return str(t.path), t.front.line_of("variants", "generator")
    if v.line in t.front.variant_list_lines:  # a [[variant]] table: its own key's line
        lines = t.source.splitlines()
        pat = re.compile(_KEY_LINE.format(key=re.escape(key))) if key else None
        for i in range(v.line, min(len(lines), t.front.end_line)):
            if lines[i].lstrip().startswith("["):
                break
            if pat is not None and pat.match(lines[i]):
                return str(t.path), i + 1
        return str(t.path), v.line
    if key is not None and ("variants", key) in t.front.lines:
        return str(t.path), t.front.line_of("variants", key)
    return str(t.path), v.line or t.front.line_of("variants")


_FUNCTION = re.compile(r"function '([^']+)'")


def _group(sample: str, d: Diagnostic) -> tuple[str, str, str]:
    """Warnings alike: one sample, one code, one kernel (ptxas names it in the message)."""
    m = _FUNCTION.search(d.message)
    return sample, d.code or "", m.group(1) if m else ""


def attribute(t: Template, per_unit: list[tuple[RenderedUnit, list[Diagnostic]]]) -> None:
    """Move each performance warning to the line of the key that caused it (in place)."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for u, diags in per_unit:
        for d in diags:
            if is_perf(d):
                groups.setdefault(_group(u.sample.name, d), set()).add(u.variant.name)
    if not groups:
        return
    compiled: dict[str, list[Variant]] = {}
    for u, _ in per_unit:
        compiled.setdefault(u.sample.name, []).append(u.variant)
    causes = {}
    for key, names in groups.items():
        vs = compiled[key[0]]
        causes[key] = cause_keys([v for v in vs if v.name in names],
                                 [v for v in vs if v.name not in names])
    for u, diags in per_unit:
        for d in diags:
            if is_perf(d):
                _move(t, u.variant, d, causes[_group(u.sample.name, d)])


def _move(t: Template, v: Variant, d: Diagnostic, keys: list[str]) -> None:
    """To the line of the first key in ``keys``. No key separates the variants that warn
    (every compiled one does, or only one was compiled): a ``[[variant]]`` entry still
    takes it on its own line; otherwise no variant key is the cause (a flag, a header's
    kernel), and the warning stays where ptxas's kernel maps."""
    key = keys[0] if keys else None
    if key is None and (t.settings_file not in (None, t.path)
                        or v.line not in t.front.variant_list_lines):
        return
    file, line = key_line(t, v, key)
    if (file, line) == (d.file, d.line):
        return
    d.related.insert(0, Related(d.file, d.line, "ptxas reported it for the kernel here",
                                d.column))
    for other in keys[1:]:
        o_file, o_line = key_line(t, v, other)
        d.related.append(Related(o_file, o_line, f"{other} = "
                                 f"{_value_text(v.values.get(other))} also separates the "
                                 "variants with this warning from those without"))
    if key is not None:
        d.message += f" (variant key {key} = {_value_text(v.values.get(key))})"
    d.file, d.line, d.column, d.end_line, d.end_column = file, line, 0, line, 0
