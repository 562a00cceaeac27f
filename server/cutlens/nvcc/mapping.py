"""Map what nvcc says about a rendered unit onto template lines.

* An error in a rendered file (the TU or a companion) lands on its template line, through
  includes and macros; where the rendered line mixes several template lines, the column
  picks the ``{{ expression }}`` under it.
* One inside a header (CUTLASS, cute, std) lands on the innermost frame of its instantiation
  chain that lies in a rendered file, with the header location and the chain as related
  information; when that frame is a statement spread over several template lines, on the
  line whose expression rendered the offending template argument
  (:mod:`cutlens.nvcc.statements`).
* One inside a header with no chain into the unit (plain header code, a ptxas warning about
  a kernel the unit reaches through a header) lands on the ``#include`` line that brings the
  header in (:mod:`cutlens.nvcc.includes`); ptxas warnings about nvcc's own helper functions
  (``__cuda_sm3x_div_rn_noftz_f32_slowpath``...) say nothing about the template and are left
  out.
* The message's notes (overload candidates, "previous definition") and the declarations of
  the types its chain names, in the TU or a companion, are related information too.
* The errors of one multi-line statement settle on the line of the edit
  (:mod:`cutlens.nvcc.placement`); a known cause gets a one-line hint
  (:mod:`cutlens.nvcc.causes`).
* Warnings whose code a template suppresses (``diag_suppress``) are left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from cutlens.diagnostics import Diagnostic, Related
from cutlens.nvcc import causes, instantiation, placement, statements
from cutlens.nvcc.includes import IncludeGraph
from cutlens.render.renderer import RenderedUnit
from cutlens.render.sourcemap import Frame, SourceMap

if TYPE_CHECKING:
    from cutlens.nvcc.output import CompilerMessage
    from cutlens.nvcc.pool import CompileResult

_SOURCE_OF_TOOL = {"ptxas": "ptxas", "nvlink": "nvlink"}
#: nvcc's own device helpers (division slow paths...): nothing the template can change.
_NVCC_INTERNAL = ("__cuda_", "__internal_")
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")


def _same(a: str | None, b: str) -> bool:
    if not a:
        return False
    if a == b:
        return True
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def kernel_base_name(kernel: str) -> str | None:
    """``heavy`` of ``void heavy<32>(float const*, float*)`` or ``ns::k(int*)``."""
    head = re.split(r"[(<]", kernel, maxsplit=1)[0]
    names = _IDENT_RE.findall(head.split("::")[-1])
    return names[-1] if names else None


def suppressed(code: str | None, suppress: Collection[str]) -> bool:
    """True when ``code`` (``3357-D``, ``-Wdeprecated-declarations``, ``spill``) is one a
    template's ``diag_suppress`` lists (EDG numbers with or without their ``-D``)."""
    if not code or not suppress:
        return False
    return code in suppress or code.removesuffix("-D") in {
        s.removesuffix("-D") for s in suppress}


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
        self.command = list(getattr(result, "command", []) or [])
        self._graph: IncludeGraph | None = None
        #: How :func:`_refine` narrowed a message (by ``id``) within its statement.
        self.evidence: dict[int, placement.Evidence] = {}

    def lookup(self, file: str | None) -> str | None:
        """The rendered file ``file`` names (None: a header, or no file)."""
        if file is None:
            return None
        for path in self.files:
            if path and _same(file, path):
                return path
        return None

    def frames(self, file: str | None, line: int | None, column: int | None = None,
               excerpt: str | None = None) -> tuple[Frame, ...] | None:
        """Template frames of rendered ``file:line``. With the ``column`` of the ``excerpt``
        the tool printed (when that is the rendered line as written, not a macro expansion),
        the innermost ``{{ expression }}`` under the column."""
        path = self.lookup(file)
        if path is None or line is None:
            return None
        smap, text = self.files[path]
        fr = smap.frames(line)
        if not fr or not column or excerpt is None or not 1 <= line <= len(smap.line_starts):
            return fr or None
        begin = smap.line_starts[line - 1]
        end = text.find("\n", begin)
        rendered = text[begin:end if end >= 0 else len(text)]
        if rendered.rstrip() != excerpt.rstrip() or column > len(rendered):
            return fr
        span = statements.span_at(smap, begin + column - 1)
        if span is None or span.frame in fr:  # no expression, or one the line is inside of
            return fr
        return _with_frame(fr, span.frame)

    def clean(self, text: str) -> str:
        """Replace rendered-file paths in ``text`` with the template's name."""
        for path in self.files:
            if not path:  # no TU was written (nvcc missing): nothing to replace
                continue
            text = text.replace(path, self.unit.template.name)
            text = text.replace(os.path.basename(path), self.unit.template.name)
        return text

    @property
    def graph(self) -> IncludeGraph | None:
        """The include graph of the unit (read on first use; None when no TU was written)."""
        if self._graph is None and self.tu:
            rendered = {path: text for path, (_, text) in self.files.items() if path}
            self._graph = IncludeGraph(rendered, self.tu, self.command)
        return self._graph

    def include_frames(self, header: str | None) -> tuple[Frame, ...] | None:
        """Frames of the rendered ``#include`` line that brings ``header`` in."""
        graph = self.graph if header else None
        hit = graph.include_line(header) if graph is not None and header else None
        return self.frames(*hit) if hit is not None else None

    def kernel_line(self, kernel: str | None) -> tuple[Frame, ...] | None:
        """Frames of the rendered line defining ``kernel`` (a ptxas entry function)."""
        name = kernel_base_name(kernel) if kernel else None
        if not name:
            return None
        pat = re.compile(rf"__global__[^;{{]*\b{re.escape(name)}\b|\b{re.escape(name)}\s*\(")
        for smap, text in self.files.values():
            for i, line in enumerate(text.splitlines(), start=1):
                if pat.search(line):
                    fr = smap.frames(i)
                    if fr:
                        return fr
        return None

    def kernel_header(self, kernel: str | None) -> tuple[str, int] | None:
        """The header (reached by the unit) that defines ``kernel``, and the line."""
        name = kernel_base_name(kernel) if kernel else None
        graph = self.graph if name else None
        if graph is None or not name:
            return None
        return graph.defining_header(re.compile(
            rf"__global__\b[^;{{]*?\b{re.escape(name)}\s*\(", re.S))

    def aliases(self, value: str) -> list[str]:
        """What a type name (``Params::DTypeO``, ``DTypeO``) is an alias of in the rendered
        files, followed through aliases of aliases (``using DTypeO = DTypeO;`` inside a
        struct refers to the outer one)."""
        out: list[str] = []
        todo = [value]
        while todo and len(out) < 8:
            cur = todo.pop(0).strip()
            if not re.fullmatch(r"(?:[A-Za-z_]\w*::)*[A-Za-z_]\w*", cur):
                continue
            name = cur.rsplit("::", 1)[-1]
            pat = re.compile(rf"\busing\s+{re.escape(name)}\s*=\s*([^;]+);"
                             rf"|\btypedef\s+([^;]+?)\s+{re.escape(name)}\s*;")
            for _, text in self.files.values():
                for m in pat.finditer(text):
                    rhs = (m.group(1) or m.group(2)).strip()
                    if rhs.rsplit("::", 1)[-1] != name and rhs not in out:
                        out.append(rhs)
                        todo.append(rhs)
        return out

    def declaration(self, name: str) -> Related | None:
        """Where a rendered file (the TU, then its companions) declares type ``name``."""
        decl = re.compile(rf"\busing\s+{re.escape(name)}\s*=|\b(?:struct|class)\s+"
                          rf"{re.escape(name)}\b|\btypedef\b[^;]*\b{re.escape(name)}\s*;")
        for smap, text in self.files.values():
            for i, line in enumerate(text.splitlines(), start=1):
                if decl.search(line):
                    o = smap.origin(i)
                    if o is not None:
                        return Related(o.file, o.line, f"{name} is declared here")
        return None


def _with_frame(frames: tuple[Frame, ...], frame: Frame) -> tuple[Frame, ...]:
    """``frames`` ending at ``frame`` (an expression or a line of the same statement)."""
    if frames and frames[-1].file == frame.file:
        return (*frames[:-1], frame)
    return (*frames, frame)


_FRAME_NOTE = {"include": "included from here", "expr": "expanded from here",
               "text": "from here"}


def related_from_frames(frames: tuple[Frame, ...]) -> list[Related]:
    """Outer frames of a rendered line (macro call sites, includes) as related notes."""
    return [Related(f.file, f.line, _FRAME_NOTE[f.kind], f.column + 1 if f.column else 0)
            for f in reversed(frames[:-1])]


_MANGLED_RE = re.compile(r"'(_Z\w+)'")
_ALIAS_IN_CHAIN_RE = re.compile(r"=\s*(?:<unnamed>::|[A-Za-z_][\w:]*::)?([A-Za-z_]\w*)\s*[,\]]")


def _declarations(um: UnitMap, texts: list[str]) -> list[Related]:
    """Where the rendered files declare the types an instantiation chain names
    (``Operator=<unnamed>::GemmKernel`` -> the ``using GemmKernel = ...`` line; ``O=DTypeO``
    -> a companion's ``using DTypeO = ...``): the configuration the user chose, which the
    error is about."""
    names = list(dict.fromkeys(n for t in texts for n in _ALIAS_IN_CHAIN_RE.findall(t)))[:4]
    found = (um.declaration(n) for n in names)
    return [r for r in found if r is not None]


def _note_related(um: UnitMap, note: CompilerMessage) -> Related | None:
    """A note (candidate, previous definition) as related information, on its template line
    when it is in a rendered file."""
    if not note.file or not note.line:
        return None
    text = um.clean(note.message.split("\n", 1)[0])
    fr = um.frames(note.file, note.line)
    if fr:
        return Related(fr[-1].file, fr[-1].line, text)
    return Related(note.file, note.line, text)


def map_message(m: CompilerMessage, um: UnitMap) -> Diagnostic | None:
    """One compiler message as a diagnostic on a template line (None: a message about nvcc's
    own helper functions, nothing to do with the template)."""
    unit = um.unit
    source = _SOURCE_OF_TOOL.get(m.tool, "nvcc")
    related: list[Related] = []
    frames = um.frames(m.file, m.line, m.column, m.excerpt)
    if frames is not None and not m.chain:
        frames = _mismatched_argument(um, m, frames, related)
    chain_frames: list[tuple[tuple[Frame, ...], str, str, int]] = []
    for fr in m.chain:  # chains are printed innermost first
        hit = um.frames(fr.file, fr.line)
        if hit is not None:
            chain_frames.append((hit, um.clean(fr.text), um.lookup(fr.file) or "", fr.line))
        elif fr.file:
            related.append(Related(fr.file, fr.line, um.clean(fr.text)))
    if frames is None:
        if not m.file and (kernel_base_name(m.kernel or "") or "").startswith(_NVCC_INTERNAL):
            return None
        # Inside a header (or no location): the innermost chain frame in the rendered files,
        # else the line defining the kernel ptxas names, else the #include bringing the
        # header in.
        if m.file and m.line:
            related.insert(0, Related(m.file, m.line, f"{m.severity} reported here"))
        if chain_frames:
            hit, text, rfile, rline = chain_frames.pop(0)
            frames = _refine(um, m, hit, rfile, rline)
            if frames is not hit:
                related.append(Related(hit[-1].file, hit[-1].line, text))
        else:
            frames = um.kernel_line(m.kernel)
            if frames is None:
                frames = _through_include(um, m, related)
    for hit, text, _, _ in chain_frames:  # outer instantiation contexts in the template
        related.append(Related(hit[-1].file, hit[-1].line, text))
    for note in m.notes:
        r = _note_related(um, note)
        if r is not None and r not in related:
            related.append(r)
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


def _refine(um: UnitMap, m: CompilerMessage, hit: tuple[Frame, ...], rfile: str,
            rline: int) -> tuple[Frame, ...]:
    """The chain's innermost frame in the unit (a rendered line), narrowed to the line of its
    statement whose expression rendered the offending template argument: one of the
    statement's own parameters the message names, else a value the chain binds; failing
    both, the rendered line declaring an alias the error is about (a companion's
    ``using DTypeQ = float;``)."""
    if not rfile:
        return hit
    smap, text = um.files[rfile]
    said = f"{m.excerpt or ''}\n{m.message}"
    own = [f.text for f in m.chain if f.line == rline and um.lookup(f.file) == rfile][:1]
    strong = statements.named_parameters(statements.bindings(own), said)
    tries: list[tuple[placement.Evidence, list[str]]] = [("parameter", strong)] if strong else []
    values = statements.offending_values(statements.bindings(f.text for f in m.chain), said)
    tries.append(("value", values))
    for evidence, found in tries:
        found = [w for v in found for w in (v, *um.aliases(v))]  # Params::DTypeO -> float
        frame = statements.pick(smap, text, rline, found)
        if frame is not None:
            um.evidence[id(m)] = evidence
            return _with_frame(hit, frame)
    decl = placement.declared_alias(um.files, values, said, [f.text for f in m.chain],
                                    rfile)
    if decl is not None:
        um.evidence[id(m)] = "declaration"
        return decl
    return hit


def _mismatched_argument(um: UnitMap, m: CompilerMessage, frames: tuple[Frame, ...],
                         related: list[Related]) -> tuple[Frame, ...]:
    """An explicit instantiation that matches no function template: the line of the
    argument that does not fit the declaration (:mod:`cutlens.nvcc.instantiation`)."""
    nm = instantiation.NO_MATCH_RE.search(m.message)
    path = um.lookup(m.file)
    graph = um.graph if nm and path and m.line else None
    if nm is None or graph is None or path is None or m.line is None:
        return frames
    smap, text = um.files[path]
    stmt = statements.statement_at(smap, text, m.line)
    if stmt is None:
        return frames
    start, end = stmt
    found = instantiation.mismatch(text, start, end, nm["name"], graph.order, um.aliases)
    if found is None:
        return frames
    offset, decl = found
    line_frames = smap.frames(smap.line_of_offset(offset))
    if not line_frames:
        return frames
    span = statements.span_at(smap, offset)
    hit = _with_frame(line_frames, span.frame) if span is not None and \
        span.frame not in line_frames else line_frames
    related.append(Related(decl.file, decl.line, f"{nm['name']} is declared here"))
    return hit


def _through_include(um: UnitMap, m: CompilerMessage,
                     related: list[Related]) -> tuple[Frame, ...] | None:
    """A header's message with no chain into the unit: the ``#include`` line that brings the
    header in (the header where its outermost instantiation starts, or its own; for a ptxas
    kernel, the header defining the kernel)."""
    headers = [f.file for f in reversed(m.chain) if f.file] + ([m.file] if m.file else [])
    for header in headers:
        frames = um.include_frames(header)
        if frames is not None:
            return frames
    spec = _chosen_specialization(um, m)
    if spec is not None:
        return spec
    found = um.kernel_header(m.kernel)
    if found is not None:
        frames = um.include_frames(found[0])
        if frames is not None:
            name = kernel_base_name(m.kernel or "") or "the kernel"
            related.append(Related(found[0], found[1], f"{name} is defined here"))
            return frames
    return None


_UNRESOLVED_RE = re.compile(r"Unresolved extern function '(?P<fn>[^']+)'")


def _chosen_specialization(um: UnitMap, m: CompilerMessage) -> tuple[Frame, ...] | None:
    """``Unresolved extern function 'vec_t<int, 4ul>::load(...)'``: a device function
    template has no specialization for a type the configuration chose; the rendered line
    that chose it (``using DTypeKV = int;``)."""
    um_match = _UNRESOLVED_RE.search(m.message)
    if um_match is None:
        return None
    fn = m.kernel or um_match["fn"]  # (demangled)
    lt = fn.find("<")
    gt = fn.rfind(">", 0, fn.find("(") if "(" in fn else len(fn))
    if lt < 0 or gt < lt:
        return None
    for arg in statements.split_top(fn[lt + 1:gt]):
        if not re.fullmatch(r"[A-Za-z_][\w:]*", arg):
            continue
        pat = re.compile(rf"^[ \t]*(?:using\s+\w+\s*=\s*{re.escape(arg)}\s*;"
                         rf"|typedef\s+{re.escape(arg)}\s+\w+\s*;)", re.M)
        for smap, text in um.files.values():
            hit = pat.search(text)
            if hit is not None:
                fr = smap.frames(text.count("\n", 0, hit.start()) + 1)
                if fr:
                    return fr
    return None


def map_result(unit: RenderedUnit, result: CompileResult,
               suppress: Collection[str] = ()) -> list[Diagnostic]:
    """Every message of a compile of ``unit``, on template lines; warnings and remarks whose
    code is in ``suppress`` (a template's ``diag_suppress``) left out."""
    um = UnitMap(unit, result)
    placed: list[placement.Placed] = []
    for m in result.messages:
        if m.severity != "error" and suppressed(m.code, suppress):
            continue
        d = map_message(m, um)
        if d is not None:
            placed.append((d, _anchor(um, m), um.evidence.pop(id(m), None)))
    placement.settle(um.files, placed)
    out = [d for d, _, _ in placed]
    causes.add_hints(out)
    return out


def _anchor(um: UnitMap, m: CompilerMessage) -> tuple[str, int] | None:
    """The rendered file and line a message was placed from: its own, else its chain's
    innermost frame in the unit."""
    for file, line in [(m.file, m.line), *((f.file, f.line) for f in m.chain)]:
        path = um.lookup(file)
        if path is not None and line:
            return path, line
    return None
