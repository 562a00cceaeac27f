"""What a render produces: a rendered translation unit with its source map and companions,
or the diagnostics of a render that failed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.diagnostics import Diagnostic
from cutlens.render import sourcemap
from cutlens.render.hooks import KernelSignature
from cutlens.template.model import Sample, Variant


@dataclass
class RenderedFile:
    """Rendered text and its source map."""

    text: str
    source_map: sourcemap.SourceMap


@dataclass
class RenderedUnit:
    """A rendered translation unit for one sample × variant."""

    template: Path
    sample: Sample
    variant: Variant
    text: str
    source_map: sourcemap.SourceMap
    kernel_name: str
    signature: KernelSignature | None = None
    companions: dict[str, RenderedFile] = field(default_factory=dict)
    #: Non-fatal findings (e.g. def_kernel never called).
    warnings: list[Diagnostic] = field(default_factory=list)
    duration_s: float = 0.0
    #: How a benchmark calls the built library, when the unit says so itself (a render
    #: driver's case): the bench signature (``{"kernel", "args", ...}``) and its ``[bench]``.
    call: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    #: Compiler settings of this unit on top of its template's ([compile] keys).
    compile: dict[str, Any] = field(default_factory=dict)
    #: What the header says the unit is (e.g. ``case 'gemm_f16'``).
    title: str = ""
    #: Shape-generic builds (:mod:`cutlens.render.shapes`): "generic" when the sample's
    #: sizes are arguments of the kernel (samples differing only in sizes share the unit),
    #: "static" when they stay compile-time, with the reason; "" when not asked.
    shapes: str = ""
    static_sizes: str = ""

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(self.text.encode())
        for name in sorted(self.companions):
            h.update(name.encode() + b"\0" + self.companions[name].text.encode())
        return h.hexdigest()

    def header(self) -> str:
        """A ``//`` comment naming the template, sample and variant (names kept on the one
        line), and the runtime arguments the variant's kernel is called with."""
        what = self.title or (f"sample '{self.sample.name}', variant '{self.variant.name}' "
                              f"(#{self.variant.index})")
        out = f"// Rendered by cutlens from {_one_line(f'{self.template.name}, {what}')}.\n"
        scalars = [a for a in self.signature.args if a.param is not None] \
            if self.signature is not None else []
        if scalars:
            shown = []
            for a in scalars:
                value = self.variant.values.get(a.param.key)  # type: ignore[union-attr]
                try:
                    c = a.param.c_value(value)  # type: ignore[union-attr]
                except ValueError:
                    c = None
                text = f"{a.name} = {c}"
                if c is None or str(c) != str(value):
                    text += f" ({_one_line(str(value))})"
                shown.append(text)
            out += ("// Runtime arguments (passed when the kernel is called): "
                    f"{', '.join(shown)}.\n")
        return out

    def with_line_directives(self) -> str:
        """The text with ``#line N "template"`` wherever the origin jumps."""
        return add_line_directives(self.text, self.source_map)


def _one_line(text: str) -> str:
    """``text`` with line breaks and control characters shown as spaces (a ``//`` comment
    ends at a line break)."""
    return "".join(c if c.isprintable() else " " for c in text)


def add_line_directives(text: str, smap: sourcemap.SourceMap) -> str:
    out: list[str] = []
    expect: tuple[str, int] | None = None
    prev = ""
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        o = smap.origin(i)
        if o is not None and (o.file, o.line) != expect and not prev.rstrip().endswith("\\"):
            out.append(f'#line {o.line} "{o.file}"\n')
        expect = (o.file, o.line + 1) if o else None
        out.append(line)
        prev = line
    return "".join(out)


@dataclass
class RenderFailure:
    """A render that failed: the diagnostics saying why."""

    template: Path
    sample: Sample
    variant: Variant
    diagnostics: list[Diagnostic]
    duration_s: float = 0.0


