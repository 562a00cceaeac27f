"""Checking a template: render every sample × variant (the Jinja tier), then compile the
rendered units with nvcc (the nvcc tier) and map what nvcc says onto template lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from cutlens import trust
from cutlens.diagnostics import Diagnostic, merge
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.render.shapes import render_shape_generic
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.selection import Selection


@dataclass
class JinjaCheck:
    """The Jinja tier of one template: rendered units, failures, merged diagnostics."""

    template: Template
    units: list[RenderedUnit] = field(default_factory=list)
    failures: list[RenderFailure] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    #: The (sample, variant) pairs this check covered.
    pairs: list[tuple[Sample, Variant]] = field(default_factory=list)

    @property
    def sample_names(self) -> list[str]:
        """Samples checked ("only in some samples" is judged among these)."""
        return list(dict.fromkeys(s.name for s, _ in self.pairs)) or ["default"]

    def variant_names(self) -> list[str]:
        """Variants checked."""
        return list(dict.fromkeys(v.name for _, v in self.pairs))


def untrusted_notice(template: Template) -> Diagnostic:
    """The one Information diagnostic an untrusted workspace's template gets."""
    python = template.python_uses()
    skipped = [f"{', '.join(python)} (workspace Python)"] if python else []
    skipped += ["nvcc", "benchmarks"]
    checked = ("only the template's syntax was checked" if python
               else "only the Jinja tier ran")
    line = template.front.start_line or 1
    return Diagnostic(file=str(template.path), line=line, severity="info", source="cutlens",
                      code="untrusted",
                      message=f"Workspace not trusted: {checked}; not run: "
                              f"{', '.join(skipped)}. {trust.HOW_TO_TRUST}")


def jinja_check(template: Template, renderer: Renderer,
                selection: Selection | None = None, shape_generic: bool = False) -> JinjaCheck:
    """Render every selected sample × variant; one failing pair never stops the others.

    In an untrusted workspace a template that needs workspace Python (a generator,
    ``template_class``) is only compiled for syntax, and every template gets one notice
    saying what did not run (:func:`untrusted_notice`). ``shape_generic``: render units
    whose sizes are kernel arguments where the template allows it
    (:func:`cutlens.render.shapes.render_shape_generic`)."""
    selection = selection or Selection()
    jc = JinjaCheck(template)
    pairs = selection.pairs(template)
    jc.pairs = pairs
    raw: list[Diagnostic] = list(template.errors)
    syntax_only = not trust.exec_allowed() and bool(template.python_uses())
    if not trust.exec_allowed():
        raw.append(untrusted_notice(template))
    if syntax_only and not template.broken:
        raw += renderer.syntax_check(template)
    elif not template.broken:
        for s, v in pairs:
            r = (render_shape_generic(renderer, template, s, v) if shape_generic
                 else renderer.render(template, s, v))
            if isinstance(r, RenderFailure):
                jc.failures.append(r)
                raw += r.diagnostics
            else:
                jc.units.append(r)
                raw += r.warnings
    jc.diagnostics = merge(raw, jc.sample_names, jc.variant_names())
    # Front-matter and config problems are not per sample/variant.
    for d in jc.diagnostics:
        if not d.samples and not d.variants:
            d.partial = False
    return jc
