"""The ``driver`` engine: a render driver's case, already rendered by the driver in its
worker process (:mod:`cutlens.template.drivers`), as a :class:`RenderedUnit` with its source
map — or the case's own errors as a failed render."""

from __future__ import annotations

from typing import Any

from cutlens.render.sourcemap import Frame, SourceMap
from cutlens.render.unit import RenderedFile, RenderedUnit, RenderFailure
from cutlens.template.model import Sample, Template, Variant


def _source_map(text: str, lines: list[Any]) -> SourceMap:
    smap = SourceMap(lines=[tuple(Frame(*f) for f in fr) for fr in lines])
    pos = 0
    for ln in text.split("\n")[:len(smap.lines)]:
        smap.line_starts.append(pos)
        pos += len(ln) + 1
    return smap


def render_case(template: Template, sample: Sample, variant: Variant
                ) -> RenderedUnit | RenderFailure:
    """The unit of the case ``variant`` stands for."""
    case = template.cases.get(str(variant.values.get("case")))
    if case is None:
        return RenderFailure(template.path, sample, variant, [])
    if case.source is None:
        return RenderFailure(template.path, sample, variant, list(case.errors))
    bench = dict(case.bench) if isinstance(case.bench, dict) else None
    call = None
    if bench and bench.get("function") and isinstance(bench.get("args"), list):
        call = {"kernel": bench["function"], "args": bench["args"],
                "absent": bench.get("absent", [])}
    unit = RenderedUnit(
        template.path, sample, variant, case.source, _source_map(case.source, case.lines),
        kernel_name=(bench or {}).get("function") or case.name,
        companions={n: RenderedFile(text, _source_map(text, lines))
                    for n, (text, lines) in case.companions.items()},
        call=call, bench={k: v for k, v in (bench or {}).items()
                          if k in ("reference", "flops", "bytes", "atol", "rtol")},
        compile=dict(case.compile), title=f"case {case.name!r} of driver {case.entry!r}")
    return unit
