"""Inlay hints: what ptxas said about each variant — registers, spills, shared memory — at
the end of the variant's line in the front matter, from the latest compile checks of the
active sample (a line several variants share, a grid, shows their range); and on each key
of a ``[variants]`` grid whose values change them, the registers (and spills) per value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lsprotocol import types as lsp

from cutlens.lsp.lenses import active_sample, fmt_bytes, variant_lines
from cutlens.template.model import Sample, Template, Variant


def _span(values: list[int], fmt: Callable[[int], str] = str) -> str:
    lo, hi = min(values), max(values)
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"


def resources_text(checks: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(label, tooltip) for the checks of some variants; None when ptxas said nothing."""
    usable = [c for c in checks if c.get("regs") is not None]
    if not usable:
        return None
    regs = [int(c["regs"]) for c in usable]
    smem = [int(c.get("smem") or 0) for c in usable]
    spills = [int(c.get("spills") or 0) for c in usable]
    label = (f"regs {_span(regs)} · smem {_span(smem, fmt_bytes)} · "
             f"{_span(spills)} spill{'s' if max(spills) != 1 else ''}")
    tip = "\n".join(f"- {c.get('variant_name')}: {c['regs']} registers, "
                    f"{fmt_bytes(c.get('smem') or 0)} shared memory, "
                    f"{c.get('spills') or 0} spill(s)" for c in usable[:20])
    more = f"\n- …{len(usable) - 20} more" if len(usable) > 20 else ""
    return label, f"ptxas (latest compile check):\n{tip}{more}"


def key_text(variants: list[Variant], key: str,
             by_name: Mapping[Any, dict[str, Any]]) -> str | None:
    """``regs 64→40 · 128→96–168 (spills)`` for a grid key, when its values change the
    registers or spills; None when they do not (or nothing was checked)."""
    per: dict[str, list[dict[str, Any]]] = {}
    for v in variants:
        c = by_name.get(v.name)
        if c is not None and c.get("regs") is not None and key in v.values:
            per.setdefault(_value(v.values[key]), []).append(c)
    if len(per) < 2:
        return None
    figures = {val: (_span([int(c["regs"]) for c in cs]),
                     max(int(c.get("spills") or 0) for c in cs)) for val, cs in per.items()}
    if len(set(figures.values())) < 2:
        return None
    return "regs " + " · ".join(f"{val}→{regs}" + (" (spills)" if spills else "")
                                for val, (regs, spills) in figures.items())


def _value(value: object) -> str:
    if isinstance(value, list | tuple):
        return "x".join(str(x) for x in value)
    return str(value)


def _end(lines: list[str], line0: int) -> lsp.Position:
    return lsp.Position(line0, len(lines[line0].encode("utf-16-le")) // 2)


def key_hints(template: Template, sample: Sample, by_name: Mapping[Any, dict[str, Any]],
              lines: list[str], rng: lsp.Range | None) -> list[lsp.InlayHint]:
    """Hints at the end of the grid's key lines (``tile = [...]``)."""
    spec = template.settings.get("variants")
    if not isinstance(spec, dict) or "generator" in spec:
        return []
    grid = [v for v in template.variants(sample) if v.line not in
            template.front.variant_list_lines]
    out = []
    for key in spec:
        line0 = template.front.lines.get(("variants", key), 0) - 1
        if line0 < 0 or line0 >= len(lines) or (
                rng is not None and not rng.start.line <= line0 <= rng.end.line):
            continue
        text = key_text(grid, key, by_name)
        if text is not None:
            out.append(lsp.InlayHint(position=_end(lines, line0), label=text,
                                     padding_left=True, tooltip=f"ptxas, per value of {key} "
                                     "(latest compile check)"))
    return out


def inlay_hints(template: Template, source: str, checks: list[dict[str, Any]],
                sample_name: str | None, rng: lsp.Range | None = None) -> list[lsp.InlayHint]:
    """One hint per variant line (own or shared) with ptxas figures, within ``rng``."""
    if not template.front.start_line or template.settings_file not in (None, template.path):
        return []
    sample = active_sample(template, sample_name)
    by_name = {c.get("variant_name"): c for c in checks if c.get("sample") == sample.name}
    lines = source.splitlines()
    out = []
    for vl in variant_lines(template, sample):
        if rng is not None and not rng.start.line <= vl.line0 <= rng.end.line:
            continue
        if vl.line0 >= len(lines):
            continue
        text = resources_text([by_name[v.name] for v in vl.variants if v.name in by_name])
        if text is None:
            continue
        label, tip = text
        out.append(lsp.InlayHint(
            position=_end(lines, vl.line0), label=label,
            padding_left=True, tooltip=lsp.MarkupContent(lsp.MarkupKind.Markdown, tip)))
    out += key_hints(template, sample, by_name, lines, rng)
    return sorted(out, key=lambda h: h.position.line)
