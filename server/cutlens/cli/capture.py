"""``cutlens capture [-o FILE] [--timeout S] -- python train.py ARGS``: run a program, record
the matmul-family ops it runs (``torch.compile``d or eager, CPU or GPU), write them as a
samples file (default ``.cutlens/captured.toml`` of the project)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cutlens.capture.run import CaptureFailed, capture
from cutlens.cli.common import EXIT_OK, EXIT_PROBLEMS, project_config, relative
from cutlens.errors import UsageError
from cutlens.template.captured import DEFAULT_FILE

DEFAULT_TIMEOUT_S = 1800.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               epilog: str) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = sub.add_parser(
        "capture", help="run a program and record the GEMMs it runs as samples",
        description="Run a PyTorch program (torch.compile or eager, GPU or CPU) and write "
                    "every distinct matmul-family op it ran (mm, addmm, bmm, baddbmm, "
                    "_scaled_mm, _int_mm; linear layers become them) as a samples file: one "
                    "sample per op, named from its module, weighted by its share of the "
                    "GEMM time (calls, without a GPU).",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help=f"the samples file (default: {DEFAULT_FILE} of the project)")
    c.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"stop the program after S seconds (default {DEFAULT_TIMEOUT_S:g})")
    c.add_argument("-q", "--quiet", action="store_true",
                   help="do not echo the program's output")
    c.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS",
                   help="the program, after --: python train.py ARGS")
    return c


def run_capture(args: argparse.Namespace) -> int:
    """Exit 0 with the file written; 1 when the program failed, captured nothing or ran
    past the limit (nothing written); 2 for usage errors."""
    if args.no_exec:
        raise UsageError("capture runs the program: --no-exec refuses it")
    command = list(args.program)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no program: cutlens capture [-o FILE] -- python train.py ARGS")
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be positive")
    output = args.output
    if output is None:
        output = project_config(Path.cwd()).root / DEFAULT_FILE
    try:
        done = capture(command, output, args.timeout,
                       echo=None if args.quiet else sys.stderr)
    except CaptureFailed as e:
        sys.stderr.write(f"cutlens capture: {e}\n")
        return EXIT_PROBLEMS
    by = done.info["weight_by"]
    sys.stdout.write(f"{len(done.samples)} sample(s) written to {relative(output)} "
                     f"(weighted by {by}):\n")
    for s in done.samples:
        what = f"{s.time_ms:.3f} ms" if s.time_ms is not None else f"{s.count} calls"
        shapes = " ".join(f"{n}={_dims(t)}" for n, t in s.nodes.items() if n != "out")
        sys.stdout.write(f"  {s.name:<16} {s.op:<8} {s.weight:6.1%}  {what:>12}  {shapes}\n")
    return EXIT_OK


def _dims(table: dict[str, Any]) -> str:
    return "x".join(str(d) for d in table.get("size", [])) + f":{table.get('dtype', '')}"
