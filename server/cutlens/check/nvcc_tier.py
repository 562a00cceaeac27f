"""The nvcc tier: compile rendered units (quick and full passes, in parallel) and turn what
nvcc says into template diagnostics. Shared by ``cutlens check``, ``bench`` and the LSP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cutlens.check import perf
from cutlens.check.jinja_tier import JinjaCheck
from cutlens.diagnostics import Diagnostic, merge, sort_key
from cutlens.nvcc.mapping import map_result
from cutlens.nvcc.options import compile_options, failed, job_for, preflight
from cutlens.nvcc.pool import CompileOptions, Compiler, CompileResult, Mode
from cutlens.nvcc.project import compile_pool
from cutlens.render.renderer import RenderedUnit
from cutlens.template.model import Template


@dataclass
class UnitCompile:
    """The passes of one unit: quick first, full (which supersedes it) when done."""

    unit: RenderedUnit
    quick: CompileResult | None = None
    full: CompileResult | None = None
    #: The Template object the unit was rendered from (identity for grouping).
    unit_template: Template | None = None
    #: Warning codes the template leaves out (``diag_suppress``).
    suppress: tuple[str, ...] = ()

    def final(self) -> CompileResult | None:
        """The most complete result: full unless it was cancelled (a cancelled compile
        says nothing about the code)."""
        for res in (self.full, self.quick):
            if res is not None and not res.cancelled:
                return res
        return None

    def diagnostics(self) -> list[Diagnostic]:
        """The final pass's diagnostics. When the full pass failed, the quick pass's errors
        and warnings too: a full pass stopped by a host-side error (cudafe++) never compiles
        the device code, whose messages only the quick pass (cicc) found — shown early, so
        counted in the summary and the JSON too; one the full pass reports too is kept
        once."""
        res = self.final()
        if res is None:
            return []
        diags = map_result(self.unit, res, self.suppress)
        if res.ok:
            diags += perf.resource_diagnostics(self.unit, res, diags, self.suppress)
        quick = self.quick
        if res is self.full and not res.ok and quick is not None and not quick.cancelled:
            seen = {d.key() for d in diags}
            diags += [d for d in map_result(self.unit, quick, self.suppress)
                      if d.key() not in seen]
        return diags


Event = tuple[str, UnitCompile]  # ("quick" | "full", the unit's compiles so far)


@dataclass
class NvccCheck:
    """The nvcc tier of one template."""

    jinja: JinjaCheck
    units: list[UnitCompile] = field(default_factory=list)

    @classmethod
    def of(cls, jc: JinjaCheck) -> NvccCheck:
        """The (not yet compiled) nvcc tier of a Jinja tier's rendered units."""
        return cls(jc, [UnitCompile(u, unit_template=jc.template) for u in jc.units])

    def nvcc_diagnostics(self) -> list[Diagnostic]:
        """The nvcc tier: each unit's most complete pass (full supersedes quick), merged
        over samples and variants; "only in some" is judged among the compiled units."""
        ready = [uc for uc in self.units if uc.final() is not None]
        per_unit = [(uc.unit, uc.diagnostics()) for uc in ready]
        perf.attribute(self.jinja.template, per_unit)  # on the key that caused them
        raw = [d for _, diags in per_unit for d in diags]
        samples = list(dict.fromkeys(uc.unit.sample.name for uc in ready))
        variants = list(dict.fromkeys(uc.unit.variant.name for uc in ready))
        return merge(raw, samples, variants)

    def diagnostics(self) -> list[Diagnostic]:
        """Both tiers."""
        return sorted([*self.jinja.diagnostics, *self.nvcc_diagnostics()], key=sort_key)


async def compile_unit(compiler: Compiler, uc: UnitCompile, options: CompileOptions,
                       modes: tuple[Mode, ...],
                       on_event: Callable[[Event], None] | None = None) -> UnitCompile:
    """Run the passes of one unit concurrently; report each as it finishes. A unit that
    cannot compile (:func:`preflight`) gets that reason as its result, without nvcc."""
    blocked = preflight(uc.unit_template) if uc.unit_template is not None else None

    async def one(mode: Mode) -> None:
        if blocked is not None:
            res = failed(mode, blocked)
        else:
            res = await compiler.compile(job_for(uc.unit, mode, options))
        if res.cancelled:  # we joined a compile whose first requester went away: rerun it
            res = await compiler.compile(job_for(uc.unit, mode, options))
        if mode is Mode.QUICK:
            uc.quick = res
        else:
            uc.full = res
        if on_event is not None:
            on_event((mode.value, uc))

    await asyncio.gather(*(one(m) for m in modes))
    return uc


#: The ``mode`` of a check: which nvcc passes run.
CHECK_MODES = ("quick", "full", "full-only")


def modes_for(mode: str) -> tuple[Mode, ...]:
    """``quick``: the quick pass only; ``full``: quick and full side by side (the quick
    pass's errors early, the full pass's complete set); ``full-only``: the full pass alone
    (a CI gate that waits for the complete set anyway saves the quick pass's CPU)."""
    if mode == "quick":
        return (Mode.QUICK,)
    if mode == "full-only":
        return (Mode.FULL,)
    return (Mode.QUICK, Mode.FULL)


async def compile_all(nc: NvccCheck, compiler: Compiler, mode: str = "full",
                      on_event: Callable[[Event], None] | None = None) -> NvccCheck:
    """Compile every unit of ``nc`` (its passes side by side), reporting each pass as it
    lands; ``nc`` fills in as they do."""
    t = nc.jinja.template
    options = [compile_options(t, uc.unit) for uc in nc.units]
    for uc, o in zip(nc.units, options, strict=True):
        uc.suppress = o.diag_suppress
    await asyncio.gather(*(compile_unit(compiler, uc, o, modes_for(mode), on_event)
                           for uc, o in zip(nc.units, options, strict=True)))
    return nc


async def nvcc_check(jc: JinjaCheck, compiler: Compiler, mode: str = "full",
                     on_event: Callable[[Event], None] | None = None) -> NvccCheck:
    """Compile every rendered unit of one template."""
    return await compile_all(NvccCheck.of(jc), compiler, mode, on_event)


def quick_reporter(checks: list[JinjaCheck],
                   report: Callable[[list[Diagnostic]], None]) -> Callable[[Event], None]:
    """An ``on_event`` that reports each template's diagnostics once all its quick passes
    are in (Jinja + quick), before the full passes finish."""
    pending = {id(jc.template): len(jc.units) for jc in checks}
    found: dict[int, list[Diagnostic]] = {id(jc.template): [] for jc in checks}
    by_id = {id(jc.template): jc for jc in checks}

    def on_event(ev: Event) -> None:
        kind, uc = ev
        if kind != "quick" or uc.quick is None:
            return
        tid = id(uc.unit_template)
        found[tid] += map_result(uc.unit, uc.quick, uc.suppress)
        pending[tid] -= 1
        if pending[tid] == 0:
            jc = by_id[tid]
            report(sorted([*jc.diagnostics, *merge(found[tid], jc.sample_names,
                                                   jc.variant_names())], key=sort_key))

    return on_event


async def nvcc_check_all(checks: list[JinjaCheck], jobs: int | None = None,
                         mode: str = "full", progress: bool = False,
                         on_event: Callable[[Event], None] | None = None,
                         compiler: Compiler | None = None) -> list[Diagnostic]:
    """Compile every template's units, each project's with its own pool (its build cache,
    bound and ``jobs``; ``compiler``: one pool for all), one project after another; all
    diagnostics, sorted."""
    if not checks:
        return []
    by_project: dict[Path, list[JinjaCheck]] = {}
    for jc in checks:
        by_project.setdefault(jc.template.config.root, []).append(jc)
    total = sum(len(jc.units) * len(modes_for(mode)) for jc in checks)
    done = 0
    bar = _Progress(total) if progress and total else None

    def event(ev: Event) -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(done, ev[1].unit)
        if on_event is not None:
            on_event(ev)

    results: list[NvccCheck] = []
    try:
        for group in by_project.values():
            pool = compiler or compile_pool(group[0].template.config, jobs)
            results += await asyncio.gather(*(nvcc_check(jc, pool, mode, event)
                                              for jc in group))
    finally:
        if bar is not None:
            bar.close()
    out: list[Diagnostic] = []
    for nc in results:
        out += nc.diagnostics()
    return out


class _Progress:
    """A rich progress bar on stderr (terminal only): ``nvcc ━━━ 3/8 t.cu.jinja
    [sample/variant]``."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        # markup=False: "[sample/variant]" is text, not a rich style tag
        self._p = Progress(TextColumn("nvcc"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.description}", markup=False),
                           console=Console(stderr=True), transient=True)
        self._task = self._p.add_task("", total=total)
        self._p.start()

    def update(self, done: int, unit: RenderedUnit) -> None:
        self._p.update(self._task, completed=done, refresh=True,
                       description=f"{unit.template.name} [{unit.sample.name}/"
                                   f"{unit.variant.name}]")

    def close(self) -> None:
        self._p.stop()
