"""Inlay hints: what ptxas said about each variant — registers, spills, shared memory — at
the end of the variant's line in the front matter, from the latest compile checks of the
active sample (a line several variants share, a grid, shows their range)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp

from cutlens.lsp.lenses import active_sample, fmt_bytes, variant_lines
from cutlens.template.model import Template


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


def inlay_hints(template: Template, source: str, checks: list[dict[str, Any]],
                sample_name: str | None,
                rng: lsp.Range | None = None) -> list[lsp.InlayHint]:
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
            position=lsp.Position(vl.line0, len(lines[vl.line0].encode("utf-16-le")) // 2),
            label=label,
            padding_left=True, tooltip=lsp.MarkupContent(lsp.MarkupKind.Markdown, tip)))
    return out
