"""The nvcc flag policy: which flags a template's own settings may pass.

Flags that run programs or write files (:data:`REFUSED`, checked ``-Xcompiler``/``-Xptxas``/
``-Xcudafe`` pieces) are refused unless the project config (the trust anchor for flags)
allows them with ``allow_unsafe_flags = true`` or a list of flag names. nvcc runs its
sub-commands through ``/bin/sh`` inside double quotes, so ``$`` and a backtick in any argument
would run commands: such arguments are refused everywhere (:func:`shell_unsafe`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_RUNS = "runs a program"
_WRITES = "writes files outside the build directory"
#: nvcc options a template's front matter may not pass (canonical name: aliases, reason).
REFUSED: dict[str, tuple[tuple[str, ...], str]] = {
    "-ccbin": (("--compiler-bindir",), "runs the named program as the host compiler"),
    "--run": (("-run", "--run-args", "-run-args"), "runs the compiled program"),
    "--archiver-binary": (("-arbin",), "runs the named program as the archiver"),
    "--options-file": (("-optf",), "reads more options from a file"),
    "-Xlinker": (("--linker-options",), "passes options to the host linker (plugins, "
                                        "output files)"),
    "-Xnvlink": (("--nvlink-options",), "passes options to nvlink"),
    "-Xarchive": (("--archive-options",), "passes options to the archiver"),
    "-Xfatbin": (("--fatbin-options",), "passes options to fatbinary"),
    "-Xcicc": (("--cicc-options",), "passes options to cicc"),
    "-o": (("--output-file",), _WRITES),
    "-odir": (("--output-directory",), _WRITES),
    "-keep": (("--keep",), "keeps intermediate files (in the working directory)"),
    "-keep-dir": (("--keep-dir",), _WRITES),
    "-save-temps": (("--save-temps",), "keeps intermediate files (in the working directory)"),
    "-MF": (("--dependency-output",), _WRITES),
    "-M": (("--generate-dependencies",), "writes dependency output"),
    "-MM": (("--generate-nonsystem-dependencies",), "writes dependency output"),
    "-MD": (("--generate-dependencies-with-compile",), "writes a dependency file"),
    "-MMD": (("--generate-nonsystem-dependencies-with-compile",), "writes a dependency file"),
    "-MT": (("--dependency-target-name",), "names dependency output"),
    "--host-linker-script": (("-hls",), _WRITES),
}
#: Options whose value is a comma-separated list of another tool's options, each checked.
PASS_THROUGH = {"-Xcompiler": ("--compiler-options",), "-Xptxas": ("--ptxas-options",),
                "-Xcudafe": ("--cudafe-options",)}

_CANON = {n.lstrip("-"): canon for canon, (aliases, _) in REFUSED.items()
          for n in (canon, *aliases)}
_CANON.update({n.lstrip("-"): canon for canon, aliases in PASS_THROUGH.items()
               for n in (canon, *aliases)})

#: Host compiler options a template may pass through ``-Xcompiler`` (warnings, optimisation,
#: debug info, defines, machine and code-generation options). Not: ``-Wl,``/``-Wa,``/``-Wp,``
#: (options for other tools), ``-B``/``-wrapper``/``-specs``/``-fplugin``/
#: ``-fmodule-mapper`` (run programs), ``-o``/``-M*``/``-fdump-*``/``-save-temps`` (write
#: files), ``@file``.
_HOST_OK = re.compile(r"""^(?:
    -W(?![lap],)[\w=+.-]*
  | -O(?:[0-3sgz]|fast)?
  | -g[\w=.-]*
  | -[DU][\w=.+:/-]+
  | -m[\w=.+-]+
  | -f(?!plugin|dump|profile|save|stack-usage|callgraph|opt-info|auto-profile|module
        |use-ld|diagnostics|time-trace|crash|record|coverage|test-coverage|lto
        |debug-prefix|file-prefix|macro-prefix|ld-path|instrument)[\w=.+-]+
  | -pthread | -w | -pedantic(?:-errors)? | -std=[\w+]+ | -ansi
)$""", re.VERBOSE)
_PTXAS_REFUSED = re.compile(r"^(?:-o|--output-file|--?options-file|-optf)(?:=.*)?$|^@")
_CUDAFE_OK = re.compile(r"^--?(?:diag[-_]\w+(?:=[\w,-]+)?|(?:no_)?display_error_number)$")
_SHELL_RE = re.compile(r"[$`\x00\n\r]")


def shell_unsafe(arg: str) -> bool:
    """True when nvcc's ``/bin/sh`` would expand something in ``arg`` (``$``, backtick)."""
    return bool(_SHELL_RE.search(arg))


def shell_unsafe_args(args: Iterable[str]) -> list[str]:
    """The arguments of a command line that nvcc's shell would expand."""
    return [a for a in args if shell_unsafe(a)]


def canonical(flag: str) -> str:
    """``--compiler-bindir=x`` -> ``-ccbin``; an unknown flag is returned without its value."""
    name = flag.split("=", 1)[0]
    return _CANON.get(name.lstrip("-"), name)


@dataclass
class FlagProblem:
    """A refused flag: ``count`` list elements from ``index`` (the flag and its value)."""

    index: int
    count: int
    text: str
    name: str
    reason: str

    @property
    def message(self) -> str:
        if self.name == "shell":
            return (f"nvcc argument {self.text!r} is refused: nvcc runs its tools through "
                    "/bin/sh, which would expand '$' and '`' (run commands)")
        return (f"nvcc flag {self.text!r} is not allowed in front matter: it {self.reason}. "
                "Allow it in the project config (cutlens.toml / [tool.cutlens]) with "
                f"allow_unsafe_flags = [\"{self.name}\"] (or true)")


def _pieces_problem(name: str, value: str) -> str | None:
    for piece in (p for p in value.split(",") if p):
        if name == "-Xcompiler" and not _HOST_OK.match(piece):
            return f"passes {piece!r} to the host compiler (it may run programs or write files)"
        if name == "-Xptxas" and _PTXAS_REFUSED.match(piece):
            return f"passes {piece!r} to ptxas (it writes files)"
        if name == "-Xcudafe" and not _CUDAFE_OK.match(piece):
            return f"passes {piece!r} to cudafe++"
    return None


def unsafe_flags(flags: list[str]) -> list[FlagProblem]:
    """Every flag of ``flags`` that runs a program or writes files, or that nvcc's shell
    would expand."""
    out: list[FlagProblem] = []
    i = 0
    while i < len(flags):
        flag = flags[i]
        if shell_unsafe(flag):
            out.append(FlagProblem(i, 1, flag, "shell", "holds '$' or '`', which nvcc's "
                                   "shell would expand (run commands)"))
            i += 1
            continue
        name = canonical(flag) if flag.startswith("-") else ""
        attached = "=" in flag
        if name in REFUSED:
            takes_value = name not in ("-keep", "-save-temps", "-M", "-MM", "-MD", "-MMD")
            n = 1 if attached or not takes_value else min(2, len(flags) - i)
            out.append(FlagProblem(i, n, flag, name, REFUSED[name][1]))
            i += n
            continue
        if name in PASS_THROUGH:
            value = flag.split("=", 1)[1] if attached else (
                flags[i + 1] if i + 1 < len(flags) else "")
            n = 1 if attached else min(2, len(flags) - i)
            reason = (_pieces_problem(name, value) or
                      ("holds '$' or '`'" if shell_unsafe(value) else None))
            if reason is not None:
                out.append(FlagProblem(i, n, flag, name, reason))
            i += n
            continue
        if flag.startswith("@"):
            out.append(FlagProblem(i, 1, flag, "@file", "reads more options from a file"))
        i += 1
    return out


def flag_allowed(problem: FlagProblem, allow: Any) -> bool:
    """True when the project config's ``allow_unsafe_flags`` covers ``problem``."""
    if problem.name == "shell":
        return False  # never: '$' would run a command through nvcc's shell
    if allow is True:
        return True
    if isinstance(allow, list):
        return problem.name in {canonical(str(a)) for a in allow}
    return False




@dataclass
class RefusedArg:
    """A refused argument of a ``[compile]`` key: the text to point at, and why."""

    key: str
    text: str
    message: str


def check_compile_table(table: dict[str, Any], allow: Any) -> tuple[dict[str, Any],
                        list[RefusedArg]]:
    """``table`` (a template's own ``[compile]``) without the arguments the policy refuses,
    and what was refused. Values of the wrong type are left for the schema to report."""
    clean = dict(table)
    refused: list[RefusedArg] = []
    for key in ("extra_flags", "defines", "include_dirs", "system_include_dirs",
                "cutlass_defines", "diag_suppress", "arch", "std"):
        value = table.get(key)
        if isinstance(value, str):
            if key in ("arch", "std") and shell_unsafe(value):
                refused.append(RefusedArg(key, value, FlagProblem(0, 1, value, "shell",
                                                                  "").message))
                clean.pop(key)
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            continue
        if key == "extra_flags":
            problems = [p for p in unsafe_flags(value) if not flag_allowed(p, allow)]
        else:
            problems = [FlagProblem(i, 1, v, "shell", "") for i, v in enumerate(value)
                        if shell_unsafe(v)]
        drop: set[int] = set()
        for p in problems:
            refused.append(RefusedArg(key, p.text, p.message))
            drop.update(range(p.index, p.index + p.count))
        if drop:
            clean[key] = [v for i, v in enumerate(value) if i not in drop]
    return clean, refused
