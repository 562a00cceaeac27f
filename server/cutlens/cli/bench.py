"""``cutlens bench TEMPLATE``: sweep the variants on the GPU, print a table sorted by latency
(best marked, the torch reference as a baseline row), JSON or CSV; compare with a baseline
JSON; plot latency per variant. ``--executor local`` (default: every local GPU, nvcc on every
core) or ``ray`` (a Ray cluster; see :mod:`cutlens.bench.executor`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from cutlens.bench import captured as captured_mod
from cutlens.bench import compile_summary, project
from cutlens.bench import report as report_mod
from cutlens.bench.best import is_ok
from cutlens.bench.executor import Executor
from cutlens.bench.progress import SweepProgress
from cutlens.bench.project import BenchOverrides
from cutlens.bench.template_sweep import SweepPlan, SweepStats, build_all, sweep, timing_from
from cutlens.check import formats
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    console,
    load_one,
    pairs_or_usage,
    selection,
    use_color,
)
from cutlens.errors import UsageError
from cutlens.nvcc.options import compile_options
from cutlens.nvcc.toolchain import NvccNotFound, find_nvcc, nvcc_version
from cutlens.render.renderer import Renderer
from cutlens.results.store import ResultStore
from cutlens.template import captured as captured_file
from cutlens.template.model import Template


class BrokenTemplate(Exception):
    """The template cannot be benchmarked (bad front matter...): its problems, printed like
    ``check`` prints them, exit 1 like ``check``."""

    def __init__(self, template: Template) -> None:
        super().__init__(f"{template.path.name}: cannot be benchmarked")
        self.template = template


def require_plot(path: Path | None) -> None:
    """``--plot`` needs matplotlib: say so before the sweep, not after it."""
    if path is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise UsageError(f"--plot {path}: matplotlib is not installed in this Python "
                         f"environment ({e}); install it (pip install matplotlib, or "
                         "'cutlens[bench]') or run without --plot") from None
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: the file must end in .png, .svg or .pdf")


def failed_rows(report: dict[str, Any]) -> int:
    """Results that are problems: a render, compile or run error, a wrong result, a failed
    torch reference."""
    bad = sum(1 for r in report["results"] if not is_ok(r))
    return bad + sum(1 for b in report.get("baseline", {}).values() if b.get("error"))


def require_nvcc(template: Template, kind: str) -> None:
    """A local sweep compiles here: a missing or broken nvcc is one usage error up front,
    not the same long message on every variant (Ray nodes bring their own nvcc)."""
    if kind != "local":
        return
    try:
        nvcc_version(find_nvcc(compile_options(template).nvcc))
    except NvccNotFound as e:
        raise UsageError(str(e)) from None


def overrides(args: argparse.Namespace) -> BenchOverrides:
    """What the command line says over the project's ``[bench]`` table."""
    return BenchOverrides(executor=args.executor, gpus=args.gpus,
                          workers_per_gpu=args.workers_per_gpu, address=args.address,
                          workers=args.workers, gpu_resource=args.gpu_resource,
                          jobs=args.jobs)


def _plan(args: argparse.Namespace, baseline: bool) -> SweepPlan:
    """The template and the samples × variants the command line selects (usage errors for a
    broken template or an empty selection)."""
    t = load_one(args.template)
    if t.broken:
        raise BrokenTemplate(t)
    sel = selection(args)
    pairs_or_usage(t, sel)
    return SweepPlan(t, sel, baseline=baseline,
                     shape_generic=not getattr(args, "static_sizes", False))


async def _run(args: argparse.Namespace, show_progress: bool,
               stats: SweepStats) -> tuple[list[dict[str, Any]], Executor]:
    plan = _plan(args, baseline=not args.no_baseline)
    t = plan.template
    cfg = t.config
    store = ResultStore(cfg.root)
    timing = timing_from(t)
    timeout = max(cfg.bench.timeout_s, 5 * (timing.warmup_ms + timing.rep_ms) / 1000)
    progress = SweepProgress(console=console(sys.stderr, use_color(args.color, sys.stderr))
                             ) if show_progress else None
    ecfg = project.executor_config(cfg, overrides(args), timeout)
    require_nvcc(t, ecfg.kind)
    async with project.open_executor_for(cfg, ecfg) as ex:
        _time_trace(ex.compiler, args)
        if progress is not None:
            with progress:
                return await sweep(plan, Renderer(), ex.compiler, ex.runner, store,
                                   on_result=progress.update,
                                   on_planned=lambda n: progress.add_total(n),
                                   stats=stats), ex
        return await sweep(plan, Renderer(), ex.compiler, ex.runner, store, stats=stats), ex


def _time_trace(compiler: object, args: argparse.Namespace) -> None:
    """``--time-trace``: the compile pool records nvcc's device time trace."""
    if getattr(args, "time_trace", False) and hasattr(compiler, "time_trace"):
        compiler.time_trace = True


async def _build_only(args: argparse.Namespace) -> int:
    plan = _plan(args, baseline=False)
    t = plan.template
    cfg = t.config
    ecfg = project.executor_config(cfg, overrides(args))
    require_nvcc(t, ecfg.kind)
    skipped: list[dict[str, Any]] = []
    if ecfg.kind == "local":  # no bench worker needed
        compiler = project.compile_pool(cfg, ecfg.jobs)
        _time_trace(compiler, args)
        built = await build_all(plan, Renderer(), compiler, skipped)
    else:
        async with project.open_executor_for(cfg, ecfg, bench=False) as ex:
            _time_trace(ex.compiler, args)
            built = await build_all(plan, Renderer(), ex.compiler, skipped)
    failed = 0
    by_build: dict[int, list[Any]] = {}
    for u, res in built:  # one line per build, naming the variants it serves
        by_build.setdefault(id(res), [res]).append(u)
    for res, *us in by_build.values():
        status = "ok" if res.ok else "FAILED"
        failed += not res.ok
        u = us[0]
        what = u.variant.build_name or u.variant.name
        more = f" ({len(us)} variants)" if len(us) > 1 else ""
        samples = ", ".join(dict.fromkeys(x.sample.name for x in us))
        phases = sorted(res.phases.items(), key=lambda kv: -kv[1])[:3]
        where = ("  [" + ", ".join(f"{k} {v:.1f}s" for k, v in phases) + "]") if phases else ""
        sys.stdout.write(f"{status:6} {res.duration_s:6.1f}s{' (cached)' if res.cached else ''}"
                         f"{where}  {samples} / {what}{more}\n")
    for r in skipped:  # the variants that cannot compile: listed, never compiled
        sys.stdout.write(f"{'skip':6} {'':7}  {r['sample']} / {r['variant_name']}: "
                         f"{r['error']}\n")
    return EXIT_PROBLEMS if failed or skipped else EXIT_OK


def captured_summary(args: argparse.Namespace, rep: dict[str, Any]) -> dict[str, Any] | None:
    """The weighted summary over the captured samples benchmarked (``--samples
    captured``), added to the report as ``captured``."""
    t = load_one(args.template)
    weights = {s.name: s.weight for s in t.samples
               if s.origin == "captured" and s.weight is not None}
    ran = {str(r.get("sample")) for r in rep["results"]}
    weights = {n: w for n, w in weights.items() if n in ran}
    if not weights:
        return None
    by = "count"
    if t.captured is not None:
        with contextlib.suppress(captured_file.CapturedError):
            by = captured_file.read(t.captured.file).weight_by
    ref = "torch.mm" if "torch.mm" in (t.bench.reference or "") else "torch"
    out = captured_mod.summary(rep, weights, by, ref)
    if out is not None:
        rep["captured"] = out
    return out


def run_bench(args: argparse.Namespace) -> int:
    """Exit 0 when every result is good; 1 when a variant failed (render, compile, run,
    verification), the template is broken, or ``--compare`` found a regression; 2 for usage
    and config problems (raised as :class:`UsageError`)."""
    if not args.template.exists():
        raise UsageError(f"{args.template}: no such file")
    require_plot(args.plot)
    baseline = None
    if args.compare is not None:  # a bad baseline is a usage error before the sweep
        try:
            baseline = report_mod.load_report(args.compare)
        except (OSError, ValueError) as e:
            raise UsageError(f"--compare {args.compare}: {getattr(e, 'strerror', None) or e}"
                             ) from None
    tty = sys.stderr.isatty() and args.format == "table"
    try:
        if args.build_only:
            return asyncio.run(_build_only(args))
        stats = SweepStats()
        results, ex = asyncio.run(_run(args, tty, stats))
    except BrokenTemplate as e:
        sys.stderr.write(formats.text([d for d in e.template.errors], Path.cwd(),
                                      use_color(args.color, sys.stderr)))
        sys.stderr.write(f"cutlens bench: {e}\n")
        return EXIT_PROBLEMS
    nvcc = next((r.get("nvcc") for r in results if r.get("nvcc")), None)
    rep = report_mod.make_report(results, nvcc=nvcc, executor=ex.name, workers=ex.workers,
                                 sweep=stats.to_json())
    for r in rep["results"]:
        r["template"] = args.template.name
    rep["compile_summary"] = compile_summary.summarize(rep["results"], stats.hints)
    captured = captured_summary(args, rep)
    if args.output is not None:
        args.output.write_text(report_mod.to_json(rep) + "\n")
    out = console(sys.stdout, use_color(args.color, sys.stdout))
    if args.format == "table":
        report_mod.print_table(rep, out)
    else:
        sys.stdout.write(report_mod.format_report(rep, args.format))
    sys.stderr.write(compile_summary.format_summary(rep["compile_summary"]))
    if captured is not None:  # beside a table; on stderr beside JSON or CSV
        (sys.stdout if args.format == "table" else sys.stderr).write(
            captured_mod.headline(captured))
    if args.plot is not None:
        report_mod.plot(rep, args.plot, title=args.template.name)
        sys.stderr.write(f"plot written to {args.plot}\n")
    status = EXIT_PROBLEMS if failed_rows(rep) else EXIT_OK
    if not rep["results"]:
        sys.stderr.write("cutlens bench: nothing was benchmarked\n")
        status = EXIT_PROBLEMS
    elif status:
        sys.stderr.write(f"cutlens bench: {failed_rows(rep)} result(s) failed\n")
    if baseline is not None:
        cmp = report_mod.compare(rep, baseline, args.threshold)
        # beside a table on stdout; on stderr beside JSON or CSV (they stay parseable)
        stream = sys.stdout if args.format == "table" else sys.stderr
        report_mod.print_comparison(cmp, console(stream, use_color(args.color, stream)))
        status = max(status, cmp.exit_code)
    return status
