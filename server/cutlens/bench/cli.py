"""``cutlens bench TEMPLATE``: sweep the variants on the GPU, print a table sorted by latency
(best marked, the torch reference as a baseline row), JSON or CSV; compare with a baseline
JSON; plot latency per variant."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .. import config as config_mod
from ..nvcc_check import default_compiler
from ..project import load_template
from ..render import Renderer
from ..results import ResultStore
from . import report as report_mod
from .progress import SweepProgress
from .runner import Runner
from .template_sweep import SweepPlan, build_all, sweep, timing_from

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


async def _run(args: argparse.Namespace, show_progress: bool) -> list[dict]:
    cfg = config_mod.load(config_mod.find_root(args.template))
    t = load_template(args.template, cfg)
    if t.broken:
        raise ValueError("; ".join(f"{Path(d.file).name}:{d.line}: {d.message}"
                                   for d in t.errors))
    bench_cfg = cfg.bench or {}
    plan = SweepPlan(t, samples=args.sample, variants=args.variants,
                     baseline=not args.no_baseline)
    store = ResultStore(cfg.root)
    compiler = default_compiler(cfg.root, args.jobs or cfg.jobs or None)
    timeout = float(bench_cfg.get("timeout_s", 60))
    timing = timing_from(t)
    progress = SweepProgress(console=None) if show_progress else None
    async with Runner(device=str(bench_cfg.get("device", "cuda")),
                      gpus=bench_cfg.get("devices"),
                      timeout_s=max(timeout, 5 * (timing.warmup_ms + timing.rep_ms) / 1000)
                      ) as runner:
        if progress is not None:
            with progress:
                return await sweep(plan, Renderer(), compiler, runner, store,
                                   on_result=progress.update,
                                   on_planned=lambda n: progress.add_total(n))
        return await sweep(plan, Renderer(), compiler, runner, store)


async def _build_only(args: argparse.Namespace) -> int:
    cfg = config_mod.load(config_mod.find_root(args.template))
    t = load_template(args.template, cfg)
    plan = SweepPlan(t, samples=args.sample, variants=args.variants, baseline=False)
    built = await build_all(plan, Renderer(), default_compiler(cfg.root,
                                                               args.jobs or cfg.jobs or None))
    failed = 0
    for u, res in built:
        status = "ok" if res.ok else "FAILED"
        failed += not res.ok
        sys.stdout.write(f"{status:6} {res.duration_s:6.1f}s{' (cached)' if res.cached else ''}"
                         f"  {u.sample.name} / {u.variant.name}\n")
    return 1 if failed else EXIT_OK


def run_bench(args: argparse.Namespace) -> int:
    if not args.template.exists():
        sys.stderr.write(f"cutlens bench: {args.template}: no such file\n")
        return EXIT_USAGE
    if args.build_only:
        return asyncio.run(_build_only(args))
    tty = sys.stderr.isatty() and args.format == "table"
    try:
        results = asyncio.run(_run(args, tty))
    except ValueError as e:
        sys.stderr.write(f"cutlens bench: {e}\n")
        return EXIT_USAGE
    nvcc = next((r.get("nvcc") for r in results if r.get("nvcc")), None)
    rep = report_mod.make_report(results, nvcc=nvcc)
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
