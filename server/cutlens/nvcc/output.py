"""Parse everything nvcc prints into :class:`CompilerMessage` and :class:`KernelResources`.

Formats handled (nvcc 13.0, see ``tests/fixtures/nvcc``):

* EDG front end (cudafe++ and cicc): ``file(LINE): error|warning|remark|note [#N-D]: text``,
  continuation lines, the source line and caret, then the instantiation chain, either
  ``detected during instantiation of "..." at line N [of FILE]`` or a ``detected during:``
  block with one frame per line and ``[ K instantiation contexts not shown ]``. ``note``
  messages attach to the message before them.
* gcc/clang (host compiler, preprocessor, assembler, linker): ``file:line[:col]: error: ...``
  with its context lines (``In function``, ``In instantiation of``, ``required from``,
  ``In file included from``), source excerpts and ``note:`` lines.
* ptxas (``ptxas error   : ...``, ``ptxas /tmp/x.ptx, line N; error   : ...``), nvlink,
  fatbinary and nvcc's own ``nvcc fatal   : ...``.
* Anything else: one ``tool="other"`` message per run of unrecognized lines.

Locations are kept exactly as printed (no mapping to templates). Instantiation chains are in
the order printed: the innermost context first (the instantiation that contains the error),
the outermost (the line of the translation unit that started it) last. Identical messages
(gcc's preprocessor runs twice; cicc runs once per architecture) are reported once.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

Tool = Literal["edg", "cicc", "gcc", "ptxas", "nvlink", "nvcc", "fatbinary", "other"]
Severity = Literal["error", "warning", "info"]

_LEVELS: dict[str, Severity] = {
    "error": "error", "catastrophic error": "error", "internal error": "error",
    "command-line error": "error", "fatal error": "error", "fatal": "error",
    "warning": "warning", "remark": "info",
    "note": "info", "info": "info",
}


@dataclass(frozen=True)
class Frame:
    """One context frame: ``instantiation of "..." at line N of FILE`` (EDG), or a gcc
    ``required from`` / ``In file included from`` location."""

    file: str | None
    line: int
    text: str
    column: int | None = None


@dataclass
class CompilerMessage:
    """One diagnostic from one tool of nvcc's pipeline."""

    tool: Tool
    severity: Severity
    file: str | None
    line: int | None
    column: int | None
    message: str
    code: str | None
    chain: list[Frame]
    raw: str
    kernel: str | None = None
    #: Secondary messages (EDG ``note #N-D``, gcc ``note:``) that explain this one.
    notes: list[CompilerMessage] = field(default_factory=list)
    #: ``K`` of ``[ K instantiation contexts not shown ]`` (0 when the chain is complete).
    elided_frames: int = 0
    #: Index in ``chain`` where the contexts not shown belong (before ``chain[elided_at]``).
    elided_at: int | None = None
    #: The tool's own word: ``error``, ``catastrophic error``, ``fatal error``, ``remark``...
    level: str = ""
    #: The source line the tool printed (EDG: after macro expansion, so it can differ from
    #: the file's line; ``column`` counts on this text).
    excerpt: str | None = None

    def key(self) -> tuple:
        return (self.tool, self.severity, self.file, self.line, self.column, self.code,
                self.message)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> CompilerMessage:
        d = dict(d)
        d["chain"] = [Frame(**f) for f in d.get("chain", [])]
        d["notes"] = [cls.from_json(n) for n in d.get("notes", [])]
        return cls(**d)


@dataclass
class KernelResources:
    """ptxas's resource usage for one entry function (``-Xptxas -v``)."""

    kernel: str  # demangled when a demangler is available
    arch: str
    registers: int
    barriers: int
    smem_bytes: int  # static shared memory (dynamic shared memory does not show here)
    cmem_bytes: int  # constant memory, all banks summed (bank 0 holds the parameters)
    stack_bytes: int
    spill_stores: int
    spill_loads: int
    mangled: str = ""
    compile_ms: float | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> KernelResources:
        return cls(**d)


# --------------------------------------------------------------------------- patterns

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EDG = re.compile(
    r"^(?P<file>\S.*?)\((?P<line>\d+)\): (?P<level>catastrophic error|internal error|error"
    r"|warning|remark|note)(?: #(?P<code>\d+(?:-D)?))?: (?P<msg>.*)$")
_EDG_NOFILE = re.compile(
    r"^(?P<level>[Cc]atastrophic error|[Ii]nternal error|[Cc]ommand-line error)"
    r"(?: #(?P<code>\d+(?:-D)?))?: (?P<msg>.*)$")
# Both cudafe++ and cicc are EDG front ends and print the same format; messages without a
# source excerpt about host code used from device code come from cicc (after its front end).
_CICC_TEXT = re.compile(r"calling a __host__ function|in device code")
_CARET = re.compile(r"^\s*\^\s*$")
_DETECTED = re.compile(r"^\s+detected during(?::|\s+(?P<frame>.+))$")
_FRAME = re.compile(r"^(?P<text>.+) at line (?P<line>\d+)(?: of (?P<file>.+?))?$")
_ELIDED = re.compile(r"^\s+\[ (?P<n>\d+) instantiation contexts? not shown \]$")

_GCC = re.compile(
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<level>fatal error|error"
    r"|warning|note|Error|Warning): (?P<msg>.*)$")
_GCC_PROG = re.compile(
    r"^(?P<file>cc1plus|cc1|gcc|g\+\+|c\+\+|clang\+\+|clang|collect2|as|(?:\S*/)?ld(?:\.\w+)?)"
    r": (?P<level>fatal error|error|warning|note): (?P<msg>.*)$")
_LD = re.compile(r"^(?:\S*/)?ld(?:\.\w+)?: (?P<msg>.*)$")
_GCC_CONTEXT = re.compile(r"^(?P<file>[^\s:][^:]*?): (?P<what>(?:In|At) .+):$")
_GCC_INCLUDED = re.compile(
    r"^(?:In file included from|\s+from) (?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?[:,]$")
_GCC_REQUIRED = re.compile(  # gcc indents these with 3 spaces; diagnostics have 1
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s{2,}(?P<what>\S.*)$")
_GCC_EXCERPT = re.compile(r"^\s*(?:\d+\s*)?\|(?: .*)?$|^\s*\+\+\+ \|")
_GCC_SRC = re.compile(r"^\s*\d+ \| (?P<src>.*)$")
_GCC_WFLAG = re.compile(r"\s*\[(?P<flag>-W[^\]]+|-f[^\]]+)\]$")

_PTXAS_LOC = re.compile(
    r"^ptxas (?P<file>\S.*?), line (?P<line>\d+); (?P<level>error|warning|fatal|info)\s*: "
    r"(?P<msg>.*)$")
_TOOL = re.compile(
    r"^(?P<tool>ptxas|nvlink|nvcc|fatbinary|cicc|cudafe\+\+)\s+(?P<level>error|warning|fatal"
    r"|info)\s*: (?P<msg>.*)$")
_FUNC_NAME = re.compile(r"[Ff]unction '(?P<name>[^']+)'|reference to '(?P<ref>[^']+)'")

_SKIP = re.compile(
    r"^(?:\d+ (?:catastrophic )?errors? detected in (?:the compilation of .*|this compilation\.)"
    r"|Remark: The warnings can be suppressed with .*"
    r"|[Cc]ompilation terminated\."
    r"|Compilation aborted for .*"
    r"|\S+: Assembler messages:)$")
_PTXAS_ABORTED = "Ptx assembly aborted due to errors"

_STARTS = (_EDG, _EDG_NOFILE, _GCC, _GCC_PROG, _GCC_CONTEXT, _GCC_INCLUDED, _GCC_REQUIRED,
           _PTXAS_LOC, _TOOL, _SKIP)

# Resource usage (ptxas -v)
_RES_ENTRY = re.compile(
    r"^ptxas info\s*: Compiling entry function '(?P<name>[^']+)' for '(?P<arch>[^']+)'")
_RES_FUNC = re.compile(r"^ptxas info\s*: Compiling function '(?P<name>[^']+)'")
_RES_PROPS = re.compile(r"^ptxas info\s*: Function properties for (?P<name>\S+)")
_RES_FRAME = re.compile(
    r"^\s+(?P<stack>\d+) bytes stack frame, (?P<st>\d+) bytes spill stores, "
    r"(?P<ld>\d+) bytes spill loads")
_RES_USED = re.compile(
    r"^ptxas info\s*: Used (?P<regs>\d+) registers(?:, used (?P<bar>\d+) barriers)?(?P<rest>.*)$")
_RES_SMEM = re.compile(r"(\d+) bytes smem")
_RES_CMEM = re.compile(r"(\d+) bytes cmem\[\d+\]")
_RES_TIME = re.compile(r"^ptxas info\s*: Compile time = (?P<ms>\d+(?:\.\d+)?) ms")


# --------------------------------------------------------------------------- demangling


@functools.lru_cache(maxsize=1)
def _demanglers() -> tuple[str, ...]:
    """``cu++filt`` beside nvcc, then ``llvm-cxxfilt`` and binutils' ``c++filt`` (binutils
    gives up on some CUTLASS 3.x kernel names that LLVM's demangler handles)."""
    found: list[str] = []
    try:
        from cutlens.nvcc.toolchain import find_nvcc, tool_near_nvcc

        cu = tool_near_nvcc(find_nvcc(), "cu++filt")
        if cu:
            found.append(cu)
    except (OSError, ImportError):
        pass
    for name in ("cu++filt", "llvm-cxxfilt", "c++filt"):
        path = shutil.which(name)
        if path and path not in found:
            found.append(path)
    return tuple(found)


_DEMANGLED: dict[str, str] = {}


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Demangle C++ symbol names, one subprocess per demangler for all of them; a name no
    demangler understands maps to itself."""
    names = list(names)
    # a NUL cannot go on a command line (and no mangled name holds one)
    todo = sorted({n for n in names if n.startswith("_Z") and "\0" not in n
                   and n not in _DEMANGLED})
    for tool in _demanglers() if todo else ():
        try:
            out = subprocess.run([tool, *todo], capture_output=True, text=True, timeout=30,
                                 check=False).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(out) != len(todo):
            continue
        for name, text in zip(todo, out, strict=True):
            if text != name:
                _DEMANGLED[name] = text
        todo = [n for n in todo if n not in _DEMANGLED]
        if not todo:
            break
    return {n: _DEMANGLED.get(n, n) for n in names}


# --------------------------------------------------------------------------- parsing

#: Largest line or column kept (LSP positions are 32-bit); beyond it a number is unknown.
MAX_LINE = 2**31 - 1


def _num(text: str | None) -> int:
    """A printed line, column or count; 0 when absent or absurd (``int()`` refuses more than
    4300 digits, and an LSP position cannot hold more than 31 bits)."""
    if not text or len(text) > 10:
        return 0
    n = int(text)
    return n if n <= MAX_LINE else 0


def _frame(text: str, primary_file: str | None) -> Frame:
    m = _FRAME.match(text.strip())
    if not m:
        return Frame(file=primary_file, line=0, text=text.strip())
    return Frame(file=m["file"] or primary_file, line=_num(m["line"]), text=m["text"])


def _starts_message(line: str) -> bool:
    """Whether ``line`` opens a new message of any tool (or is a summary line)."""
    if line[:1].isspace():
        return bool(_GCC_INCLUDED.match(line))
    return any(p.match(line) for p in _STARTS)


def _parse_edg(lines: list[str], i: int, m: re.Match[str] | None,
               nofile: re.Match[str] | None) -> tuple[CompilerMessage, int]:
    """An EDG message starting at ``lines[i]``; returns it and the index after it."""
    hm = m or nofile
    assert hm is not None
    body: list[str] = []
    j = i + 1
    # The block runs to a blank line or the next message. Its lines are indented, except
    # where the message text itself holds a newline (CUTLASS's static_assert strings do).
    while j < len(lines) and lines[j].strip() and not _starts_message(lines[j]):
        body.append(lines[j])
        j += 1
    file = m["file"] if m else None
    caret = next((k for k, ln in enumerate(body) if _CARET.match(ln)), None)
    chain_start = next((k for k, ln in enumerate(body) if _DETECTED.match(ln)), len(body))
    column = excerpt = None
    if caret is not None and caret >= 1:
        cont, after = body[: caret - 1], body[caret + 1:]
        # EDG indents the source line and the caret line by two spaces.
        excerpt = body[caret - 1][2:]
        column = max(body[caret].index("^") - 1, 0)
    else:
        cont, after = body[:chain_start], body[chain_start:]
    chain: list[Frame] = []
    elided = 0
    elided_at = None
    for ln in after:
        dm = _DETECTED.match(ln)
        if dm:
            if dm["frame"]:
                chain.append(_frame(dm["frame"], file))
            continue
        em = _ELIDED.match(ln)
        if em:
            elided += _num(em["n"])
            elided_at = len(chain)
        elif _FRAME.match(ln.strip()):
            chain.append(_frame(ln, file))
    message = "\n".join([hm["msg"].strip(), *(c.strip() for c in cont)])
    level = hm["level"].lower()
    msg = CompilerMessage(
        tool="cicc" if caret is None and _CICC_TEXT.search(message) else "edg",
        severity=_LEVELS[level], file=file, line=_num(m["line"]) or None if m else None,
        column=column,
        message=message, code=hm["code"], chain=chain, raw="\n".join(lines[i:j]),
        elided_frames=elided, elided_at=elided_at, level=level, excerpt=excerpt)
    return msg, j


def _gcc_message(m: re.Match[str], raw: list[str], chain: list[Frame]) -> CompilerMessage:
    level = m["level"]
    text = m["msg"]
    code = None
    wm = _GCC_WFLAG.search(text)
    if wm:
        code, text = wm["flag"], text[: wm.start()]
    gd = m.groupdict()
    file = gd.get("file")
    level = level.lower()  # the assembler says "Error:"
    excerpt = next((em["src"] for em in map(_GCC_SRC.match, raw) if em), None)
    return CompilerMessage(
        tool="gcc", severity=_LEVELS[level], file=file, excerpt=excerpt,
        line=_num(gd.get("line")) or None,
        column=_num(gd.get("col")) if gd.get("col") else None,
        message=text.strip(), code=code, chain=chain, raw="\n".join(raw), level=level)


def parse(output: str, demangle_names: bool = True) -> list[CompilerMessage]:
    """Every diagnostic in ``output`` (nvcc's merged stdout and stderr), in order.

    ``ptxas info`` lines are resource usage (:func:`parse_resources`), not messages; the
    summary lines (``N errors detected``, ``Remark: The warnings can be suppressed``,
    ``compilation terminated.``) are dropped.
    """
    lines = _ANSI.sub("", output).replace("\r\n", "\n").split("\n")
    out: list[CompilerMessage] = []
    last: CompilerMessage | None = None  # for notes
    gcc_ctx: list[str] = []  # raw context lines before a gcc diagnostic
    gcc_chain: list[Frame] = []
    gcc_pending_inst: str | None = None
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
        if in_res_block and _RES_FRAME.match(ln):
            i += 1
            continue
        in_res_block = False
        if _SKIP.match(ln):
            i += 1
            continue
        m = _EDG.match(ln)
        nf = None if m else _EDG_NOFILE.match(ln)
        if m or nf:
            msg, i = _parse_edg(lines, i, m, nf)
            add(msg)
            continue
        m = _PTXAS_LOC.match(ln) or _TOOL.match(ln)
        if m:
            gd = m.groupdict()
            tool = gd.get("tool") or "ptxas"
            level = m["level"]
            i += 1
            if tool == "ptxas" and level == "info":
                in_res_block = True  # resource lines, and the indented lines after them
                continue
            if tool == "ptxas" and m["msg"].startswith(_PTXAS_ABORTED) and any(
                    o.tool == "ptxas" and o.severity == "error" for o in out):
                continue
            if tool == "cudafe++":
                tool = "edg"
            fn = _FUNC_NAME.search(m["msg"])
            add(CompilerMessage(
                tool=tool, severity=_LEVELS[level], file=gd.get("file"),
                line=_num(gd.get("line")) or None, column=None,
                message=m["msg"].strip(), code=None, chain=[], raw=ln,
                kernel=(fn["name"] or fn["ref"]) if fn else None, level=level))
            continue
        # gcc and friends: context lines come before the diagnostic they belong to.
        cm = _GCC_CONTEXT.match(ln)
        if cm:
            flush_other()
            gcc_ctx.append(ln)
            what = cm["what"]
            if what.startswith("In instantiation of "):
                gcc_pending_inst = what[len("In "):]
            i += 1
            continue
        im = _GCC_INCLUDED.match(ln)
        if im:
            flush_other()
            gcc_ctx.append(ln)
            gcc_chain.append(Frame(file=im["file"], line=_num(im["line"]),
                                   column=_num(im["col"]) if im["col"] else None,
                                   text="in file included from"))
            i += 1
            continue
        rm = _GCC_REQUIRED.match(ln)
        if rm:
            flush_other()
            gcc_ctx.append(ln)
            what = rm["what"].strip()
            text = gcc_pending_inst or what
            if what.startswith("required from ") and what != "required from here":
                gcc_pending_inst = "instantiation of " + what[len("required from "):]
            else:
                gcc_pending_inst = None
            gcc_chain.append(Frame(file=rm["file"], line=_num(rm["line"]),
                                   column=_num(rm["col"]) if rm["col"] else None, text=text))
            i += 1
            continue
        m = _GCC.match(ln) or _GCC_PROG.match(ln)
        if m:
            raw = [*gcc_ctx, ln]
            i += 1
            while i < len(lines) and _GCC_EXCERPT.match(lines[i]):
                raw.append(lines[i])
                i += 1
            is_note = m["level"] == "note"
            msg = _gcc_message(m, raw if not is_note else raw[len(gcc_ctx):],
                               [] if is_note else list(gcc_chain))
            if not is_note:
                gcc_ctx.clear()
                gcc_chain.clear()
                gcc_pending_inst = None
            add(msg)
            continue
        m = _LD.match(ln)
        if m:
            level = "warning" if m["msg"].startswith("warning:") else "error"
            add(CompilerMessage(tool="gcc", severity=level, file=None, line=None, column=None,
                                message=m["msg"].strip(), code=None, chain=[], raw=ln,
                                level=level))
            i += 1
            continue
        other.append(ln)
        i += 1
    flush_other()
    if gcc_ctx:  # context with no diagnostic after it: keep the text
        out.append(CompilerMessage(tool="gcc", severity="error", file=None, line=None,
                                   column=None, message="\n".join(gcc_ctx), code=None,
                                   chain=[], raw="\n".join(gcc_ctx), level="error"))

    unique: dict[tuple, CompilerMessage] = {}
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
    found: dict[tuple[str, str], KernelResources] = {}
    cur: KernelResources | None = None
    props_for: str | None = None
    for ln in _ANSI.sub("", output).splitlines():
        m = _RES_ENTRY.match(ln)
        if m:
            cur = KernelResources(kernel=m["name"], mangled=m["name"], arch=m["arch"],
                                  registers=0, barriers=0, smem_bytes=0, cmem_bytes=0,
                                  stack_bytes=0, spill_stores=0, spill_loads=0)
            found[(cur.mangled, cur.arch)] = cur
            props_for = None
            continue
        if _RES_FUNC.match(ln):
            cur, props_for = None, None
            continue
        m = _RES_PROPS.match(ln)
        if m:
            props_for = m["name"]
            continue
        m = _RES_FRAME.match(ln)
        if m:
            if cur is not None and props_for == cur.mangled:
                cur.stack_bytes = _num(m["stack"])
                cur.spill_stores = _num(m["st"])
                cur.spill_loads = _num(m["ld"])
            continue
        m = _RES_USED.match(ln)
        if m and cur is not None:
            cur.registers = _num(m["regs"])
            cur.barriers = _num(m["bar"])
            rest = m["rest"]
            sm = _RES_SMEM.search(rest)
            cur.smem_bytes = _num(sm.group(1)) if sm else 0
            cur.cmem_bytes = sum(_num(c) for c in _RES_CMEM.findall(rest))
            continue
        m = _RES_TIME.match(ln)
        if m and cur is not None:
            cur.compile_ms = float(m["ms"])
    result = list(found.values())
    if demangle_names:
        names = demangle(r.mangled for r in result)
        for r in result:
            r.kernel = names[r.mangled]
    return result
