"""The one check orchestration: find the templates under some paths, load them, run the
Jinja tier, then the nvcc tier (one shared compile pool). ``cutlens check``, ``watch`` and
the benchmarks call it; the language server runs the same tiers per document."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens import config as config_mod
from cutlens import trust
from cutlens.check.grid_validity import grid_warnings, jobs_of
from cutlens.check.jinja_tier import JinjaCheck, jinja_check
from cutlens.check.nvcc_tier import Event, nvcc_check_all, quick_reporter
from cutlens.diagnostics import Diagnostic, sort_key
from cutlens.render.renderer import Renderer
from cutlens.template.discovery import discover, load_template, parents
from cutlens.template.model import Template
from cutlens.template.selection import Selection


@dataclass
class CheckReport:
    """Diagnostics of every template checked under some paths."""

    templates: list[Template] = field(default_factory=list)
    partials: list[Any] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Problems with the project configs (a check does not run on a bad config).
    config_problems: list[Diagnostic] = field(default_factory=list)
    #: Selection items that matched nothing in any template.
    unmatched: list[str] = field(default_factory=list)
    #: Files named explicitly that hold no template (a ``.py`` file no driver uses).
    skipped: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")


def configs_for(paths: list[Path]) -> tuple[dict[Path, config_mod.ProjectConfig],
                                             list[Diagnostic]]:
    """The project config of each path, and every problem they have (each once)."""
    out: dict[Path, config_mod.ProjectConfig] = {}
    by_root: dict[Path, config_mod.ProjectConfig] = {}
    problems: list[Diagnostic] = []
    for p in paths:
        root = config_mod.root_for(Path(p))
        if root not in by_root:
            by_root[root] = config_mod.load(root)
            problems += by_root[root].problems
        out[Path(p)] = by_root[root]
    return out, problems


def check_paths(paths: list[Any], selection: Selection | None = None, jobs: int | None = None,
                nvcc: bool = True, mode: str = "full", progress: bool = False,
                renderer: Renderer | None = None,
                on_diagnostics: Callable[[list[Diagnostic]], None] | None = None
                ) -> CheckReport:
    """Render (and compile) every template under ``paths``.

    ``on_diagnostics`` sees early results as they come: the Jinja tier, then each
    template's quick nvcc pass; the report holds the final set (full pass superseding). A
    project config with problems stops the check: they are the report's ``config_problems``.
    """
    report = CheckReport()
    configs, report.config_problems = configs_for([Path(p) for p in paths])
    if report.config_problems:
        return report
    selection = selection or Selection()
    renderer = renderer or Renderer()
    checks: list[JinjaCheck] = []
    unmatched: dict[str, int] = {}
    seen: set[Path] = set()
    for p, cfg in configs.items():
        found = discover([p], cfg)
        report.partials += found.partials
        for tp in found.templates:
            t = load_template(tp, cfg)
            if t.unused_python:
                report.skipped.append(tp)
                continue
            owners = parents(tp, cfg) if p.is_file() and not t.has_settings else []
            if owners:  # a partial or companion named alone: checked through its owners
                report.partials.append(t.path)
            for checked in owners or [t]:
                if checked.path in seen:
                    continue
                seen.add(checked.path)
                report.templates.append(checked)
                for item in selection.unmatched(checked):
                    unmatched[item] = unmatched.get(item, 0) + 1
                checks.append(jinja_check(checked, renderer, selection))
    report.unmatched = [i for i, n in unmatched.items() if n == len(report.templates)]
    diags: list[Diagnostic] = [d for jc in checks for d in jc.diagnostics]
    if on_diagnostics is not None:
        on_diagnostics(diags)
    if nvcc and trust.exec_allowed():
        on_event = quick_reporter(checks, on_diagnostics) if on_diagnostics else None
        diags = asyncio.run(_nvcc_tiers(checks, jobs, mode, progress, on_event))
    report.diagnostics = diags
    return report


async def _nvcc_tiers(checks: list[JinjaCheck], jobs: int | None, mode: str, progress: bool,
                      on_event: Callable[[Event], None] | None) -> list[Diagnostic]:
    """The nvcc tier, and beside it the validity pass: invalid variants as warnings on
    their keys' lines (:func:`grid_warnings`)."""
    async def validity(jc: JinjaCheck) -> list[Diagnostic]:
        cfg = jc.template.config
        found, _ = await asyncio.to_thread(grid_warnings, jc.template, jc.pairs, jc.units,
                                           cfg.cache_dir / "build",
                                           jobs or jobs_of(jc.template))
        return found

    warned = asyncio.gather(*(validity(jc) for jc in checks))
    diags = await nvcc_check_all(checks, jobs=jobs, mode=mode, progress=progress,
                                 on_event=on_event)
    return sorted([*diags, *(d for ws in await warned for d in ws)], key=sort_key)
