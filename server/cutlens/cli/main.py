"""The ``cutlens`` command line: render, variants, check, bench, watch, lsp."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cutlens import __version__, trust
from cutlens.config import model as config_mod
from cutlens.config.model import ConfigError

if TYPE_CHECKING:
    from cutlens.template.model import Template

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or config: exit 2 with a one-line message."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cutlens", description="Render, check and benchmark "
                                "Jinja-templated CUDA/CUTLASS kernels.")
    p.add_argument("--version", action="version", version=f"cutlens {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("render", help="write the rendered CUDA of a template")
    r.add_argument("template", type=Path)
    r.add_argument("--sample", help="sample name (default: the first)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--variant", help="variant index or name (default: the first)")
    g.add_argument("--all", action="store_true", help="every sample × variant")
    r.add_argument("-o", "--output", type=Path, help="output directory (default: stdout)")
    r.add_argument("--line-directives", action="store_true",
                   help="emit #line directives pointing at the template")

    v = sub.add_parser("variants", help="list a template's samples and variants")
    v.add_argument("template", type=Path)
    v.add_argument("--format", choices=("text", "json"), default="text")

    c = sub.add_parser("check", help="render and compile templates; report diagnostics")
    c.add_argument("paths", nargs="*", type=Path)
    c.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text")
    c.add_argument("--jobs", type=int, default=None)
    c.add_argument("--variants", choices=("all", "first"), default="all")
    c.add_argument("--samples", choices=("all", "first"), default="all")
    c.add_argument("--no-nvcc", action="store_true", help="the Jinja tier only")
    c.add_argument("--mode", choices=("quick", "full"), default="full",
                   help="nvcc pass: quick (device syntax only) or full (default)")

    b = sub.add_parser("bench", help="benchmark a template's variants on the GPU")
    b.add_argument("template", type=Path)
    b.add_argument("--sample", action="append", help="sample name (repeatable; default all)")
    b.add_argument("--variants", nargs="+", default=["all"],
                   help="all | K (the first K) | NAME or INDEX...")
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


def _untrusted_note(t: Template) -> None:
    """``--no-exec``: say on stderr what a template could not do (workspace Python)."""
    if not trust.exec_allowed() and trust.python_uses(t):
        sys.stderr.write(f"{t.path.name}: --no-exec: not run: "
                         f"{', '.join(trust.python_uses(t))} (workspace Python)\n")


def _config_for(path: Path) -> config_mod.ProjectConfig:
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    return config_mod.load(config_mod.find_root(path))


def cmd_render(args: argparse.Namespace) -> int:
    from cutlens.render.renderer import Renderer, RenderFailure
    from cutlens.template.discovery import load_template

    cfg = _config_for(args.template)
    t = load_template(args.template, cfg)
    _untrusted_note(t)
    errors = [d for d in t.errors if d.severity == "error"]
    if t.broken:
        from cutlens.check import formats
        sys.stderr.write(formats.text(errors))
        return EXIT_ERRORS
    try:
        if args.all:
            pairs = t.pairs()
        else:
            s = t.sample(args.sample)
            pairs = [(s, t.variant(s, args.variant))]
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    renderer = Renderer()
    status = EXIT_OK
    for s, v in pairs:
        r = renderer.render(t, s, v)
        if isinstance(r, RenderFailure):
            from cutlens.check import formats
            sys.stderr.write(formats.text(r.diagnostics))
            status = EXIT_ERRORS
            continue
        body = r.with_line_directives() if args.line_directives else r.text
        text = r.header() + body
        if args.output is None:
            sys.stdout.write(text)
            for name, comp in r.companions.items():
                sys.stdout.write(f"// ---- companion {name} ----\n{comp.text}")
            continue
        out_dir = args.output / f"{s.name}__{v.slug}" if args.all else args.output
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = t.path.name.split(".")[0]
        (out_dir / f"{stem}.cu").write_text(text)
        for name, comp in r.companions.items():
            (out_dir / name).write_text(comp.text)
        print(out_dir / f"{stem}.cu")
    return status


def cmd_variants(args: argparse.Namespace) -> int:
    from cutlens.check import formats
    from cutlens.template.discovery import load_template

    t = load_template(args.template, _config_for(args.template))
    _untrusted_note(t)
    sys.stderr.write(formats.text(t.errors))
    samples = t.samples or []
    if args.format == "json":
        doc = {"template": str(t.path), "samples": [
            {"name": s.name, "hints": s.hints,
             "nodes": {k: (n.describe() if n else None) for k, n in s.nodes.items()},
             "variants": [v.to_json() for v in t.variants(s)]} for s in samples]}
        if not samples:
            doc["variants"] = [v.to_json() for v in t.variants(None)]
        print(json.dumps(doc, indent=2))
        return EXIT_ERRORS if t.broken else EXIT_OK
    print(f"{t.path.name}: {len(samples)} sample(s)")
    for s in samples:
        hints = f"  hints {s.hints}" if s.hints else ""
        print(f"  sample {s.name}{hints}")
        for name, n in s.nodes.items():
            print(f"    {name}: {n.describe() if n else 'None (optional input absent)'}")
    shown: set[str] = set()
    for s in samples or [None]:
        vs = t.variants(s)
        key = "|".join(v.name for v in vs)
        if key in shown:
            continue
        shown.add(key)
        scope = f" for sample {s.name}" if s is not None and len(samples) > 1 else ""
        print(f"{len(vs)} variant(s){scope}")
        for v in vs:
            print(f"  [{v.index}] {v.name}  {json.dumps(v.values)}")
    return EXIT_ERRORS if t.broken else EXIT_OK


def _default_paths(paths: list[Path]) -> list[Path]:
    if paths:
        return paths
    return [config_mod.find_root(Path.cwd())]


def cmd_check(args: argparse.Namespace) -> int:
    from cutlens.check import formats
    from cutlens.check.jinja_tier import Selection, check_paths

    paths = _default_paths(args.paths)
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p}: no such file or directory")
    base = Path.cwd()
    printed: set[tuple] = set()

    def stream(diags: list) -> None:
        """Text format: print each problem as soon as a tier finds it, once."""
        new = [d for d in diags if d.key() not in printed]
        printed.update(d.key() for d in new)
        sys.stdout.write(formats.text(new, base))
        sys.stdout.flush()

    report = check_paths(paths, Selection(args.samples, args.variants), jobs=args.jobs,
                         nvcc=not args.no_nvcc, mode=args.mode,
                         progress=args.format == "text" and sys.stderr.isatty(),
                         on_diagnostics=stream if args.format == "text" else None)
    if args.format == "text":
        stream(report.diagnostics)
        s = formats.summary(report.diagnostics, len(report.templates))
        sys.stderr.write(f"cutlens check: {s['templates']} template(s), {s['errors']} "
                         f"error(s), {s['warnings']} warning(s)\n")
    else:
        sys.stdout.write(formats.render(args.format, report.diagnostics,
                                        len(report.templates), base))
    return EXIT_ERRORS if report.errors else EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from cutlens.cli.bench import run_bench

    if args.no_exec:
        raise UsageError("a benchmark runs workspace code (nvcc with the project's flags, the "
                         "compiled kernels, the [bench] reference): --no-exec refuses it")
    return run_bench(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from cutlens.cli.watch import run_watch

    return run_watch(_default_paths(args.paths), nvcc=not args.no_nvcc)


def cmd_lsp(args: argparse.Namespace) -> int:
    if args.headless is not None:
        from cutlens.lsp.headless import run_headless

        return run_headless(_default_paths(args.headless), fmt=args.format,
                            no_exec=args.no_exec)
    from cutlens.lsp.server import start

    start(tcp=args.tcp, port=args.port, log_file=args.log_file, no_exec=args.no_exec)
    return EXIT_OK


COMMANDS = {"render": cmd_render, "variants": cmd_variants, "check": cmd_check,
            "bench": cmd_bench, "watch": cmd_watch, "lsp": cmd_lsp}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    untrusted = getattr(args, "no_exec", False)
    try:
        with trust.exec_policy(False) if untrusted else contextlib.nullcontext():
            return COMMANDS[args.cmd](args)
    except (UsageError, ConfigError) as e:
        sys.stderr.write(f"cutlens {args.cmd}: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("cutlens: interrupted\n")
        return 130
