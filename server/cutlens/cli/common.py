"""What every command shares: exit codes, usage errors, the selection options, loading a
project's config (a config with problems stops a command, exit 2) and a template."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from cutlens import config as config_mod
from cutlens import trust
from cutlens.diagnostics import Diagnostic
from cutlens.errors import UsageError
from cutlens.template.discovery import load_template
from cutlens.template.model import Template
from cutlens.template.selection import Selection

#: Exit codes, the same for every command: 0 all good; 1 problems found (render, compile,
#: verification, regression); 2 usage or config, or an internal error (a cutlens bug).
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 2




class ConfigProblems(UsageError):
    """The project config has problems: each printed on its line, exit 2."""

    def __init__(self, problems: list[Diagnostic]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the project config")
        self.problems = problems


def add_selection(p: argparse.ArgumentParser, what: str, default: str = "all") -> None:
    """``--samples``/``--variants`` (and ``--sample``/``--variant`` for one name), the same
    syntax on every command."""
    g = p.add_argument_group("selection", f"which samples × variants to {what} (syntax and "
                                          "examples below)")
    g.add_argument("--samples", nargs="+", action="extend", default=[], metavar="SPEC",
                   help=f"samples: all, first, first:K, an index, a name or a glob, several "
                        f"allowed (default: {default})")
    g.add_argument("--sample", dest="samples", action="append", metavar="NAME",
                   help="one sample, by name or index (repeatable; adds to --samples)")
    g.add_argument("--variants", nargs="+", action="extend", default=[], metavar="SPEC",
                   help=f"variants: all, first, first:K, an index [N] as `cutlens variants` "
                        f"lists it, a name, a slug or a glob such as '*pingpong*', several "
                        f"allowed (default: {default})")
    g.add_argument("--variant", dest="variants", action="append", metavar="NAME",
                   help="one variant, by index, name or slug (repeatable; adds to --variants)")
    g.add_argument("--case", dest="variants", action="append", metavar="NAME",
                   help="one case of a render driver (the same as --variant)")


COLORS = ("auto", "always", "never")


def add_color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", choices=COLORS, default="auto",
                   help="colour the output: auto (on a terminal, unless NO_COLOR is set), "
                        "always or never (default: auto)")


def use_color(choice: str | None, stream: TextIO) -> bool:
    """Whether to colour ``stream``: ``always``/``never`` as said; ``auto``: on a terminal,
    unless ``NO_COLOR`` is set (https://no-color.org) or ``TERM=dumb``; ``FORCE_COLOR``
    forces it."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def console(stream: TextIO, color: bool) -> Any:
    """A rich console on ``stream``: coloured or not as decided; off a terminal as wide as
    what it prints (a table is never squeezed to 80 columns for a file or a pipe)."""
    from rich.console import Console

    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(file=stream, force_terminal=True if color else (None if tty else False),
                   no_color=not color,
                   color_system="auto" if color else None, highlight=False,
                   width=None if tty else 10_000, soft_wrap=not tty)


def selection(args: argparse.Namespace) -> Selection:
    return Selection(list(args.samples or []), list(args.variants or []))


def existing(paths: list[Path]) -> list[Path]:
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p}: no such file or directory")
    return paths


def default_paths(paths: list[Path]) -> list[Path]:
    """The paths given, else the project around the current directory."""
    return existing(paths) if paths else [config_mod.find_root(Path.cwd())]


def project_config(path: Path) -> config_mod.ProjectConfig:
    """The config of the project ``path`` is in; :class:`ConfigProblems` when it has any."""
    existing([path])
    cfg = config_mod.load(config_mod.root_for(path))
    if cfg.problems:
        raise ConfigProblems(cfg.problems)
    return cfg


def load_one(path: Path) -> Template:
    """The template at ``path``, with a note on stderr of what ``--no-exec`` skipped."""
    t = load_template(path, project_config(path))
    if t.unused_python:
        raise UsageError(f"{path}: no render driver of the project uses a template of this "
                         "file (drivers are declared as [[driver]] in cutlens.toml)")
    if not trust.exec_allowed() and t.python_uses():
        sys.stderr.write(f"{t.path.name}: --no-exec: not run: "
                         f"{', '.join(t.python_uses())} (workspace Python)\n")
    return t


def relative(path: Path | str, base: Path | None = None) -> str:
    """``path`` relative to the current folder (``base``) when it is inside it, as ``check``
    prints paths; else as it is."""
    base = base or Path.cwd()
    p = Path(path)
    try:
        return str(p.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)


def pairs_or_usage(t: Template, sel: Selection) -> list[Any]:
    """The selected pairs of ``t``; a selection that matches nothing is a usage error."""
    missing = sel.unmatched(t)
    if missing:
        have_s = ", ".join(s.name for s in t.sample_list)
        have_v = ", ".join(f"[{v.index}] {v.name}" for v in t.variants(t.sample_list[0]))
        if t.variants_unknown:
            raise UsageError(t.variants_unknown)
        raise UsageError(f"{t.path.name}: nothing matches {', '.join(map(repr, missing))} "
                         f"(samples: {have_s}; variants: {have_v or 'none'})")
    return sel.pairs(t)
