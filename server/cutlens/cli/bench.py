"""``cutlens bench TEMPLATE``: sweep the variants on the GPU, print a table sorted by latency
(best marked, the torch reference as a baseline row), JSON or CSV; compare with a baseline
JSON; plot latency per variant. ``--executor local`` (default: every local GPU, nvcc on every
core) or ``ray`` (a Ray cluster; see :mod:`cutlens.bench.executor`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cutlens import config as config_mod
from cutlens.bench import report as report_mod
from cutlens.bench.executor import Executor, ExecutorConfig
from cutlens.bench.launch import open_executor
from cutlens.bench.progress import SweepProgress
from cutlens.bench.runner import parse_gpus
from cutlens.bench.template_sweep import SweepPlan, SweepStats, build_all, sweep, timing_from
from cutlens.check.nvcc_tier import default_compiler
from cutlens.cli.common import load_one, pairs_or_usage, selection
from cutlens.nvcc.options import compile_options
from cutlens.nvcc.toolchain import NvccNotFound, find_nvcc, nvcc_version
from cutlens.render.renderer import Renderer
from cutlens.results.store import ResultStore
from cutlens.template.model import Template

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


def require_nvcc(template: Template, kind: str) -> None:
    """A local sweep compiles here: a missing or broken nvcc is one usage error up front,
    not the same long message on every variant (Ray nodes bring their own nvcc)."""
    if kind != "local":
        return
    try:
        nvcc_version(find_nvcc(compile_options(template).nvcc))
    except NvccNotFound as e:
        raise ValueError(str(e)) from None


def executor_config(args: argparse.Namespace, cfg: config_mod.ProjectConfig,
                    timeout_s: float = 60.0) -> ExecutorConfig:
    """The executor from the command line, else the project's ``[bench]`` table (``device``,
    ``devices``, ``executor``, ``ray_address``, ``gpu_resource``, ``workers_per_gpu``)."""
    bench = cfg.bench
    kind = getattr(args, "executor", None) or bench.executor
    spec = getattr(args, "gpus", None)
    if kind == "ray" and spec is not None:
        raise ValueError("--gpus is for the local executor; Ray places the workers "
                         "(--workers, --workers-per-gpu)")
    if kind != "ray" and getattr(args, "workers", None) is not None:
        raise ValueError("--workers is for --executor ray; locally use --gpus and "
                         "--workers-per-gpu")
    devices = bench.devices
    gpus = parse_gpus(spec) if spec is not None else (
        [str(d) for d in devices] if isinstance(devices, list) else
        int(devices) if isinstance(devices, int) else None)
    return ExecutorConfig(
        kind=kind, device=str(bench.device), gpus=gpus,
        workers_per_gpu=int(getattr(args, "workers_per_gpu", None) or bench.workers_per_gpu),
        timeout_s=timeout_s, jobs=args.jobs or cfg.jobs or None,
        address=getattr(args, "address", None) or bench.ray_address,
        gpu_resource=getattr(args, "gpu_resource", None) or bench.gpu_resource,
        workers=getattr(args, "workers", None))


async def _run(args: argparse.Namespace, show_progress: bool,
               stats: SweepStats) -> tuple[list[dict], Executor]:
    t = load_one(args.template)
    cfg = t.config
    if t.broken:
        raise ValueError("; ".join(f"{Path(d.file).name}:{d.line}: {d.message}"
                                   for d in t.errors))
    sel = selection(args)
    pairs_or_usage(t, sel)
    plan = SweepPlan(t, sel, baseline=not args.no_baseline)
    store = ResultStore(cfg.root)
    timing = timing_from(t)
    timeout = max(cfg.bench.timeout_s, 5 * (timing.warmup_ms + timing.rep_ms) / 1000)
    progress = SweepProgress(console=None) if show_progress else None
    ecfg = executor_config(args, cfg, timeout)
    require_nvcc(t, ecfg.kind)
    async with open_executor(ecfg,
                             cfg.root / ".cutlens" / "build") as ex:
        if progress is not None:
            with progress:
                return await sweep(plan, Renderer(), ex.compiler, ex.runner, store,
                                   on_result=progress.update,
                                   on_planned=lambda n: progress.add_total(n),
                                   stats=stats), ex
        return await sweep(plan, Renderer(), ex.compiler, ex.runner, store, stats=stats), ex


async def _build_only(args: argparse.Namespace) -> int:
    t = load_one(args.template)
    cfg = t.config
    sel = selection(args)
    pairs_or_usage(t, sel)
    plan = SweepPlan(t, sel, baseline=False)
    ecfg = executor_config(args, cfg)
    require_nvcc(t, ecfg.kind)
    if ecfg.kind == "local":  # no bench worker needed
        built = await build_all(plan, Renderer(), default_compiler(cfg.root, ecfg.jobs))
    else:
        async with open_executor(ecfg, cfg.root / ".cutlens" / "build", bench=False) as ex:
            built = await build_all(plan, Renderer(), ex.compiler)
    failed = 0
    by_build: dict[int, list] = {}
    for u, res in built:  # one line per build, naming the variants it serves
        by_build.setdefault(id(res), [res]).append(u)
    for res, *us in by_build.values():
        status = "ok" if res.ok else "FAILED"
        failed += not res.ok
        u = us[0]
        what = u.variant.build_name or u.variant.name
        more = f" ({len(us)} variants)" if len(us) > 1 else ""
        sys.stdout.write(f"{status:6} {res.duration_s:6.1f}s{' (cached)' if res.cached else ''}"
                         f"  {u.sample.name} / {what}{more}\n")
    return 1 if failed else EXIT_OK


def run_bench(args: argparse.Namespace) -> int:
    if not args.template.exists():
        sys.stderr.write(f"cutlens bench: {args.template}: no such file\n")
        return EXIT_USAGE
    tty = sys.stderr.isatty() and args.format == "table"
    try:
        if args.build_only:
            return asyncio.run(_build_only(args))
        stats = SweepStats()
        results, ex = asyncio.run(_run(args, tty, stats))
    except ValueError as e:
        sys.stderr.write(f"cutlens bench: {e}\n")
        return EXIT_USAGE
    nvcc = next((r.get("nvcc") for r in results if r.get("nvcc")), None)
    rep = report_mod.make_report(results, nvcc=nvcc, executor=ex.name, workers=ex.workers,
                                 sweep=stats.to_json())
    for r in rep["results"]:
        r["template"] = args.template.name
    if args.output is not None:
        args.output.write_text(report_mod.to_json(rep) + "\n")
    if args.format == "table":
        report_mod.print_table(rep)
    else:
        sys.stdout.write(report_mod.format_report(rep, args.format))
    if args.plot is not None:
        report_mod.plot(rep, args.plot, title=args.template.name)
        sys.stderr.write(f"plot written to {args.plot}\n")
    if args.compare is not None:
        base = report_mod.load_report(args.compare)
        cmp = report_mod.compare(rep, base, args.threshold)
        report_mod.print_comparison(cmp)
        return cmp.exit_code
    return EXIT_OK
