"""Hover: what a ``{{ }}`` / ``{% %}`` rendered to for the active sample × variant; hook
documentation; a node's dtype, sizes and strides; a variant key's value."""

from __future__ import annotations

from lsprotocol import types as lsp

from cutlens.lsp import jinja_text
from cutlens.lsp.completion import context_class, hook_doc
from cutlens.render.renderer import RenderedUnit
from cutlens.template.model import Template

MAX_SHOWN = 6
MAX_CHARS = 1500


def _code(text: str) -> str:
    text = text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "\n…"
    return f"```cuda-cpp\n{text}\n```"


def _rendered_expression(unit: RenderedUnit, file: str, line0: int, col: int) -> str | None:
    try:
        _frame, spans = unit.source_map.expression_at(file, line0 + 1, col)
    except KeyError:
        return None
    values = [unit.text[s.start:s.end] for s in spans]
    if not values:
        return "*(not rendered for this sample × variant)*"
    shown = values[:MAX_SHOWN]
    parts = [_code(v.strip("\n") if v.strip() else repr(v)) for v in shown]
    more = f"\n\n*…and {len(values) - MAX_SHOWN} more times*" if len(values) > MAX_SHOWN else ""
    head = "renders to" if len(values) == 1 else f"renders {len(values)} times"
    return f"**{head}**\n\n" + "\n\n".join(parts) + more


def _rendered_lines(unit: RenderedUnit, file: str, line0: int) -> str | None:
    lines = unit.source_map.rendered_lines(file, line0 + 1)
    if not lines:
        return "*(produces no output for this sample × variant)*"
    text_lines = unit.text.splitlines()
    shown = [text_lines[i - 1] for i in lines[:40] if i - 1 < len(text_lines)]
    more = f"\n\n*…{len(lines) - 40} more lines*" if len(lines) > 40 else ""
    return f"**renders {len(lines)} line(s)**\n\n" + _code("\n".join(shown)) + more


def _where(unit: RenderedUnit | None) -> str:
    if unit is None:
        return ""
    return f"\n\n---\n*sample `{unit.sample.name}` × variant `{unit.variant.name}`*"


def hover(template: Template | None, unit: RenderedUnit | None, file: str, source: str,
          line0: int, col: int) -> lsp.Hover | None:
    """Hover content at a 0-based position of a template."""
    lines = source.splitlines()
    if line0 >= len(lines):
        return None
    line = lines[line0]
    region = jinja_text.region_at(line, col)
    word = jinja_text.word_at(line, col)
    md: str | None = None
    rng = None
    if word is not None and region is not None and region.kind != "comment":
        name, start, end = word
        rng = lsp.Range(lsp.Position(line0, start), lsp.Position(line0, end))
        owner, _, attr = name.rpartition(".")
        if owner in ("kernel", "template") and attr:
            m = hook_doc(attr, context_class(template, owner))
            if m is not None:
                md = f"```python\n{owner}.{m.name}{m.signature}\n```\n\n{m.doc}"
                if unit is not None and region.kind == "expr":
                    rendered = _rendered_expression(unit, file, line0, region.start)
                    md += "\n\n" + (rendered or "") + _where(unit)
        elif not owner and unit is not None:
            node = unit.sample.nodes.get(name, False)
            if node is not False:
                if node is None:
                    md = f"**{name}**: `None` (optional input absent in sample " \
                         f"`{unit.sample.name}`)"
                else:
                    lay = node.get_layout()
                    md = (f"**{name}** — node of sample `{unit.sample.name}`\n\n"
                          f"| dtype | size | stride | offset |\n|---|---|---|---|\n"
                          f"| {lay.dtype.name} | {list(map(str, lay.size))} | "
                          f"{list(map(str, lay.stride))} | {lay.offset} |")
                    if unit.sample.hints:
                        md += f"\n\nhints: `{unit.sample.hints}`"
            elif name in unit.variant.values and template is not None:
                values = []
                for v in template.variants(unit.sample):
                    val = v.values.get(name)
                    if val not in values:
                        values.append(val)
                md = (f"**{name}** = `{unit.variant.values[name]!r}` in variant "
                      f"`{unit.variant.name}`\n\nall values: "
                      + ", ".join(f"`{v!r}`" for v in values))
    if md is None and region is not None and unit is not None:
        rng = lsp.Range(lsp.Position(line0, region.start), lsp.Position(line0, region.end))
        if region.kind == "expr":
            md = _rendered_expression(unit, file, line0, region.start)
        elif region.kind == "stmt":
            md = _rendered_lines(unit, file, line0)
        if md is not None:
            md += _where(unit)
    if md is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, md), range=rng)
