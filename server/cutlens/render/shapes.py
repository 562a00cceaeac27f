"""Shape-generic rendering: a sample's concrete sizes become arguments of the kernel (as a
symbolic size is), so that samples whose units differ only in problem sizes render the same
text and share one build.

A template may use a size while rendering (a Jinja ``if`` on it, a size printed into a type
or a template argument, a comparison of a hook's text). Then the size must stay
compile-time. That is found by rendering twice: the static unit (concrete sizes) and the
generic one (the sample's sizes as symbols), in which every text a hook prints from a size
symbol (``kernel.size``, ``kernel.stride``, ``def_kernel``'s size arguments, a node's
``describe()``) is *marked* with the text the static render prints in its place
(:class:`cutlens.template.shapes.SizeMarks`). The generic render, its marks read as their
static texts, equals the static unit exactly when the template's own logic did the same with
symbols as with numbers and only printed what the hooks gave it; then the generic unit (the
marks read as their generic texts) is used. Otherwise the static unit is, and
``static_sizes`` names the first template line that rendered differently.

A hook's size printed where C++ wants a constant (a template argument, a ``constexpr``, a
``static_assert``, a preprocessor line) renders alike but would not compile as an argument:
a generic unit with a size argument on such a line is not used either.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from cutlens.render.renderer import Renderer
from cutlens.render.unit import RenderedUnit, RenderFailure
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.shapes import (
    SizeMarks,
    generic_samples,
    generic_text,
    marked_sample,
    shape_hints,
)

#: A rendered line whose values C++ needs at compile time.
COMPILE_TIME_LINE = re.compile(r"^\s*(#|template\b|using\b|typedef\b|static_assert\b|"
                               r"(static\s+)?constexpr\b)")
_CACHE_SIZE = 16
_generic: dict[int, tuple[Template, dict[str, Sample]]] = {}


def generic_sample(template: Template, sample: Sample) -> Sample | None:
    """The shape-generic form of ``sample`` (None when it has no concrete size)."""
    hit = _generic.get(id(template))
    if hit is None or hit[0] is not template:
        if len(_generic) >= _CACHE_SIZE:
            _generic.pop(next(iter(_generic)))
        hit = (template, generic_samples(template))
        _generic[id(template)] = hit
    made = hit[1].get(sample.name)
    return made if made is not None and _same(made, sample) else None


def _same(generic: Sample, sample: Sample) -> bool:
    return list(generic.nodes) == list(sample.nodes) and all(
        getattr(g, "concrete_node", g) is n for g, n in zip(
            generic.nodes.values(), sample.nodes.values(), strict=True))


def render_shape_generic(renderer: Renderer, template: Template, sample: Sample,
                         variant: Variant) -> RenderedUnit | RenderFailure:
    """The shape-generic unit of ``sample`` × ``variant`` when the template renders alike
    with run-time sizes, else the static unit (``shapes`` says which, ``static_sizes``
    why)."""
    static = renderer.render(template, sample, variant)
    if not isinstance(static, RenderedUnit) or template.engine != "jinja":
        return static
    generic = generic_sample(template, sample)
    if generic is None:
        static.shapes = "static"
        static.static_sizes = "the sample has no concrete size"
        return static
    marks = SizeMarks()
    sizes = shape_hints(sample, generic)
    unit = renderer.render(template, marked_sample(generic, marks), variant, marks=marks,
                           shape_sizes=sizes)
    if isinstance(unit, RenderFailure):
        reason = _failure_reason(unit)
    else:
        reason = _difference(static, unit, marks)
        _unmark(unit)
        reason = reason or _constant_use(unit, set(sizes))
    if reason:
        static.shapes, static.static_sizes = "static", f"sizes compiled in: {reason}"
        return static
    assert isinstance(unit, RenderedUnit)
    unit.sample = generic
    unit.shapes = "generic"
    unit.duration_s += static.duration_s
    return unit


def _unmark(unit: RenderedUnit) -> None:
    unit.text = generic_text(unit.text)
    for f in unit.companions.values():
        f.text = generic_text(f.text)


def _difference(static: RenderedUnit, unit: RenderedUnit, marks: SizeMarks) -> str:
    """Why the generic render, read as the static one, is not the static unit ("" when it
    is)."""
    if set(static.companions) != set(unit.companions):
        return "the companions differ with run-time sizes"
    pairs = [(static.text, static.source_map, unit.text)]
    pairs += [(f.text, f.source_map, unit.companions[k].text)
              for k, f in static.companions.items()]
    for a, smap, b in pairs:
        b = marks.concrete_text(b)
        if a == b:
            continue
        first = _first_difference(a, b)
        o = smap.origin(first)
        where = f"{Path(o.file).name}:{o.line}" if o else f"rendered line {first}"
        return f"{where} renders differently when the sizes are kernel arguments"
    return ""


def compile_time_use(line: str, name: str) -> bool:
    """Whether ``line`` uses the C name ``name`` where C++ needs a constant."""
    if not re.search(rf"\b{re.escape(name)}\b", line):
        return False
    return bool(COMPILE_TIME_LINE.search(line)
                or re.search(rf"<[^<>;]*\b{re.escape(name)}\b[^<>;]*>", line))


def _constant_use(unit: RenderedUnit, symbols: set[str]) -> str:
    """Where the generic unit prints a size argument into a compile-time context."""
    if unit.signature is None:
        return ""
    names = [a.name for a in unit.signature.args
             if a.kind == "size" and a.symbol is not None and a.symbol.name in symbols]
    for i, line in enumerate(unit.text.splitlines(), start=1):
        for name in names:
            if compile_time_use(line, name):
                o = unit.source_map.origin(i)
                where = f"{Path(o.file).name}:{o.line}" if o else f"rendered line {i}"
                return f"{where} prints a size where C++ needs a constant"
    return ""


def _first_difference(a: str, b: str) -> int:
    """The 1-based line of ``a`` where ``b`` first differs."""
    sm = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False)
    for tag, i1, _i2, _j1, _j2 in sm.get_opcodes():
        if tag != "equal":
            return i1 + 1
    return 1


def _failure_reason(failure: RenderFailure) -> str:
    d = failure.diagnostics[0] if failure.diagnostics else None
    if d is None:
        return "the template fails to render with run-time sizes"
    return (f"{Path(d.file).name}:{d.line} fails with run-time sizes ({d.message})")
