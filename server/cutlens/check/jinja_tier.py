"""Checking a template: render every sample × variant (the Jinja tier), then compile the
rendered units with nvcc (the nvcc tier) and map what nvcc says onto template lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cutlens import trust
from cutlens.diagnostics import Diagnostic, merge
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.template.model import Sample, Template, Variant


@dataclass
class Selection:
    """Which samples and variants a check covers: ``all`` or ``first``."""

    samples: str = "all"
    variants: str = "all"

    def pairs(self, template: Template) -> list[tuple[Sample, Variant]]:
        samples = template.samples or [Sample("default")]
        if self.samples == "first":
            samples = samples[:1]
        out = []
        for s in samples:
            vs = template.variants(s)
            if self.variants == "first":
                vs = vs[:1]
            out += [(s, v) for v in vs]
        return out


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


def jinja_check(template: Template, renderer: Renderer,
                selection: Selection | None = None) -> JinjaCheck:
    """Render every selected sample × variant; one failing pair never stops the others.

    In an untrusted workspace a template that needs workspace Python (a generator,
    ``template_class``) is only compiled for syntax, and every template gets one notice
    saying what did not run (:func:`trust.untrusted_notice`)."""
    selection = selection or Selection()
    jc = JinjaCheck(template)
    pairs = selection.pairs(template)  # may add variant errors to template.errors
    jc.pairs = pairs
    raw: list[Diagnostic] = list(template.errors)
    syntax_only = not trust.exec_allowed() and bool(trust.python_uses(template))
    if not trust.exec_allowed():
        raw.append(trust.untrusted_notice(template))
    if syntax_only and not template.broken:
        raw += renderer.syntax_check(template)
    elif not template.broken:
        for s, v in pairs:
            r = renderer.render(template, s, v)
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


@dataclass
class CheckReport:
    """Diagnostics of every template checked under some paths."""

    templates: list[Template] = field(default_factory=list)
    partials: list = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")


def check_paths(paths: list, selection: Selection | None = None, jobs: int | None = None,
                nvcc: bool = True, mode: str = "full", progress: bool = False,
                renderer: Renderer | None = None,
                on_diagnostics: Callable[[list[Diagnostic]], None] | None = None
                ) -> CheckReport:
    """Render (and compile) every template under ``paths``.

    ``on_diagnostics`` sees early results as they come: the Jinja tier, then each
    template's quick nvcc pass; the report holds the final set (full pass superseding).
    """
    from cutlens.config import model as config_mod
    from cutlens.template.discovery import discover, load_template

    report = CheckReport()
    renderer = renderer or Renderer()
    checks: list[JinjaCheck] = []
    for p in paths:
        cfg = config_mod.load(config_mod.find_root(Path(p)))
        found = discover([Path(p)], cfg)
        report.partials += found.partials
        for tp in found.templates:
            t = load_template(tp, cfg)
            report.templates.append(t)
            checks.append(jinja_check(t, renderer, selection))
    diags: list[Diagnostic] = [d for jc in checks for d in jc.diagnostics]
    if on_diagnostics is not None:
        on_diagnostics(diags)
    if nvcc and trust.exec_allowed():
        import asyncio

        from cutlens.check.nvcc_tier import nvcc_check_all, quick_reporter

        on_event = quick_reporter(checks, on_diagnostics) if on_diagnostics else None
        diags = asyncio.run(nvcc_check_all(checks, jobs=jobs, mode=mode, progress=progress,
                                           on_event=on_event))
    report.diagnostics = diags
    return report
