"""Hover: what a ``{{ }}`` / ``{% %}`` rendered to for the active sample × variant; hook
documentation; a node's dtype, sizes and strides; a variant key's value. In the front matter,
on a ``[variants]`` grid key: the benchmark results by that key's values; on the
``[variants]`` header: the grid's variants, fastest first."""

from __future__ import annotations

import json
from typing import Any

from lsprotocol import types as lsp

from cutlens.bench.best import best_row, is_ok
from cutlens.bench.report import fmt_ms, status_text
from cutlens.lsp import jinja_text
from cutlens.lsp.captured_hover import captured_hover
from cutlens.lsp.completion import context_class, hook_doc
from cutlens.render.renderer import RenderedUnit
from cutlens.template.model import Sample, Template
from cutlens.template.variants import RESERVED

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


#: Rows of the whole-grid table on the ``[variants]`` header.
MAX_GRID_ROWS = 15


def _value(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text.replace("|", "\\|")


def compile_text(c: Any) -> str:
    """Where the variant's build spent its compile time (a result's ``compile``), as a
    hover paragraph ("" when the result has none)."""
    if not isinstance(c, dict) or not c.get("phases"):
        return ""
    phases = sorted(c["phases"].items(), key=lambda kv: -kv[1])
    text = (f"\n\n**build**: {c.get('seconds', sum(v for _, v in phases)):.1f} s of nvcc"
            f"{' (cached)' if c.get('cached') else ''} — "
            + ", ".join(f"{k} {v:.1f} s" for k, v in phases[:4]))
    top = c.get("top_instantiations") or []
    if top:
        text += "\n\ncostliest instantiations: " + "; ".join(
            f"`{str(n)[:80]}` {float(s):.1f} s" for n, s in top[:3])
    if c.get("static_sizes"):
        text += f"\n\n{c['static_sizes']}"
    elif c.get("shapes") == "generic":
        text += "\n\nsizes are kernel arguments: one build serves every shape"
    return text


def grid_key_hover(template: Template, sample: Sample, key: str,
                   runs: list[dict[str, Any]]) -> str:
    """The results of the sample's variants grouped by the values of grid key ``key``."""
    by_name = {r.get("variant_name"): r for r in runs if r.get("sample") == sample.name}
    groups: dict[str, list[Any]] = {}
    for v in template.variants(sample):
        if key in v.values:
            groups.setdefault(json.dumps(v.values[key], sort_keys=True), []).append(v)
    if not groups:
        return f"**{key}**: no variant of sample `{sample.name}` has this key"
    lines = [f"**{key}** — {len(groups)} value(s) over {sum(map(len, groups.values()))} "
             f"variant(s) of sample `{sample.name}`", ""]
    if not any(v.name in by_name for vs in groups.values() for v in vs):
        lines += [f"| {key} | variants |", "|---|---:|"]
        lines += [f"| `{_value(vs[0].values[key])}` | {len(vs)} |" for vs in groups.values()]
        lines += ["", "*no benchmark results yet (▶ Benchmark)*"]
        return "\n".join(lines)
    table = []
    for vs in groups.values():
        rows = [by_name[v.name] for v in vs if v.name in by_name]
        ok = [r for r in rows if is_ok(r)]
        best = best_row(ok)
        table.append((best["ms"] if best else float("inf"), vs[0].values[key], len(vs),
                      sum(1 for r in ok if r.get("verified")), len(rows) - len(ok),
                      best, len(vs) - len(rows)))
    table.sort(key=lambda t: t[0])
    lines += [f"| {key} | variants | ✓ | ✗ | best ms | best variant |",
              "|---|---:|---:|---:|---:|---|"]
    for _ms, value, n, good, bad, best, not_run in table:
        name = best["variant_name"] if best else "—"
        ran = f"{n}" + (f" ({not_run} not run)" if not_run else "")
        lines.append(f"| `{_value(value)}` | {ran} | {good} | {bad} | "
                     f"{fmt_ms(best['ms']) if best else '—'} | {name} |")
    return "\n".join(lines)


def grid_hover(template: Template, sample: Sample, runs: list[dict[str, Any]]) -> str:
    """The sample's variants, fastest first (at most :data:`MAX_GRID_ROWS`)."""
    variants = template.variants(sample)
    by_name = {r.get("variant_name"): r for r in runs if r.get("sample") == sample.name}
    head = f"**{len(variants)} variant(s)** of sample `{sample.name}`"
    rows = [by_name[v.name] for v in variants if v.name in by_name]
    if not rows:
        return head + "\n\n*no benchmark results yet (▶ Benchmark)*"
    rows.sort(key=lambda r: (not is_ok(r), r.get("ms") or float("inf")))
    lines = [head, "", "| variant | ms | spread | ✓/✗ |", "|---|---:|---:|---|"]
    for r in rows[:MAX_GRID_ROWS]:
        spread = r.get("spread_pct")
        lines.append(f"| {r['variant_name']} | {fmt_ms(r.get('ms'))} | "
                     f"{'—' if spread is None else f'±{spread:.1f}%'} | "
                     f"{status_text(r).replace('|', '/')} |")
    if len(rows) > MAX_GRID_ROWS:
        lines.append(f"\n*…{len(rows) - MAX_GRID_ROWS} more: the results view has them all*")
    if len(rows) < len(variants):
        lines.append(f"\n*{len(variants) - len(rows)} not benchmarked*")
    return "\n".join(lines)


def front_matter_hover(template: Template, sample: Sample, line0: int, line: str,
                       runs: list[dict[str, Any]]) -> lsp.Hover | None:
    """Hover on the ``[variants]`` header or one of its grid keys (front matter only)."""
    fm = template.front
    if not fm.start_line or not fm.start_line <= line0 + 1 <= fm.end_line \
            or template.settings_file not in (None, template.path):
        return None
    spec = template.settings.get("variants")
    if not isinstance(spec, dict):
        return None
    hits = [key for (table, key), ln in fm.lines.items() if table == "variants"
            and ln == line0 + 1]
    if not hits:
        return None
    key = hits[0]
    rng = lsp.Range(lsp.Position(line0, len(line) - len(line.lstrip())),
                    lsp.Position(line0, len(line.rstrip())))
    if key is None or key in RESERVED or not isinstance(spec.get(key), list):
        if key is not None and key != "generator":
            return None
        md = grid_hover(template, sample, runs)
    else:
        md = grid_key_hover(template, sample, key, runs)
    return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, md), range=rng)


def hover(template: Template | None, unit: RenderedUnit | None, file: str, source: str,
          line0: int, col: int, runs: list[dict[str, Any]] | None = None,
          sample: Sample | None = None) -> lsp.Hover | None:
    """Hover content at a 0-based position of a template (``runs``: its latest benchmark
    results, for the front matter's grid; ``sample``: the active sample)."""
    lines = source.splitlines()
    if line0 >= len(lines):
        return None
    line = lines[line0]
    if template is not None and template.front.start_line:
        cap = captured_hover(template, line0, line)
        if cap is not None:
            return cap
        fm = front_matter_hover(template, sample or template.sample_list[0], line0, line,
                                runs or [])
        if fm is not None:
            return fm
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
            if name in unit.sample.nodes:
                node = unit.sample.nodes[name]
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
                run = next((r for r in runs or [] if r.get("sample") == unit.sample.name
                            and r.get("variant_name") == unit.variant.name), None)
                md += compile_text(run.get("compile") if run else None)
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
