"""Parse everything nvcc prints into :class:`CompilerMessage` and :class:`KernelResources`.

Formats handled (nvcc 13.0, see ``tests/fixtures/nvcc``), one module per family:

* EDG front end (cudafe++ and cicc, :mod:`cutlens.nvcc.edg`): messages with their source
  excerpt, caret, notes and instantiation chain.
* gcc/clang (host compiler, preprocessor, assembler, linker, :mod:`cutlens.nvcc.gcc`):
  ``file:line[:col]: error: ...`` with its context lines and ``note:`` lines.
* ptxas, nvlink, fatbinary and nvcc's own ``nvcc fatal   : ...`` (:mod:`cutlens.nvcc.ptxas`),
  and ptxas's resource usage.
* Anything else: one ``tool="other"`` message per run of unrecognized lines.

Locations are kept exactly as printed (no mapping to templates). Instantiation chains are in
the order printed: the innermost context first (the instantiation that contains the error),
the outermost (the line of the translation unit that started it) last. Notes attach to the
message before them. Identical messages (gcc's preprocessor runs twice; cicc runs once per
architecture) are reported once.
"""

from __future__ import annotations

import re
from typing import Any

from cutlens.nvcc import edg, gcc, ptxas
from cutlens.nvcc.messages import (
    MAX_LINE,
    CompilerMessage,
    Frame,
    KernelResources,
    Severity,
    Tool,
)
from cutlens.nvcc.ptxas import demangle

__all__ = ["MAX_LINE", "CompilerMessage", "Frame", "KernelResources", "Severity", "Tool",
           "demangle", "parse", "parse_resources"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SKIP = re.compile(
    r"^(?:\d+ (?:catastrophic )?errors? detected in (?:the compilation of .*|this compilation\.)"
    r"|Remark: The warnings can be suppressed with .*"
    r"|[Cc]ompilation terminated\."
    r"|Compilation aborted for .*"
    r"|\S+: Assembler messages:)$")

_STARTS = (edg.EDG, edg.EDG_NOFILE, gcc.GCC, gcc.GCC_PROG, gcc.CONTEXT, gcc.INCLUDED,
           gcc.REQUIRED, ptxas.PTXAS_LOC, ptxas.TOOL, _SKIP)


def _starts_message(line: str) -> bool:
    """Whether ``line`` opens a new message of any tool (or is a summary line)."""
    if line[:1].isspace():
        return bool(gcc.INCLUDED.match(line))
    return any(p.match(line) for p in _STARTS)


def _lines(output: str) -> list[str]:
    return _ANSI.sub("", output).replace("\r\n", "\n").split("\n")


def parse(output: str, demangle_names: bool = True) -> list[CompilerMessage]:
    """Every diagnostic in ``output`` (nvcc's merged stdout and stderr), in order.

    ``ptxas info`` lines are resource usage (:func:`parse_resources`), not messages; the
    summary lines (``N errors detected``, ``Remark: The warnings can be suppressed``,
    ``compilation terminated.``) are dropped.
    """
    lines = _lines(output)
    out: list[CompilerMessage] = []
    last: CompilerMessage | None = None  # for notes
    ctx = gcc.Context()  # gcc context lines before the diagnostic they belong to
    other: list[str] = []
    in_res_block = False

    def flush_other() -> None:
        nonlocal last
        if not other:
            return
        text = "\n".join(other)
        low = text.lower()
        sev: Severity = "warning" if "warning" in low and "error" not in low else "error"
        msg = CompilerMessage(tool="other", severity=sev, file=None, line=None, column=None,
                              message=text.strip(), code=None, chain=[], raw=text, level=sev)
        out.append(msg)
        last = msg
        other.clear()

    def add(msg: CompilerMessage) -> None:
        nonlocal last
        flush_other()
        if msg.severity == "info" and msg.level == "note" and last is not None:
            edg.adopt_chain(last, msg)
            last.notes.append(msg)
            last.raw += "\n" + msg.raw
            return
        out.append(msg)
        last = msg

    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln.strip():
            flush_other()
            i += 1
            continue
        if in_res_block and ptxas.RES_FRAME.match(ln):
            i += 1
            continue
        in_res_block = False
        if _SKIP.match(ln):
            i += 1
            continue
        m = edg.EDG.match(ln)
        nf = None if m else edg.EDG_NOFILE.match(ln)
        if m or nf:
            msg, i = edg.parse_edg(lines, i, m, nf, _starts_message)
            add(msg)
            continue
        m = ptxas.PTXAS_LOC.match(ln) or ptxas.TOOL.match(ln)
        if m:
            i += 1
            if (m.groupdict().get("tool") or "ptxas") == "ptxas" and m["level"] == "info" \
                    and not ptxas.PERF_LOSS.match(m["msg"]):
                in_res_block = True  # resource lines, and the indented lines after them
                continue
            tm = ptxas.tool_message(m, ln, out)
            if tm is not None:
                add(tm)
            continue
        if ctx.take(ln):
            flush_other()
            i += 1
            continue
        m = gcc.GCC.match(ln) or gcc.GCC_PROG.match(ln)
        if m:
            i += 1
            excerpt: list[str] = []
            while i < len(lines) and gcc.EXCERPT.match(lines[i]):
                excerpt.append(lines[i])
                i += 1
            add(ctx.diagnostic(m, excerpt))
            continue
        m = gcc.LD.match(ln)
        if m:
            level: Severity = "warning" if m["msg"].startswith("warning:") else "error"
            add(CompilerMessage(tool="gcc", severity=level, file=None, line=None, column=None,
                                message=m["msg"].strip(), code=None, chain=[], raw=ln,
                                level=level))
            i += 1
            continue
        other.append(ln)
        i += 1
    flush_other()
    leftover = ctx.leftover()
    if leftover is not None:
        out.append(leftover)

    unique: dict[tuple[Any, ...], CompilerMessage] = {}
    for msg in out:
        unique.setdefault(msg.key(), msg)
    result = list(unique.values())
    if demangle_names:
        names = demangle(m.kernel for m in result if m.kernel)
        for msg in result:
            if msg.kernel:
                msg.kernel = names[msg.kernel]
    return result


def parse_resources(output: str, demangle_names: bool = True) -> list[KernelResources]:
    """Per-entry-function resource usage from ``ptxas info`` lines (``-Xptxas -v``)."""
    return ptxas.parse_resources(_ANSI.sub("", output).splitlines(), demangle_names)
