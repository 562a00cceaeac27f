"""Placing a compile's errors within one multi-line statement, once all are mapped.

Every error of one compile that an explicit instantiation spread over several lines
instantiates is about the same edit. :func:`settle` moves each to the line that edit is on:

* errors placed on a line by a value that merely matches what the line spells (a type, a
  number) follow an error placed by a template parameter the message names, when the two
  disagree (``half`` rendered by ``{{ dtype_o }}`` vs ``FP16_QK_REDUCTION_SUPPORTED``
  naming ``USE_FP16_QK_REDUCTION``);
* an error EDG puts on the statement's first line that names nothing there joins another
  error of the statement on a later line (the argument the user edited), preferring one
  placed by a named parameter;
* failing that, a lone one goes to the line holding the template-argument list, when that
  list lies on one line.

The first line stays as related information ("reported at the statement's first line").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from cutlens.diagnostics import Diagnostic, Related
from cutlens.nvcc import statements
from cutlens.render.sourcemap import Frame, SourceMap

#: How a diagnostic was narrowed to a line of its statement: by a template parameter its
#: message names, by a value matching what a line spells, or by a declaration.
Evidence = Literal["parameter", "value", "declaration"]
FIRST_LINE = "reported at the statement's first line"

Placed = tuple[Diagnostic, tuple[str, int] | None, Evidence | None]


def settle(files: Mapping[str, tuple[SourceMap, str]], placed: list[Placed]) -> None:
    """Move ``placed`` (diagnostic, rendered anchor, evidence) as the module says."""
    _follow_named_parameters(placed)
    unplaced = [(d, a) for d, a, _ in placed if a is not None and d.severity == "error"
                and _on_first_line(files, d, a)]
    strong = [d for d, _, ev in placed if ev == "parameter"]
    for d, anchor in unplaced:
        smap, text = files[anchor[0]]
        begin = smap.line_starts[anchor[1] - 1]
        stop = text.find("\n", begin)
        if statements.names_the_line(d.message, text[begin:stop if stop >= 0 else None]):
            continue
        others = statements.later_lines(smap, text, anchor[1])
        if not others:
            continue
        cands = [e for e, _, _ in placed if e is not d and e.severity == "error"
                 and (e.file, e.line) in others]
        target = next((e for e in cands if e in strong), cands[0] if cands else None)
        if target is not None:
            _move(d, target.file, target.line)
            continue
        frame = statements.template_argument_line(smap, text, anchor[1])
        if frame is not None:
            _move(d, frame.file, frame.line)


def _on_first_line(files: Mapping[str, tuple[SourceMap, str]], d: Diagnostic,
                   anchor: tuple[str, int]) -> bool:
    """True when ``d`` sits where its anchor (a rendered statement line) maps: not narrowed
    (a column, a binding, a mismatched argument)."""
    smap, _ = files[anchor[0]]
    placed = smap.frames(anchor[1])[-1:]
    return bool(placed) and (placed[0].file, placed[0].line) == (d.file, d.line)


def _follow_named_parameters(placed: list[Placed]) -> None:
    """Within the errors of one statement (one anchor), those placed by a value follow the
    line the errors placed by a named parameter agree on."""
    groups: dict[tuple[str, int], list[tuple[Diagnostic, Evidence | None]]] = {}
    for d, anchor, ev in placed:
        if anchor is not None and d.severity == "error":
            groups.setdefault(anchor, []).append((d, ev))
    for members in groups.values():
        lines = {(d.file, d.line) for d, ev in members if ev == "parameter"}
        if len(lines) != 1:
            continue
        ((file, line),) = lines
        for d, ev in members:
            if ev == "value" and (d.file, d.line) != (file, line):
                d.file, d.line, d.end_line, d.column = file, line, line, 0


def _move(d: Diagnostic, file: str, line: int) -> None:
    d.related.insert(0, Related(d.file, d.line, FIRST_LINE))
    d.file, d.line, d.end_line, d.column = file, line, line, 0


def declared_alias(files: Mapping[str, tuple[SourceMap, str]], values: list[str], said: str,
                   chain: list[str], statement_file: str) -> tuple[Frame, ...] | None:
    """The line of a rendered file other than the statement's that declares, as a
    concrete type, an alias the error is about: a bound value (``Params::DTypeQ``), or
    a name the error's line says (``sizeof(DTypeQ)``) that the chain spells as a
    member (``Params::DTypeQ``)."""
    names = [v.rsplit("::", 1)[-1] for v in values]
    members = {n for t in chain for n in re.findall(r"::([A-Za-z_]\w*)", t)}
    names += [n for n in statements.IDENT_RE.findall(said) if n in members]
    for name in dict.fromkeys(names):
        if not statements.IDENT_RE.fullmatch(name):
            continue
        pat = re.compile(rf"^[ \t]*using\s+{re.escape(name)}\s*=\s*([^;]+);", re.M)
        for path, (smap, text) in files.items():
            if path == statement_file:
                continue
            for hit in pat.finditer(text):
                rhs = hit.group(1).strip()
                if rhs.rsplit("::", 1)[-1] == name:
                    continue  # an alias of the outer one (inside a struct)
                end = text.find("\n", hit.end())
                if text[hit.end():end if end >= 0 else None].rstrip().endswith("\\"):
                    continue  # inside a #define
                fr = smap.frames(text.count("\n", 0, hit.start()) + 1)
                if fr:
                    return fr
    return None

