"""Benchmark a template: render the selected sample × variant units, build each distinct
translation unit once in the compile pool, and send every variant of a build to the GPU
runner as soon as that build is ready (variants that differ only in runtime parameters share
a build and are called with their own values); results go to the results store one by one.
Shared by ``cutlens bench`` and the language server.

Torch-free: only the runner's worker processes touch CUDA.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.bench.ceilings import report_ceilings, signature_dtype, speed_of_light
from cutlens.bench.compile_summary import runtime_hints
from cutlens.bench.executor import BuildCompiler
from cutlens.bench.finalists import final_round
from cutlens.bench.protocol import TimingConfig, baseline_request, error_result, run_request
from cutlens.bench.runner import Runner
from cutlens.bench.sweep import store_guard
from cutlens.check.grid_validity import builds, grid_warnings, jobs_of
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc.mapping import map_result
from cutlens.nvcc.options import compile_options, job_for, unit_id
from cutlens.nvcc.pool import CompileJob, CompileResult, Mode
from cutlens.nvcc.toolchain import find_nvcc, nvcc_version
from cutlens.render.hooks import HookError
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
    #: Shape-generic builds (samples differing only in sizes share one); False, or the
    #: template's ``[bench] static_sizes = true``, compiles each sample's sizes in.
    shape_generic: bool = True
    #: Time the finalists and the reference again in interleaved rounds after the sweep
    #: (:mod:`cutlens.bench.finalists`); None: on a GPU only. Never on a runner whose
    #: workers cannot take several libraries in one request (Ray).
    finalists: bool | None = None

    def units(self, renderer: Renderer) -> tuple[list[RenderedUnit], list[RenderFailure]]:
        """Rendered units of the selected pairs (only those are rendered), and the selected
        pairs that failed to render."""
        generic = self.shape_generic and not self.template.bench.static_sizes
        jc = jinja_check(self.template, renderer, self.selection, shape_generic=generic)
        return jc.units, jc.failures


@dataclass
class SweepStats:
    """What a sweep did, for its report: wall time, distinct builds, how many compiled."""

    #: Seconds from the start of the sweep (rendering included) to its last result.
    wall_s: float = 0.0
    #: Distinct translation units the selected variants need.
    builds: int = 0
    #: Of those, how many nvcc compiled now, and how many came from the build cache.
    compiled: int = 0
    cached: int = 0
    #: Variants rendered (each gets a result).
    variants: int = 0
    #: Variants the front end found cannot compile: skipped, never compiled.
    invalid: int = 0
    #: Variant keys that could be runtime parameters (:mod:`cutlens.bench.compile_summary`).
    hints: list[dict[str, Any]] = field(default_factory=list)
    #: This GPU's measured ceilings (:mod:`cutlens.bench.ceilings`; None without a GPU) and
    #: each sample's finalists (:mod:`cutlens.bench.finalists`).
    ceilings: dict[str, Any] | None = None
    finalists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def cold(self) -> bool:
        """No build came from the build cache."""
        return self.builds > 0 and self.cached == 0

    def to_json(self) -> dict[str, Any]:
        return {"sweep_wall_s": round(self.wall_s, 3), "builds": self.builds,
                "compiled": self.compiled, "cached": self.cached, "cold": self.cold,
                "variants": self.variants, "invalid": self.invalid,
                "ceilings": report_ceilings(self.ceilings), "finalists": self.finalists}


def build_groups(units: list[RenderedUnit], options: Any,
                 mode: Mode = Mode.BUILD) -> list[tuple[CompileJob, list[RenderedUnit]]]:
    """The distinct compile jobs of ``units`` (same TU name, text, companions and options:
    one build), each with the units it serves, in the units' order. ``options``: the
    compile options, or a function giving each unit's."""
    groups: dict[str, tuple[CompileJob, list[RenderedUnit]]] = {}
    for u in units:
        job = job_for(u, mode, options(u) if callable(options) else options)
        groups.setdefault(unit_id(job), (job, []))[1].append(u)
    return list(groups.values())


def _resources(res: CompileResult) -> dict[str, Any]:
    main = max(res.resources, key=lambda r: r.registers, default=None)
    if main is None:
        return {}
    return {"regs": main.registers, "smem": main.smem_bytes,
            "spills": main.spill_stores + main.spill_loads}


def compile_json(u: RenderedUnit, res: CompileResult) -> dict[str, Any]:
    """A row's ``compile``: nvcc's seconds (the original run's for a cached build), its
    phases, costliest instantiations and headers, and whether the sizes are arguments."""
    out: dict[str, Any] = {
        "seconds": round(res.duration_s, 3), "cached": res.cached,
        "phases": dict(res.phases),
        "top_instantiations": [[n, s] for n, s in res.top_instantiations],
        "top_headers": [[n, s] for n, s in res.top_headers]}
    if u.shapes:
        out["shapes"] = u.shapes
    if u.static_sizes:
        out["static_sizes"] = u.static_sizes
    return out


def timing_from(template: Template) -> TimingConfig:
    return TimingConfig.from_json(template.config.bench.timing())


async def sweep(plan: SweepPlan, renderer: Renderer, compiler: BuildCompiler, runner: Runner,
                store: ResultStore | None = None,
                on_result: Callable[[dict[str, Any]], None] | None = None,
                on_planned: Callable[[int], None] | None = None,
                stats: SweepStats | None = None) -> list[dict[str, Any]]:
    """Benchmark the plan; returns every result (variants, failures and baselines).
    ``stats`` (filled in when given): wall time, builds, compiles."""
    t0 = time.monotonic()
    stats = stats if stats is not None else SweepStats()
    t = plan.template
    start = asyncio.ensure_future(runner.start())  # torch import, CUDA context: while rendering
    units, failures = await asyncio.to_thread(plan.units, renderer)
    gpu = getattr(runner, "device", "cuda") != "cpu"
    # The ceilings are measured (or read from their cache) while the first builds compile.
    ceilings = asyncio.ensure_future(_ceilings(runner, units, timing_from(t))) if gpu else None
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
    results: list[dict[str, Any]] = []

    keep = store_guard(store)
    sent: dict[tuple[str, str], dict[str, Any]] = {}  # run and baseline requests, for the finalists

    def emit(r: dict[str, Any]) -> None:
        full = {**record, **r}
        if stats.ceilings and full.get("ms") is not None:
            full.update(speed_of_light(full, stats.ceilings))
        keep(full)
        results.append(full)
        if on_result is not None:
            on_result(full)

    def replace(r: dict[str, Any]) -> None:
        """A finalist's (or the reference's) row again, with the round's figures."""
        full = {**r}
        if stats.ceilings:
            full.update(speed_of_light(full, stats.ceilings))
        keep(full)
        key = (full.get("kind"), full.get("sample"), full.get("variant_name"))
        for i, old in enumerate(results):
            if (old.get("kind"), old.get("sample"), old.get("variant_name")) == key:
                results[i] = full

    for f in failures:  # failed renders are results too: tables and lenses show them
        first = f.diagnostics[0].message if f.diagnostics else "render failed"
        emit(error_result({}, f"render: {first}", sample=f.sample.name,
                          variant=f.variant.values, variant_name=f.variant.name))
    units, invalid = await asyncio.to_thread(drop_invalid, t, units, compiler)
    stats.invalid = len(invalid)
    for r in invalid:
        emit(r)
    groups = build_groups(units, lambda u: compile_options(t, u))
    stats.builds, stats.variants = len(groups), len(units)
    stats.hints = await asyncio.to_thread(runtime_hints, units)
    held: list[str] = []  # builds a bench worker will load: kept from cache eviction

    baseline_reqs = [baseline_request(sig, bench, timing=timing, sample=name,
                                      variant_name="torch", kind="baseline",
                                      dtype=signature_dtype(sig))
                     for name, u in baselines.items() if (sig := _signature(u, ""))]

    def baseline_requests() -> list[dict[str, Any]]:
        return list(baseline_reqs)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        # The torch baselines go right after the first build's variants: timed on a GPU
        # that is running the sweep's kernels, as the variants are (not on one idle through
        # the compile), and before most of them.
        pending_baselines = baseline_requests()
        pending = {asyncio.ensure_future(compiler.compile(job)): us for job, us in groups}
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                stats.cached += res.cached
                stats.compiled += not res.cached and res.returncode is not None
                for u in pending.pop(fut):
                    req = _request_for(u, res, bench, timing, emit)
                    if req is not None:
                        sent[(u.sample.name, u.variant.name)] = req
                        if res.key and res.key not in held:
                            compiler.hold(res.key)
                            held.append(res.key)
                        yield req
                while pending_baselines and res.ok:
                    yield pending_baselines.pop(0)
        for req in pending_baselines:  # no build succeeded
            yield req

    try:
        async for r in runner.sweep(requests()):
            if ceilings is not None and stats.ceilings is None:
                stats.ceilings = await ceilings
            emit(r)
        if ceilings is not None and stats.ceilings is None:
            stats.ceilings = await ceilings
        if getattr(runner, "rounds", True) and (
                plan.finalists if plan.finalists is not None else gpu):
            base = {r["sample"]: r for r in results if r.get("kind") == "baseline"
                    and r.get("ms") is not None}
            stats.finalists = await final_round(
                runner.run, [r for r in results if r.get("kind") != "baseline"], sent,
                {b["sample"]: b for b in baseline_reqs}, base, timing, replace)
    finally:
        for task in (start, ceilings):
            if task is not None and not task.done():
                task.cancel()
        stats.wall_s = time.monotonic() - t0
        for key in held:
            compiler.release(key)
    return results


async def _ceilings(runner: Runner, units: list[RenderedUnit],
                    timing: TimingConfig) -> dict[str, Any] | None:
    """This GPU's ceilings for the dtypes of the units (None when they cannot be had)."""
    dtypes: set[str] = set()
    for u in units:
        try:
            d = signature_dtype(_signature(u, "")) if u.signature or u.call else None
        except HookError:
            d = None
        if d is not None:
            dtypes.add(d)
    resp = await runner.run({"op": "ceilings", "dtypes": sorted(dtypes), "timing": timing.to_json(),
                             "timeout_s": 600})
    return resp.get("ceilings") if not resp.get("error") else None


def _request_for(u: RenderedUnit, res: CompileResult, bench: dict[str, Any], timing: TimingConfig,
                 emit: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
    """The run request of one variant of a finished build (its own runtime arguments), or
    None after emitting why it cannot run."""
    ctx = {"sample": u.sample.name, "variant": u.variant.values,
           "variant_name": u.variant.name, "build": res.key[:16], **_resources(res),
           "compile": compile_json(u, res)}
    if not res.ok or res.artifact is None:
        errs = [m for m in map_result(u, res) if m.severity == "error"]
        first = errs[0].message if errs else "build failed"
        emit(error_result({}, f"nvcc: {len(errs)} error(s): {first}", **ctx))
        return None
    if u.signature is None and u.call is None:
        emit(error_result({}, "no kernel signature (def_kernel never called)", **ctx))
        return None
    try:
        sig = _signature(u, res.artifact)
    except HookError as e:
        emit(error_result({}, f"signature: {e}", **ctx))
        return None
    return run_request(sig, {**bench, **(u.bench or {})}, timing=timing,
                       dtype=signature_dtype(sig), **ctx)


def drop_invalid(t: Template, units: list[RenderedUnit], compiler: BuildCompiler,
                 ) -> tuple[list[RenderedUnit], list[dict[str, Any]]]:
    """The units whose build can compile, and a result row for each variant the front end
    found cannot because of its keys (:mod:`cutlens.check.grid_validity`): those are never
    compiled. A compiler without a local build cache (Ray: nvcc runs on the cluster's nodes,
    maybe not here) gets no pre-check: its builds' own errors say why."""
    cache = getattr(compiler, "cache", None)
    if builds(units) < 2 or cache is None:
        return units, []
    root = getattr(cache, "root", t.config.cache_dir / "build")
    pairs = [(u.sample, u.variant) for u in units]
    warnings, gv = grid_warnings(t, pairs, units, Path(root), jobs_of(t))
    if gv is None or not warnings:  # none, or no key to blame: nvcc's errors say it best
        return units, []
    bad = {(r.sample, id(r.variant)): r for r in gv.invalid if r.keys}
    keep = [u for u in units if (u.sample.name, id(u.variant)) not in bad]
    rows = [error_result({}, f"invalid: {r.reason} ({Path(r.file).name}:{r.line}"
                         f"{', ' + ', '.join(r.keys) if r.keys else ''}); not compiled",
                         sample=r.sample, variant=r.variant.values,
                         variant_name=r.variant.name, invalid=True)
            for r in bad.values()]
    return keep, rows


async def build_all(plan: SweepPlan, renderer: Renderer, compiler: BuildCompiler,
                    skipped: list[dict[str, Any]] | None = None,
                    ) -> list[tuple[RenderedUnit, CompileResult]]:
    """Build the plan's units (in the compile pool) without running them: a CPU machine can
    fill the build cache for a later GPU sweep. Variants that cannot compile are left out
    (:func:`drop_invalid`; their rows go to ``skipped``)."""
    units, _ = await asyncio.to_thread(plan.units, renderer)
    t = plan.template
    units, invalid = await asyncio.to_thread(drop_invalid, t, units, compiler)
    if skipped is not None:
        skipped += invalid
    groups = build_groups(units, lambda u: compile_options(t, u))
    results = await asyncio.gather(*(compiler.compile(job) for job, _ in groups))
    return [(u, res) for (_, us), res in zip(groups, results, strict=True) for u in us]


def _signature(u: RenderedUnit, library: str) -> dict[str, Any]:
    if u.call is not None:  # the unit says how it is called (a render driver's case)
        sig = dict(u.call)
    else:
        assert u.signature is not None
        absent = [n for n, node in u.sample.nodes.items() if node is None]
        sig = u.signature.to_json(u.sample.hints, absent, u.variant.values)
    sig["library"] = library
    sig["values"] = {**u.variant.values, **u.sample.vars}
    return sig
