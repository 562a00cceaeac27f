"""Known causes of opaque build errors, each a one-line hint beside nvcc's message.

One build error often has a cause nvcc cannot name: a CUDA install without cuRAND (CUTLASS's
``tensor_fill.h`` includes ``curand_kernel.h``), no CUTLASS on the include path, ``sm_90``
where wgmma/setmaxnreg need ``sm_90a``, a compile killed by the out-of-memory killer.
:func:`add_hints` adds the diagnosis to the diagnostic as related information on its own
line ("hint: ..."), so every output (text, JSON, SARIF, the editor) shows it with the error.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterable

from cutlens.diagnostics import Diagnostic, Related

PREFIX = "hint: "

#: A header the preprocessor did not find: gcc's and EDG's wording.
_MISSING = re.compile(r'(?:^|[\s"])(?P<gcc>[\w./+-]+): No such file or directory'
                      r'|cannot open source file "(?P<edg>[^"]+)"')
#: ptxas on an arch-specific instruction for a generic target.
_ARCH = re.compile(r"Instruction '(?P<insn>[\w.]+)' not supported on \.target '(?P<sm>sm_\d+)'"
                   r"|Feature '(?P<feat>[\w.]+)' requires \.target (?P<need>sm_\d+a)")
#: Instructions that exist only on an arch-specific ("a") target.
_ARCH_SPECIFIC = ("wgmma", "setmaxnreg", "tcgen05", "elect", "mbarrier.try_wait.parity")
#: A compiler process killed (nvcc's, the shell's and gcc's wording) or out of memory.
_KILLED = re.compile(r"\bKilled\b|signal 9\b|SIGKILL|Kill signal|[Oo]ut of memory"
                     r"|virtual memory exhausted|Cannot allocate memory")


def curand_include_dirs() -> list[str]:
    """Include dirs of an installed nvidia-curand wheel (the ``nvidia.cu13``/``nvidia.curand``
    namespace packages' ``include/`` holding ``curand_kernel.h``)."""
    out = []
    for pkg in ("nvidia.cu13", "nvidia.curand"):
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            continue
        for d in (spec.submodule_search_locations or []) if spec else []:
            inc = os.path.join(d, "include")
            if os.path.isfile(os.path.join(inc, "curand_kernel.h")):
                out.append(inc)
    return out


def _missing_header(d: Diagnostic) -> str | None:
    m = _MISSING.search(d.message)
    if m is None:
        return None
    header = m.group("gcc") or m.group("edg")
    base = os.path.basename(header)
    if base.startswith("curand"):
        found = curand_include_dirs()
        where = (f"export CPATH={os.pathsep.join(found)}" if found else
                 "pip install nvidia-curand, then add its nvidia/cu13/include to CPATH")
        return (f"{base} is cuRAND's (CUTLASS's tools/util tensor_fill.h includes it) and "
                f"this CUDA install has no cuRAND: {where} "
                "(examples/flashinfer/cutlens.toml shows how)")
    if header.startswith(("cutlass/", "cute/")):
        return ("CUTLASS's headers are not on the include path: pip install nvidia-cutlass "
                "(used while `cutlass` is on), or name a checkout's include/ and "
                "tools/util/include in cutlass_include_dirs (FlashInfer: git submodule "
                "update --init 3rdparty/cutlass)")
    return None


def _arch_specific(d: Diagnostic) -> str | None:
    m = _ARCH.search(d.message)
    if m is None:
        return None
    if m.group("need"):
        return (f"{m.group('feat')} needs the arch-specific target {m.group('need')}: set "
                f'arch = "{m.group("need")}"')
    insn, sm = m.group("insn"), m.group("sm")
    if not insn.startswith(_ARCH_SPECIFIC):
        return None
    return (f"{insn.split('.')[0]} exists only on the arch-specific target {sm}a, not {sm}: "
            f'set arch = "{sm}a" (the template\'s [compile] or cutlens.toml)')


def _killed(d: Diagnostic) -> str | None:
    if not _KILLED.search(d.message) or d.source not in ("nvcc", "cutlens"):
        return None
    return ("a compiler process was killed, most often by the out-of-memory killer (a "
            "CUTLASS 3.x unit takes ~3.5 GB): compile fewer units at once (--jobs 1, or "
            "jobs in cutlens.toml) or free memory")


CAUSES: tuple[Callable[[Diagnostic], str | None], ...] = (_missing_header, _arch_specific,
                                                          _killed)


def hint_for(d: Diagnostic) -> str | None:
    """The one-line diagnosis of a known cause of ``d``, or None."""
    if d.severity != "error":
        return None
    for cause in CAUSES:
        hint = cause(d)
        if hint:
            return PREFIX + hint
    return None


def add_hints(diags: Iterable[Diagnostic]) -> None:
    """Add the hint of each diagnostic's known cause as its first related information (on
    the diagnostic's own line)."""
    for d in diags:
        hint = hint_for(d)
        if hint and not any(r.message == hint for r in d.related):
            d.related.insert(0, Related(d.file, d.line, hint, d.column))
