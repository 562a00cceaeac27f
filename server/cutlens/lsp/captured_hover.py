"""Hover on a template's ``samples_from`` key or ``[accepts]`` table (front matter): the
captured samples it takes from the samples file — op, weight, calls or time, sizes — and
those it skips, with why (:mod:`cutlens.template.captured`)."""

from __future__ import annotations

from lsprotocol import types as lsp

from cutlens.template.captured import Taken
from cutlens.template.model import Template

MAX_ROWS = 24


def _size(node: object) -> str:
    if node is None:
        return "—"
    size = "×".join(str(s) for s in node.get_size())  # type: ignore[attr-defined]
    return f"{node.get_dtype().name}[{size}]"  # type: ignore[attr-defined]


def markdown(t: Template) -> str:
    """What the template took from its samples file, and what it skipped."""
    taken: Taken | None = t.captured
    if taken is None:
        return ("**captured samples**: none (this template has no `samples_from`, or no "
                "`[accepts]` table saying which it runs)")
    head = f"**captured samples** from `{taken.file}`"
    if taken.error:
        return f"{head}\n\n{taken.error}\n\nRun `cutlens capture -- python PROGRAM` first."
    mine = [s for s in t.samples if s.origin == "captured"]
    nodes = list(mine[0].nodes) if mine else []
    lines = [f"{head}: {len(mine)} taken, {len(taken.skipped)} skipped", "",
             "| sample | op | weight | runs | " + " | ".join(nodes) + " |",
             "|---" * (4 + len(nodes)) + "|"]
    for s in mine[:MAX_ROWS]:
        ms = s.info.get("time_ms")
        runs = f"{s.info.get('count', 0)}" + (f" ({ms:.3f} ms)" if ms is not None else "")
        cells = " | ".join(_size(s.nodes.get(n)) for n in nodes)
        lines.append(f"| `{s.name}` | {s.info.get('op')} | {(s.weight or 0):.1%} | {runs} | "
                     f"{cells} |")
    if len(mine) > MAX_ROWS:
        lines.append(f"\n*…and {len(mine) - MAX_ROWS} more*")
    if taken.skipped:
        lines.append("\n**skipped**")
        lines += [f"- `{name}`: {why}" for name, why in taken.skipped[:MAX_ROWS]]
    return "\n".join(lines)


def captured_hover(t: Template, line0: int, line: str) -> lsp.Hover | None:
    """The hover on the ``samples_from`` or ``[accepts]`` line of the front matter."""
    fm = t.front
    if not fm.start_line or not fm.start_line <= line0 + 1 <= fm.end_line \
            or t.settings_file not in (None, t.path):
        return None
    on = {fm.lines.get(("", "samples_from")), fm.lines.get(("accepts", None))}
    if line0 + 1 not in on:
        return None
    rng = lsp.Range(lsp.Position(line0, len(line) - len(line.lstrip())),
                    lsp.Position(line0, len(line.rstrip())))
    return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, markdown(t)),
                     range=rng)
