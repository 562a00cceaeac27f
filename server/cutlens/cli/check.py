"""``cutlens check PATH...``: render and compile every template under the paths and report
what is wrong, like a compiler (text, JSON, SARIF or GitHub annotations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cutlens.check import formats
from cutlens.check.run import check_paths
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    ConfigProblems,
    default_paths,
    selection,
    use_color,
)
from cutlens.errors import UsageError


def cmd_check(args: argparse.Namespace) -> int:
    paths = default_paths(args.paths)
    base = Path.cwd()
    printed: set[tuple[Any, ...]] = set()
    color = use_color(args.color, sys.stdout)
    untrusted = False

    def stream(diags: list[Any]) -> None:
        """Text format: print each problem as soon as a tier finds it, once (the
        ``--no-exec`` advice once, not per template)."""
        nonlocal untrusted
        diags, seen = formats.untrusted_once(diags)
        untrusted |= seen
        new = [d for d in diags if d.key() not in printed]
        printed.update(d.key() for d in new)
        sys.stdout.write(formats.text(new, base, color))
        sys.stdout.flush()

    report = check_paths(paths, selection(args), jobs=args.jobs,
                         nvcc=not args.no_nvcc, mode=args.mode,
                         progress=args.format == "text" and sys.stderr.isatty(),
                         on_diagnostics=stream if args.format == "text" else None)
    if report.config_problems:
        raise ConfigProblems(report.config_problems)
    if not report.templates:
        raise UsageError(f"no template to check under {', '.join(map(str, paths))}" + (
            f" ({', '.join(p.name for p in report.skipped)}: no render driver uses a template "
            "of it)" if report.skipped else ": a template is a file matching the config's "
            "globs with cutlens front matter, a file a [template.\"path\"] table names, or "
            "one a [[driver]] renders"))
    if report.unmatched:
        raise UsageError(f"nothing matches {', '.join(map(repr, report.unmatched))} in any "
                         "template")
    if args.format == "text":
        stream(report.diagnostics)
        s = formats.summary(report.diagnostics, len(report.templates))
        if untrusted:
            sys.stderr.write(f"cutlens check: {formats.UNTRUSTED_ADVICE}\n")
        sys.stderr.write(f"cutlens check: {s['templates']} template(s), {s['errors']} "
                         f"error(s), {s['warnings']} warning(s)\n")
    else:
        sys.stdout.write(formats.render(args.format, report.diagnostics,
                                        len(report.templates), base))
    warnings = sum(1 for d in report.diagnostics if d.severity == "warning")
    if args.warnings_as_errors and warnings and not report.errors:
        sys.stderr.write(f"cutlens check: {warnings} warning(s), and --warnings-as-errors\n")
    failed = report.errors or (args.warnings_as_errors and warnings)
    return EXIT_PROBLEMS if failed else EXIT_OK
