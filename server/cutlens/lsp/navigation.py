"""Go to definition (macros, included templates) and document symbols (macros, blocks,
samples, variants)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsprotocol import types as lsp

from cutlens.lsp import jinja_text
from cutlens.lsp.convert import path_to_uri
from cutlens.template.model import Template


def _search_path(template: Template | None, path: Path) -> list[Path]:
    if template is None:
        return [path.parent]
    cfg = template.config
    return [path.parent, cfg.root, *map(Path, cfg.search_path)]


def resolve(name: str, template: Template | None, path: Path) -> Path | None:
    for d in _search_path(template, path):
        cand = (d / name).resolve()
        if cand.is_file():
            return cand
    return None


def _loc(path: Path, line0: int) -> lsp.Location:
    pos = lsp.Position(line0, 0)
    return lsp.Location(path_to_uri(path), lsp.Range(pos, pos))


def definition(template: Template | None, path: Path, source: str, line0: int, col: int,
               read: Callable[[Path], str | None]) -> list[lsp.Location]:
    """Where the macro or template under the cursor is defined. ``read(path)`` gives a
    file's current text (editor buffer or disk)."""
    lines = source.splitlines()
    if line0 >= len(lines):
        return []
    line = lines[line0]
    ref = jinja_text.reference_at(line, col)
    if ref is not None:
        target = resolve(ref, template, path)
        return [_loc(target, 0)] if target else []
    word = jinja_text.word_at(line, col)
    if word is None:
        return []
    full = jinja_text.word_at(line, word[2] - 1)
    name = word[0]
    owner, _, attr = name.rpartition(".")
    if not owner:
        # a local macro, or one brought in with {% from ... import %}
        local = jinja_text.macros(source)
        if name in local:
            return [_loc(path, local[name][0])]
        src = jinja_text.from_imports(source).get(name)
        if src is not None:
            target = resolve(src, template, path)
            if target is not None:
                text = read(target) or ""
                found = jinja_text.macros(text).get(name)
                return [_loc(target, found[0] if found else 0)]
        alias = jinja_text.imports(source).get(name)
        if alias is not None:
            target = resolve(alias, template, path)
            return [_loc(target, 0)] if target else []
        return []
    alias = jinja_text.imports(source).get(owner)
    if alias is None or full is None:
        return []
    target = resolve(alias, template, path)
    if target is None:
        return []
    found = jinja_text.macros(read(target) or "").get(attr)
    return [_loc(target, found[0] if found else 0)]


def _sym(name: str, kind: lsp.SymbolKind, line0: int, detail: str = "",
         children: list[lsp.DocumentSymbol] | None = None) -> lsp.DocumentSymbol:
    rng = lsp.Range(lsp.Position(line0, 0), lsp.Position(line0, 0))
    return lsp.DocumentSymbol(name=name, kind=kind, range=rng, selection_range=rng,
                              detail=detail or None, children=children)


def document_symbols(template: Template | None, source: str) -> list[lsp.DocumentSymbol]:
    """Macros, blocks, samples (with their nodes) and variants."""
    out = []
    for name, (line0, args) in jinja_text.macros(source).items():
        out.append(_sym(name, lsp.SymbolKind.Function, line0, f"macro({args})"))
    for name, line0 in jinja_text.blocks(source).items():
        out.append(_sym(name, lsp.SymbolKind.Namespace, line0, "block"))
    if template is None:
        return out
    file = str(template.path)
    for s in template.samples:
        f, ln = template.setting_line(f"samples.{s.name}")
        if f != file:
            continue
        nodes = [_sym(n, lsp.SymbolKind.Variable,
                      template.setting_line(f"samples.{s.name}", n)[1] - 1,
                      node.describe() if node else "None") for n, node in s.nodes.items()]
        out.append(_sym(s.name, lsp.SymbolKind.Struct, ln - 1, "sample", nodes))
    first = template.samples[0] if template.samples else None
    for v in template.variants(first):
        out.append(_sym(v.name, lsp.SymbolKind.EnumMember, max(v.line - 1, 0),
                        f"variant #{v.index}"))
    return out
