"""The ``cutlens`` command line: render, variants, check, bench, watch, lsp (the parser and
the dispatch; each command lives in its own module)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from cutlens import __version__, trust
from cutlens.check import formats
from cutlens.check.nvcc_tier import CHECK_MODES
from cutlens.cli.check import cmd_check
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    ConfigProblems,
    UsageError,
    add_selection,
    default_paths,
    selection,
)
from cutlens.cli.render import cmd_render
from cutlens.cli.variants import cmd_variants
from cutlens.config import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cutlens", description="Render, check and benchmark "
                                "Jinja-templated CUDA/CUTLASS kernels.")
    p.add_argument("--version", action="version", version=f"cutlens {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("render", help="write the rendered CUDA of a template")
    r.add_argument("template", type=Path)
    add_selection(r, "render (default: the first sample and variant)")
    r.add_argument("--all", action="store_true", help="every sample × variant")
    r.add_argument("-o", "--output", type=Path, help="output directory (default: stdout)")
    r.add_argument("--line-directives", action="store_true",
                   help="emit #line directives pointing at the template")

    v = sub.add_parser("variants", help="list a template's samples and variants")
    v.add_argument("template", type=Path)
    v.add_argument("--format", choices=("text", "json"), default="text")
    add_selection(v, "list")

    c = sub.add_parser("check", help="render and compile templates; report diagnostics")
    c.add_argument("paths", nargs="*", type=Path)
    c.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text")
    c.add_argument("--jobs", type=int, default=None)
    add_selection(c, "check")
    c.add_argument("--no-nvcc", action="store_true", help="the Jinja tier only")
    c.add_argument("--mode", choices=CHECK_MODES, default="full",
                   help="nvcc passes: quick (device front end only), full (default: quick and "
                        "full side by side, quick's errors first) or full-only (the full pass "
                        "alone: a CI gate's complete set for less CPU)")

    b = sub.add_parser("bench", help="benchmark a template's variants on the GPU")
    b.add_argument("template", type=Path)
    add_selection(b, "benchmark")
    b.add_argument("--format", choices=("table", "json", "csv"), default="table")
    b.add_argument("--compare", type=Path, help="baseline JSON from an earlier --format json")
    b.add_argument("--threshold", type=float, default=5.0, help="regression threshold, %%")
    b.add_argument("--plot", type=Path, help="write a latency-per-variant plot (PNG)")
    b.add_argument("--jobs", type=int, default=None)
    b.add_argument("--no-baseline", action="store_true", help="skip the torch baseline row")
    b.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    b.add_argument("--build-only", action="store_true",
                   help="build the selected variants (fill the build cache) without running")
    b.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="local (default): this machine's GPUs and cores; ray: a Ray cluster")
    b.add_argument("--gpus", metavar="all|0,1",
                   help="local: GPUs to run on, one worker each (default all visible); "
                        "list one twice (0,0) to give it two workers")
    b.add_argument("--workers-per-gpu", type=int, metavar="K",
                   help="bench workers sharing each GPU (default 1); they run concurrently, "
                        "so timings contend: use 1 for figures you report")
    b.add_argument("--address", metavar="ADDR",
                   help="ray: the cluster (ray://host:10001, host:6379 or auto; default "
                        "$RAY_ADDRESS, else a new local cluster)")
    b.add_argument("--workers", type=int, metavar="N",
                   help="ray: bench workers in all (default: the cluster's GPUs x "
                        "--workers-per-gpu)")
    b.add_argument("--gpu-resource", metavar="NAME",
                   help="ray: the resource a bench worker holds (default GPU)")

    w = sub.add_parser("watch", help="re-check on every change, printing what changed")
    w.add_argument("paths", nargs="*", type=Path)
    w.add_argument("--no-nvcc", action="store_true")
    add_selection(w, "check")

    lsp = sub.add_parser("lsp", help="start the language server")
    lsp.add_argument("--tcp", action="store_true", help="listen on TCP (127.0.0.1)")
    lsp.add_argument("--port", type=int, default=2087)
    lsp.add_argument("--headless", nargs="*", type=Path, default=None, metavar="PATH",
                     help="open every template under PATH with an in-process client, "
                          "print the diagnostics like check, and exit like check")
    lsp.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text")
    lsp.add_argument("--log-file", type=Path)
    for sp in (r, v, c, b, w, lsp):
        sp.add_argument("--no-exec", action="store_true",
                        help="untrusted: run no workspace code (generators, template_class "
                             "helpers, nvcc, benchmarks); the Jinja tier only")
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    from cutlens.cli.bench import run_bench

    if args.no_exec:
        raise UsageError("a benchmark runs workspace code (nvcc with the project's flags, the "
                         "compiled kernels, the [bench] reference): --no-exec refuses it")
    return run_bench(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from cutlens.cli.watch import run_watch

    return run_watch(default_paths(args.paths), nvcc=not args.no_nvcc,
                     selection=selection(args))


def cmd_lsp(args: argparse.Namespace) -> int:
    if args.headless is not None:
        from cutlens.lsp.headless import run_headless

        return run_headless(default_paths(args.headless), fmt=args.format,
                            no_exec=args.no_exec)
    from cutlens.lsp.io import start

    start(tcp=args.tcp, port=args.port, log_file=args.log_file, no_exec=args.no_exec)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "render": cmd_render, "variants": cmd_variants, "check": cmd_check, "bench": cmd_bench,
    "watch": cmd_watch, "lsp": cmd_lsp}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    untrusted = getattr(args, "no_exec", False)
    try:
        with trust.exec_policy(False) if untrusted else contextlib.nullcontext():
            return COMMANDS[args.cmd](args)
    except ConfigProblems as e:
        sys.stderr.write(formats.text(e.problems, Path.cwd()))
        sys.stderr.write(f"cutlens {args.cmd}: {e}: fix the config first\n")
        return EXIT_USAGE
    except (UsageError, ConfigError) as e:
        sys.stderr.write(f"cutlens {args.cmd}: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("cutlens: interrupted\n")
        return 130
