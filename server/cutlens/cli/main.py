"""The ``cutlens`` command line: render, variants, check, bench, watch, lsp (the parser and
the dispatch; each command lives in its own module)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cutlens import __version__, trust
from cutlens.check import formats
from cutlens.check.nvcc_tier import CHECK_MODES
from cutlens.cli.capture import add_parser as capture_parser
from cutlens.cli.capture import run_capture
from cutlens.cli.check import cmd_check
from cutlens.cli.common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    ConfigProblems,
    add_color,
    add_selection,
    default_paths,
    selection,
    use_color,
)
from cutlens.cli.help import COLOR, EXIT_STATUS, OVERVIEW, epilog
from cutlens.cli.render import cmd_render
from cutlens.cli.variants import cmd_variants
from cutlens.config import ConfigError
from cutlens.errors import UsageError


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
             selection: bool = True) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog=epilog(name, selection),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cutlens", description="Render, check and benchmark "
                                "Jinja-templated CUDA/CUTLASS kernels.",
                                epilog=EXIT_STATUS + "\n\n" + COLOR,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"cutlens {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="on an internal error, print the traceback (default: one line and "
                        "the log file that holds it)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND",
                           help="`cutlens COMMAND --help` says more")
    template_help = "the template (*.cu.jinja, *.cuh.jinja, *.cu.j2 or a configured glob)"
    paths_help = ("templates or folders to search for templates (default: the project "
                  "around the current folder)")

    r = _command(sub, "render", "write the rendered CUDA of a template")
    r.add_argument("template", type=Path, help=template_help)
    add_selection(r, "render", default="first")
    r.add_argument("--all", action="store_true", help="every sample × variant")
    r.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="write into DIR (one folder per pair with several) and print the "
                        "files written; default: stdout")
    r.add_argument("--line-directives", action="store_true",
                   help="emit #line directives pointing at the template")

    v = _command(sub, "variants", "list a template's samples and variants")
    v.add_argument("template", type=Path, help=template_help)
    v.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json")
    add_selection(v, "list")
    v.add_argument("--validity", action="store_true",
                   help="tell which variants cannot compile, and why, from one nvcc "
                        "front-end pass over their builds (no full compile): each variant's "
                        "`valid`, and for an invalid one `reason`, `file`, `line`")
    v.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="with --validity: front-end passes side by side (default: the "
                        "config's `jobs`, else one per core)")

    c = _command(sub, "check", "render and compile templates; report problems on their lines")
    c.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=paths_help)
    c.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text",
                   help="text: file:line:col: severity: message, like a compiler (default); "
                        "json; sarif (2.1.0, for code scanning); github (workflow "
                        "annotations)")
    c.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="parallel nvcc processes (default: the config's `jobs`, else one per "
                        "core)")
    add_selection(c, "check")
    c.add_argument("--warnings-as-errors", "-Werror", action="store_true",
                   help="exit 1 on warnings too, not only on errors (a CI gate that keeps "
                        "warnings out)")
    c.add_argument("--no-nvcc", action="store_true",
                   help="the Jinja tier only: render, do not compile")
    c.add_argument("--mode", choices=CHECK_MODES, default="full",
                   help="nvcc passes: quick (device front end only), full (default: quick and "
                        "full side by side, quick's errors first) or full-only (the full pass "
                        "alone: a CI gate's complete set for less CPU)")

    b = _command(sub, "bench", "benchmark a template's variants on the GPU")
    b.add_argument("template", type=Path, help=template_help)
    add_selection(b, "benchmark")
    b.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="table (default, sorted by latency, best marked ★), json (the "
                        "report --compare reads) or csv")
    b.add_argument("--compare", type=Path, metavar="BASELINE.json",
                   help="compare with a report from an earlier --format json; exit 1 on a "
                        "regression")
    b.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                   help="with --compare: slower by more than PCT %% is a regression "
                        "(default 5)")
    b.add_argument("--plot", type=Path, metavar="FILE",
                   help="write a latency-per-variant plot (PNG, SVG or PDF; needs "
                        "matplotlib)")
    b.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="parallel nvcc processes (default: the config's `jobs`, else one per "
                        "core)")
    b.add_argument("--no-baseline", action="store_true",
                   help="skip the torch reference's own timing (the baseline row)")
    b.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="also write the JSON report to FILE")
    b.add_argument("--static-sizes", action="store_true",
                   help="compile each sample's sizes in (default: samples differing only "
                        "in sizes share one shape-generic build; [bench] static_sizes)")
    b.add_argument("--time-trace", action="store_true",
                   help="record nvcc's device time trace per build (the costliest template "
                        "instantiations and headers; ~5 %% more compile CPU)")
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

    cap = capture_parser(sub, epilog("capture", selection=False))
    from cutlens.cli.profile import add_parser as add_profile

    prof = add_profile(sub, _command, template_help)

    w = _command(sub, "watch", "re-check on every change, printing what changed")
    w.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=paths_help)
    w.add_argument("--no-nvcc", action="store_true",
                   help="the Jinja tier only: render, do not compile")
    add_selection(w, "check")

    lsp = _command(sub, "lsp", "start the language server", selection=False)
    lsp.add_argument("--tcp", action="store_true", help="listen on TCP (127.0.0.1)")
    lsp.add_argument("--port", type=int, default=2087, help="with --tcp: the port "
                     "(default 2087)")
    lsp.add_argument("--headless", nargs="*", type=Path, default=None, metavar="PATH",
                     help="open every template under PATH with an in-process client, "
                          "print the diagnostics like check, and exit like check")
    lsp.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text",
                     help="with --headless: the output format, as for check")
    lsp.add_argument("--log-file", type=Path, metavar="FILE",
                     help="write the server's log to FILE")
    for sp in (r, v, c, b, cap, prof, w, lsp):
        sp.add_argument("--no-exec", action="store_true",
                        help="untrusted: run no workspace code (generators, template_class "
                             "helpers, nvcc, benchmarks); the Jinja tier only")
        add_color(sp)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an internal error, print the traceback")
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    from cutlens.cli.bench import run_bench

    if args.no_exec:
        raise UsageError("a benchmark runs workspace code (nvcc with the project's flags, the "
                         "compiled kernels, the [bench] reference): --no-exec refuses it")
    return run_bench(args)


def cmd_profile(args: argparse.Namespace) -> int:
    from cutlens.cli.profile import run_profile

    if args.no_exec:
        raise UsageError("a profile runs workspace code (nvcc with the project's flags, the "
                         "compiled kernel): --no-exec refuses it")
    return run_profile(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from cutlens.cli.watch import run_watch

    return run_watch(default_paths(args.paths), nvcc=not args.no_nvcc,
                     selection=selection(args), color=use_color(args.color, sys.stdout))


def cmd_lsp(args: argparse.Namespace) -> int:
    if args.headless is not None:
        from cutlens.lsp.headless import run_headless

        return run_headless(default_paths(args.headless), fmt=args.format,
                            no_exec=args.no_exec, color=use_color(args.color, sys.stdout))
    from cutlens.lsp.io import start

    start(tcp=args.tcp, port=args.port, log_file=args.log_file, no_exec=args.no_exec)
    return EXIT_OK


#: The reader of the output went away (``cutlens variants T | head``), as for other Unix
#: tools killed by SIGPIPE: 128 + 13.
EXIT_BROKEN_PIPE = 141

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "render": cmd_render, "variants": cmd_variants, "check": cmd_check, "bench": cmd_bench,
    "capture": run_capture, "profile": cmd_profile, "watch": cmd_watch, "lsp": cmd_lsp}


def _quiet_stdout() -> None:
    """The reader of stdout went away (``| head``): point stdout at /dev/null so that
    Python's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd is None:  # `cutlens` alone: what it does and how to start
        sys.stdout.write(OVERVIEW)
        return EXIT_USAGE
    untrusted = getattr(args, "no_exec", False)
    err_color = use_color(getattr(args, "color", "auto"), sys.stderr)
    try:
        with trust.exec_policy(False) if untrusted else contextlib.nullcontext():
            status = COMMANDS[args.cmd](args)
            if not sys.stdout.closed:  # (the language server closes it when it ends)
                sys.stdout.flush()  # a closed pipe shows here, not at exit
            return status
    except ConfigProblems as e:
        sys.stderr.write(formats.text(e.problems, Path.cwd(), color=err_color))
        sys.stderr.write(f"cutlens {args.cmd}: {e}: fix the config first\n")
        return EXIT_USAGE
    except (UsageError, ConfigError) as e:
        sys.stderr.write(f"cutlens {args.cmd}: {e}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        sys.stderr.write("cutlens: interrupted\n")
        return 130
    except Exception as e:  # a cutlens bug: exit 2, never 1 ("problems found")
        return internal_error(args.cmd, e, debug=args.debug)


def crash_log_dir() -> Path:
    """Where internal errors are logged: ``$CUTLENS_LOG_DIR``, else
    ``$XDG_STATE_HOME/cutlens`` (``~/.local/state/cutlens``)."""
    if os.environ.get("CUTLENS_LOG_DIR"):
        return Path(os.environ["CUTLENS_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cutlens"


def internal_error(cmd: str, e: BaseException, debug: bool = False) -> int:
    """Report a cutlens bug: one line naming the log file with the traceback (or the
    traceback itself with ``--debug``); exit 2."""
    import time
    import traceback

    text = "".join(traceback.format_exception(e))
    if debug:
        sys.stderr.write(text)
    where = ""
    try:
        folder = crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        log.write_text(f"cutlens {__version__} {cmd}: {' '.join(sys.argv)}\n{text}")
        where = f" (traceback in {log})"
    except OSError:
        where = "" if debug else " (run again with --debug for the traceback)"
    first = str(e).splitlines()[0] if str(e) else ""
    sys.stderr.write(f"cutlens {cmd}: internal error: {type(e).__name__}"
                     f"{': ' + first if first else ''}{where}; please report it\n")
    return EXIT_INTERNAL
