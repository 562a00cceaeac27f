"""Map what nvcc says about a rendered unit onto template lines.

An error in the rendered TU lands on its template line (through includes and macros); one
inside a header (CUTLASS, cute, std) lands on the innermost frame of its instantiation
chain that lies in the rendered TU, with the header location and the chain as related
information; ptxas messages naming a kernel land on the line that defines it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from cutlens.diagnostics import Diagnostic, Related
from cutlens.render.renderer import RenderedUnit
from cutlens.render.sourcemap import Frame, SourceMap

if TYPE_CHECKING:
    from cutlens.nvcc.output import CompilerMessage
    from cutlens.nvcc.pool import CompileResult

_SOURCE_OF_TOOL = {"ptxas": "ptxas", "nvlink": "nvlink"}


def _same(a: str | None, b: str) -> bool:
    if not a:
        return False
    if a == b:
        return True
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


class UnitMap:
    """The rendered files of one unit (TU + companions) as nvcc saw them."""

    def __init__(self, unit: RenderedUnit, result: CompileResult) -> None:
        self.unit = unit
        self.files: dict[str, tuple[SourceMap, str]] = {
            result.source_path: (unit.source_map, unit.text)}
        for name, path in getattr(result, "companion_paths", {}).items():
            comp = unit.companions.get(name)
            if comp is not None:
                self.files[path] = (comp.source_map, comp.text)
        self.tu = result.source_path

    def lookup(self, file: str | None) -> SourceMap | None:
        if file is None:
            return None
        for path, (smap, _) in self.files.items():
            if _same(file, path):
                return smap
        return None

    def frames(self, file: str | None, line: int | None) -> tuple[Frame, ...] | None:
        smap = self.lookup(file)
        if smap is None or line is None:
            return None
        return smap.frames(line) or None

    def clean(self, text: str) -> str:
        """Replace rendered-file paths in ``text`` with the template's name."""
        for path in self.files:
            if not path:  # no TU was written (nvcc missing): nothing to replace
                continue
            text = text.replace(path, self.unit.template.name)
            text = text.replace(os.path.basename(path), self.unit.template.name)
        return text

    def kernel_line(self, kernel: str | None) -> tuple[Frame, ...] | None:
        """Frames of the rendered line defining ``kernel`` (a ptxas entry function)."""
        if not kernel:
            return None
        name = re.split(r"[(<]", kernel, maxsplit=1)[0].split("::")[-1].strip()
        if not name:
            return None
        smap, text = self.files[self.tu]
        pat = re.compile(rf"__global__[^;{{]*\b{re.escape(name)}\b|\b{re.escape(name)}\s*\(")
        for i, line in enumerate(text.splitlines(), start=1):
            if pat.search(line):
                fr = smap.frames(i)
                if fr:
                    return fr
        return None


_FRAME_NOTE = {"include": "included from here", "expr": "expanded from here",
               "text": "from here"}


def related_from_frames(frames: tuple[Frame, ...]) -> list[Related]:
    """Outer frames of a rendered line (macro call sites, includes) as related notes."""
    return [Related(f.file, f.line, _FRAME_NOTE[f.kind], f.column + 1 if f.column else 0)
            for f in reversed(frames[:-1])]


_MANGLED_RE = re.compile(r"'(_Z\w+)'")
_ALIAS_IN_CHAIN_RE = re.compile(r"=\s*(?:<unnamed>::|[A-Za-z_][\w:]*::)?([A-Za-z_]\w*)\s*[,\]]")


def _declarations(um: UnitMap, texts: list[str]) -> list[Related]:
    """Where the TU declares the types an instantiation chain names (``Operator=
    <unnamed>::GemmKernel`` -> the ``using GemmKernel = ...`` line): the configuration the
    user chose, which the error is about."""
    names = list(dict.fromkeys(n for t in texts for n in _ALIAS_IN_CHAIN_RE.findall(t)))[:4]
    if not names:
        return []
    smap, text = um.files[um.tu]
    out = []
    lines = text.splitlines()
    for name in names:
        decl = re.compile(rf"\busing\s+{re.escape(name)}\s*=|\b(?:struct|class)\s+"
                          rf"{re.escape(name)}\b")
        for i, line in enumerate(lines, start=1):
            if decl.search(line):
                o = smap.origin(i)
                if o is not None:
                    out.append(Related(o.file, o.line, f"{name} is declared here"))
                break
    return out


def map_message(m: CompilerMessage, um: UnitMap) -> Diagnostic:
    """One compiler message as a diagnostic on a template line."""
    unit = um.unit
    source = _SOURCE_OF_TOOL.get(m.tool, "nvcc")
    related: list[Related] = []
    frames = um.frames(m.file, m.line)
    chain_frames: list[tuple[tuple[Frame, ...], str]] = []
    for fr in m.chain:  # chains are printed innermost first
        hit = um.frames(fr.file, fr.line)
        if hit is not None:
            chain_frames.append((hit, um.clean(fr.text)))
        elif fr.file:
            related.append(Related(fr.file, fr.line, um.clean(fr.text)))
    if frames is None:
        # Inside a header (or no location): the innermost chain frame in the rendered files,
        # else the line defining the kernel ptxas names.
        if m.file and m.line:
            related.insert(0, Related(m.file, m.line, f"{m.severity} reported here"))
        if chain_frames:
            frames = chain_frames.pop(0)[0]
        else:
            frames = um.kernel_line(m.kernel)
    for hit, text in chain_frames:  # outer instantiation contexts in the template
        related.append(Related(hit[-1].file, hit[-1].line, text))
    if m.chain:
        related += [r for r in _declarations(um, [f.text for f in m.chain])
                    if r not in related]
    if frames:
        primary = frames[-1]
        related = related_from_frames(frames) + related
        file, line, col = primary.file, primary.line, primary.column + 1 if primary.column else 0
    else:
        file, line, col = str(unit.template), 1, 0
    message = um.clean(m.message)
    if m.kernel:
        message = _MANGLED_RE.sub(f"'{m.kernel}'", message, count=1)
    return Diagnostic(
        file=file, line=line, column=col, severity=m.severity,
        source=source,  # type: ignore[arg-type]
        message=message, code=m.code, samples=[unit.sample.name],
        variants=[unit.variant.name], related=related, raw=m.raw)


def map_result(unit: RenderedUnit, result: CompileResult) -> list[Diagnostic]:
    """Every message of a compile of ``unit``, on template lines."""
    um = UnitMap(unit, result)
    return [map_message(m, um) for m in result.messages]
