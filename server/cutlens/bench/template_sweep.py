"""Benchmark a template: render the selected sample × variant units, build each in the
compile pool, and send each build to the GPU runner as soon as it is ready; results go to
the results store one by one. Shared by ``cutlens bench`` and the language server.

Torch-free: only the runner's worker processes touch CUDA.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from cutlens.bench.protocol import TimingConfig, baseline_request, error_result, run_request
from cutlens.bench.runner import Runner
from cutlens.bench.sweep import store_guard
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc.mapping import map_result
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Compiler, CompileResult, Mode
from cutlens.nvcc.toolchain import find_nvcc, nvcc_version
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.results.store import ResultStore, flags_hash
from cutlens.template.model import Template
from cutlens.template.selection import Selection


@dataclass
class SweepPlan:
    """What to benchmark: a template, the samples × variants selected, the torch baseline."""

    template: Template
    selection: Selection = field(default_factory=Selection)
    baseline: bool = True

    def units(self, renderer: Renderer) -> tuple[list[RenderedUnit], list[RenderFailure]]:
        """Rendered units of the selected pairs (only those are rendered), and the selected
        pairs that failed to render."""
        jc = jinja_check(self.template, renderer, self.selection)
        return jc.units, jc.failures


def _resources(res: CompileResult) -> dict[str, Any]:
    main = max(res.resources, key=lambda r: r.registers, default=None)
    if main is None:
        return {}
    return {"regs": main.registers, "smem": main.smem_bytes,
            "spills": main.spill_stores + main.spill_loads}


def timing_from(template: Template) -> TimingConfig:
    return TimingConfig.from_json(template.config.bench.timing())


async def sweep(plan: SweepPlan, renderer: Renderer, compiler: Compiler, runner: Runner,
                store: ResultStore | None = None,
                on_result: Callable[[dict], None] | None = None,
                on_planned: Callable[[int], None] | None = None) -> list[dict]:
    """Benchmark the plan; returns every result (variants, failures and baselines)."""
    t = plan.template
    units, failures = await asyncio.to_thread(plan.units, renderer)
    options = compile_options(t)
    try:
        nvcc_ver = nvcc_version(find_nvcc(options.nvcc))
    except Exception:
        nvcc_ver = ""
    record = {"template": t.path.name, "template_hash": t.content_hash, "nvcc": nvcc_ver,
              "flags_hash": flags_hash(repr(options))}
    bench = t.bench.to_json()
    timing = timing_from(t)
    baselines = {} if not (plan.baseline and t.bench.reference) else {
        u.sample.name: u for u in units if u.signature is not None}
    if on_planned is not None:
        on_planned(len(units) + len(baselines) + len(failures))
    results: list[dict] = []

    keep = store_guard(store)

    def emit(r: dict) -> None:
        full = {**record, **r}
        keep(full)
        results.append(full)
        if on_result is not None:
            on_result(full)

    for f in failures:  # failed renders are results too: tables and lenses show them
        first = f.diagnostics[0].message if f.diagnostics else "render failed"
        emit(error_result({}, f"render: {first}", sample=f.sample.name,
                          variant=f.variant.values, variant_name=f.variant.name))
    start = asyncio.ensure_future(runner.start())
    held: list[str] = []  # builds a bench worker will load: kept from cache eviction
    hold = getattr(compiler, "hold", None)

    async def requests() -> AsyncIterator[dict]:
        for name, u in baselines.items():
            sig = _signature(u, "")
            yield baseline_request(sig, bench, timing=timing, sample=name,
                                   variant_name="torch", kind="baseline")
        pending = {asyncio.ensure_future(compiler.compile(job_for(u, Mode.BUILD, options))): u
                   for u in units}
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                u = pending.pop(fut)
                res = fut.result()
                ctx = {"sample": u.sample.name, "variant": u.variant.values,
                       "variant_name": u.variant.name, **_resources(res)}
                if not res.ok or res.artifact is None:
                    errs = [m for m in map_result(u, res) if m.severity == "error"]
                    first = errs[0].message if errs else "build failed"
                    emit(error_result({}, f"nvcc: {len(errs)} error(s): {first}", **ctx))
                    continue
                if u.signature is None:
                    emit(error_result({}, "no kernel signature (def_kernel never called)",
                                      **ctx))
                    continue
                if hold is not None and res.key:
                    hold(res.key)
                    held.append(res.key)
                yield run_request(_signature(u, res.artifact), bench, timing=timing, **ctx)

    try:
        async for r in runner.sweep(requests()):
            emit(r)
    finally:
        if not start.done():
            start.cancel()
        for key in held:
            compiler.release(key)
    return results


async def build_all(plan: SweepPlan, renderer: Renderer,
                    compiler: Compiler) -> list[tuple[RenderedUnit, CompileResult]]:
    """Build the plan's units (in the compile pool) without running them: a CPU machine can
    fill the build cache for a later GPU sweep."""
    units, _ = await asyncio.to_thread(plan.units, renderer)
    options = compile_options(plan.template)
    results = await asyncio.gather(*(compiler.compile(job_for(u, Mode.BUILD, options))
                                     for u in units))
    return list(zip(units, results, strict=True))


def _signature(u: RenderedUnit, library: str) -> dict:
    assert u.signature is not None
    absent = [n for n, node in u.sample.nodes.items() if node is None]
    sig = u.signature.to_json(u.sample.hints, absent)
    sig["library"] = library
    sig["values"] = {**u.variant.values, **u.sample.vars}
    return sig
