"""Render a template for one sample × variant into a :class:`RenderedUnit` with its source map.

The Jinja environment is sandboxed, uses ``StrictUndefined`` like Inductor, stops a render
that runs past its time limit, and plants source-map markers in the output (stripped by
:func:`sourcemap.build`). Every failure becomes a :class:`Diagnostic` on the template line
that caused it, never an exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy
from jinja2.exceptions import TemplateError

from cutlens.diagnostics import Diagnostic
from cutlens.render import markers, sourcemap
from cutlens.render.cases import render_case
from cutlens.render.environment import RenderEnvironment, RenderTimeout
from cutlens.render.errors import error_diagnostics
from cutlens.render.hooks import KernelContext, TemplateContext
from cutlens.render.loader import OverlayLoader
from cutlens.render.runtime import RuntimeArg
from cutlens.render.unit import RenderedFile, RenderedUnit, RenderFailure, add_line_directives
from cutlens.template.ir import symbol
from cutlens.template.model import DEFAULT_SAMPLE, Sample, Template, Variant
from cutlens.template.pymodule import load_attr
from cutlens.template.shapes import SizeMarks


@dataclass(frozen=True)
class CutlensInfo:
    """``cutlens`` in templates: cutlens's own names, kept apart from the template's
    variables (FlashInfer passes ``variant_name``, AITemplate and Inductor plain names too,
    and a template's own variable always means what its settings say)."""

    #: The kernel's symbol (``kernel_name`` setting, default ``cutlens_<file stem>``).
    kernel_name: str
    sample_name: str
    variant_name: str
    variant_index: int
    #: The template's file name.
    template_name: str


#: Names cutlens itself puts into every render: a sample node, sample variable or variant
#: key of the same name is an error naming both.
RESERVED = {
    "kernel": "the Inductor kernel API (kernel.def_kernel, kernel.size, kernel.stride...)",
    "template": "the Inductor template API (template.header, template.globals...)",
    "cutlens": "cutlens's own names (cutlens.kernel_name, cutlens.sample_name, "
               "cutlens.variant_name...)",
}


def reserved_clashes(template: Template, sample: Sample,
                     variant: Variant) -> list[Diagnostic]:
    """A variable named like one of cutlens's own (:data:`RESERVED`): an error on the
    setting's line naming both."""
    out = []
    for name, what in RESERVED.items():
        if name in sample.nodes:
            kind, where = "sample node", template.setting_line(f"samples.{sample.name}", name)
        elif name in sample.vars:
            kind, where = "sample variable", template.setting_line(
                f"samples.{sample.name}.vars", name)
        elif name in variant.values:
            kind, where = "variant key", _variant_key_line(template, variant, name)
        else:
            continue
        out.append(Diagnostic(
            file=where[0], line=where[1], source="cutlens", code="reserved-name",
            message=f"{kind} {name!r} clashes with cutlens's {name!r}: {what}; rename it",
            samples=[sample.name], variants=[variant.name]))
    return out


def _variant_key_line(template: Template, variant: Variant, key: str) -> tuple[str, int]:
    grid = template.settings.get("variants")
    if isinstance(grid, dict) and key in grid:
        return template.setting_line("variants", key)
    if variant.line and template.settings_file in (None, template.path):
        return str(template.path), variant.line
    if isinstance(grid, dict) and "generator" in grid:
        return template.setting_line("variants", "generator")
    return template.setting_line("variant")


def context_classes(template: Template) -> tuple[type, type]:
    """The ``template`` and ``kernel`` context classes: the hooks, or the project's
    ``template_class``/``kernel_class`` subclasses of them (imported: trusted only)."""
    tcls: type = TemplateContext
    kcls: type = KernelContext
    folders = [template.path.parent, template.config.root]
    if template.template_class:
        tcls = load_attr(template.template_class, folders)
        if not isinstance(tcls, type) or not issubclass(tcls, TemplateContext):
            raise TypeError(f"template_class {template.template_class} must subclass "
                            "cutlens.render.hooks.TemplateContext")
    if template.kernel_class:
        kcls = load_attr(template.kernel_class, folders)
        if not isinstance(kcls, type) or not issubclass(kcls, KernelContext):
            raise TypeError(f"kernel_class {template.kernel_class} must subclass "
                            "cutlens.render.hooks.KernelContext")
    return tcls, kcls


class Renderer:
    """Renders templates of one project; compiled templates are cached by content."""

    def __init__(self, overlays: dict[str, str] | None = None) -> None:
        #: Unsaved editor text by absolute path; the live dict is shared, not copied.
        self.overlays: dict[str, str] = overlays if overlays is not None else {}
        self._envs: dict[tuple[str, ...], RenderEnvironment] = {}
        self._lock = threading.Lock()

    def environment(self, template: Template) -> RenderEnvironment:
        cfg = template.config
        search = [template.path.parent, cfg.root, *map(Path, cfg.search_path)]
        key = tuple(str(p) for p in search)
        with self._lock:
            env = self._envs.get(key)
            if env is None:
                env = RenderEnvironment(OverlayLoader(search, self.overlays))
                self._envs[key] = env
        return env

    def render(self, template: Template, sample: Sample, variant: Variant,
               timeout_s: float | None = None,
               marks: SizeMarks | None = None,
               shape_sizes: dict[str, int] | None = None) -> RenderedUnit | RenderFailure:
        """Render one sample × variant; never raises on template problems.
        ``marks``, ``shape_sizes``: a shape-generic render
        (:func:`cutlens.render.shapes.render_shape_generic`): what the hooks print from these
        size symbols is marked with what a static render prints there."""
        if template.engine == "driver":  # rendered by its render driver, in its worker
            return render_case(template, sample, variant)
        t0 = time.perf_counter()
        env = self.environment(template)
        limit = template.config.render_timeout_s if timeout_s is None else timeout_s
        env.set_deadline(time.monotonic() + limit if limit else None)
        try:
            try:
                tcls, kcls = context_classes(template)
            except Exception as e:
                file, line = template.setting_line("", "template_class")
                return RenderFailure(template.path, sample, variant, [Diagnostic(
                    file=file, line=line, message=f"template_class: {type(e).__name__}: {e}",
                    source="cutlens")], time.perf_counter() - t0)
            clashes = reserved_clashes(template, sample, variant)
            if clashes:
                return RenderFailure(template.path, sample, variant, clashes,
                                     time.perf_counter() - t0)
            kernel = kcls(template.kernel_name)
            kernel.size_marks = marks
            kernel.shape_sizes = {symbol(k): sympy.Integer(v)
                                  for k, v in (shape_sizes or {}).items()}
            params = [template.runtime[k] for k in variant.runtime if k in template.runtime]
            kernel.runtime_params = params
            tctx = tcls(template.path.name, template.kind, sample, variant, kernel)
            info = CutlensInfo(template.kernel_name, sample.name, variant.name, variant.index,
                               template.path.name)
            ctx = {**sample.context(), **variant.values,
                   **{p.key: RuntimeArg(p) for p in params},
                   "kernel": kernel, "template": tctx, "cutlens": info}
            try:
                text, smap = self._render_file(env, str(template.path), ctx)
                companions = {name: RenderedFile(*self._render_file(env, str(p), ctx))
                              for name, p in template.companions.items()}
            except Exception as e:  # every template problem lands on its line
                diags = error_diagnostics(e, env, template.path, sample, variant)
                return RenderFailure(template.path, sample, variant, diags,
                                     time.perf_counter() - t0)
        finally:
            env.set_deadline(None)
        unit = RenderedUnit(template.path, sample, variant, text, smap, template.kernel_name,
                            kernel.signature, companions)
        for file, line, message in kernel.quiet_defaults:
            unit.warnings.append(Diagnostic(
                file=file, line=line, severity="warning", source="jinja", code="hook-default",
                message=message, samples=[sample.name], variants=[variant.name]))
        if kernel.signature is None and template.samples:  # (a sample-less file: no kernel)
            unit.warnings.append(Diagnostic(
                file=str(template.path), line=1, severity="warning", source="jinja",
                message="kernel.def_kernel(...) was never called: the kernel has no "
                        "signature, so it cannot be benchmarked",
                samples=[sample.name], variants=[variant.name]))
        unit.duration_s = time.perf_counter() - t0
        return unit

    def syntax_check(self, template: Template) -> list[Diagnostic]:
        """Compile (don't render) the template and its companions: syntax errors only."""
        if template.engine != "jinja":
            return []
        env = self.environment(template)
        try:
            for p in [template.path, *template.companions.values()]:
                env.get_template(str(p))
        except Exception as e:
            diags = error_diagnostics(e, env, template.path, Sample(DEFAULT_SAMPLE),
                                      Variant(0, "default", {}))
            for d in diags:
                d.samples, d.variants = [], []
            return diags
        return []

    def _render_file(self, env: RenderEnvironment, path: str,
                     ctx: dict[str, Any]) -> tuple[str, sourcemap.SourceMap]:
        tmpl = env.get_template(path)
        with markers.rendering():
            marked = tmpl.render(ctx)
        return sourcemap.build(marked, env.files)


__all__ = ["RESERVED", "CutlensInfo", "RenderFailure", "RenderTimeout", "RenderedFile",
           "RenderedUnit", "Renderer", "TemplateError", "add_line_directives"]

