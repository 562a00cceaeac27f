"""ptxas, nvlink, fatbinary and nvcc's own messages (``ptxas error   : ...``, ``ptxas
/tmp/x.ptx, line N; error   : ...``, ``nvcc fatal   : ...``), ptxas's resource usage
(``-Xptxas -v``), and demangling the kernel names they print."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable

from cutlens.nvcc.messages import LEVELS, CompilerMessage, KernelResources, num

PTXAS_LOC = re.compile(
    r"^ptxas (?P<file>\S.*?), line (?P<line>\d+); (?P<level>error|warning|fatal|info)\s*: "
    r"(?P<msg>.*)$")
TOOL = re.compile(
    r"^(?P<tool>ptxas|nvlink|nvcc|fatbinary|cicc|cudafe\+\+)\s+(?P<level>error|warning|fatal"
    r"|info)\s*: (?P<msg>.*)$")
_FUNC_NAME = re.compile(r"[Ff]unction '(?P<name>[^']+)'|reference to '(?P<ref>[^']+)'")
_ABORTED = "Ptx assembly aborted due to errors"
#: ``-warn-spills``: the one ptxas warning with a code of its own (``diag_suppress`` names it).
SPILL_CODE = "spill"
_SPILL = re.compile(r"^Registers are spilled to local memory")
#: ``ptxas info : (C7511) Potential Performance Loss: wgmma.mma_async instructions are
#: serialized ...``: an info line that is a performance warning (its code: ``C7511``).
PERF_LOSS = re.compile(r"^\((?P<code>C\d+)\)\s*(?P<msg>Potential Performance Loss\b.*)$")

# Resource usage (ptxas -v)
_RES_ENTRY = re.compile(
    r"^ptxas info\s*: Compiling entry function '(?P<name>[^']+)' for '(?P<arch>[^']+)'")
_RES_FUNC = re.compile(r"^ptxas info\s*: Compiling function '(?P<name>[^']+)'")
_RES_PROPS = re.compile(r"^ptxas info\s*: Function properties for (?P<name>\S+)")
RES_FRAME = re.compile(
    r"^\s+(?P<stack>\d+) bytes stack frame, (?P<st>\d+) bytes spill stores, "
    r"(?P<ld>\d+) bytes spill loads")
_RES_USED = re.compile(
    r"^ptxas info\s*: Used (?P<regs>\d+) registers(?:, used (?P<bar>\d+) barriers)?(?P<rest>.*)$")
_RES_SMEM = re.compile(r"(\d+) bytes smem")
_RES_CMEM = re.compile(r"(\d+) bytes cmem\[\d+\]")
_RES_TIME = re.compile(r"^ptxas info\s*: Compile time = (?P<ms>\d+(?:\.\d+)?) ms")


def tool_message(m: re.Match[str], ln: str,
                 earlier: list[CompilerMessage]) -> CompilerMessage | None:
    """The message of a :data:`PTXAS_LOC`/:data:`TOOL` line; None for ``ptxas info`` (resource
    usage) and for ptxas's "aborted" summary after its own errors (``earlier``)."""
    gd = m.groupdict()
    tool = gd.get("tool") or "ptxas"
    level = m["level"]
    perf = PERF_LOSS.match(m["msg"]) if tool == "ptxas" and level == "info" else None
    if perf is not None:  # an info line that is a performance warning
        fn = _FUNC_NAME.search(m["msg"])
        return CompilerMessage(
            tool="ptxas", severity="warning", file=gd.get("file"),
            line=num(gd.get("line")) or None, column=None, message=perf["msg"].strip(),
            code=perf["code"], chain=[], raw=ln,
            kernel=(fn["name"] or fn["ref"]) if fn else None, level="info")
    if tool == "ptxas" and level == "info":
        return None
    if tool == "ptxas" and m["msg"].startswith(_ABORTED) and any(
            o.tool == "ptxas" and o.severity == "error" for o in earlier):
        return None
    if tool == "cudafe++":
        tool = "edg"
    fn = _FUNC_NAME.search(m["msg"])
    code = SPILL_CODE if tool == "ptxas" and _SPILL.match(m["msg"]) else None
    return CompilerMessage(
        tool=tool, severity=LEVELS[level], file=gd.get("file"),  # type: ignore[arg-type]
        line=num(gd.get("line")) or None, column=None,
        message=m["msg"].strip(), code=code, chain=[], raw=ln,
        kernel=(fn["name"] or fn["ref"]) if fn else None, level=level)


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


# --------------------------------------------------------------------------- resources


def parse_resources(lines: Iterable[str], demangle_names: bool = True) -> list[KernelResources]:
    """Per-entry-function resource usage from ``ptxas info`` lines (``-Xptxas -v``)."""
    found: dict[tuple[str, str], KernelResources] = {}
    cur: KernelResources | None = None
    props_for: str | None = None
    for ln in lines:
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
        m = RES_FRAME.match(ln)
        if m:
            if cur is not None and props_for == cur.mangled:
                cur.stack_bytes = num(m["stack"])
                cur.spill_stores = num(m["st"])
                cur.spill_loads = num(m["ld"])
            continue
        m = _RES_USED.match(ln)
        if m and cur is not None:
            cur.registers = num(m["regs"])
            cur.barriers = num(m["bar"])
            rest = m["rest"]
            sm = _RES_SMEM.search(rest)
            cur.smem_bytes = num(sm.group(1)) if sm else 0
            cur.cmem_bytes = sum(num(c) for c in _RES_CMEM.findall(rest))
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
