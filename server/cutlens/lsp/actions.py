"""Code actions (quick fixes) on a template's diagnostics:

* an undefined name close to a defined one (a variant key, a node, a ``{% set %}``, a macro
  argument...): "Did you mean `block`?", replacing the name;
* an undefined name used like a node (``kernel.ptr(Bias)``, a capitalised name): "Add node
  `Bias` to sample `small`", a line in each sample's front-matter table that lacks it, shaped
  like the sample's first node;
* an nvcc error whose notes point into a header: "Open `cute/layout.hpp:120`" — the
  ``cutlens.openLocation`` command asks the client to show it (``window/showDocument``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types as lsp

from cutlens.lsp.convert import uri_to_path
from cutlens.template.model import Template

_UNDEFINED_RE = re.compile(r"^'([A-Za-z_]\w*)' is undefined")
_DEFINED_RES = [
    re.compile(r"\{%-?\s*set\s+([A-Za-z_]\w*)"),
    re.compile(r"\{%-?\s*for\s+([A-Za-z_][\w\s,]*?)\s+in\b"),
    re.compile(r"\{%-?\s*macro\s+\w+\s*\(([^)]*)\)"),
    re.compile(r"\{%-?\s*macro\s+([A-Za-z_]\w*)"),
    re.compile(r"\{%-?\s*import\s+[\"'][^\"']+[\"']\s+as\s+([A-Za-z_]\w*)"),
    re.compile(r"\{%-?\s*from\s+[\"'][^\"']+[\"']\s+import\s+([\w\s,]+?)\s*-?%\}"),
]
#: Names every template has.
_GLOBALS = ("kernel", "template", "range", "loop", "namespace", "dict", "lipsum", "cycler",
            "joiner", "true", "false", "none")
#: An undefined name used where a node goes: an argument of a kernel hook.
_NODE_USE_RE = r"kernel\.\w+\([^)]*\b{name}\b|(?:inputs|outputs)\s*=\s*\[[^\]]*\b{name}\b"
_TEMPLATE_SUFFIXES = (".jinja", ".j2")
MAX_HEADER_ACTIONS = 4


def defined_names(template: Template | None, source: str) -> list[str]:
    """Names a template can use: variant keys, nodes and variables of every sample, names
    its own ``{% set/for/macro/import %}`` define, Jinja's globals."""
    names: dict[str, None] = dict.fromkeys(_GLOBALS)
    if template is not None:
        for s in template.sample_list:
            names.update(dict.fromkeys(s.context()))
            for v in template.variants(s):
                names.update(dict.fromkeys(v.values))
    for rx in _DEFINED_RES:
        for m in rx.finditer(source):
            for part in re.split(r"[\s,=]+", m.group(1)):
                if re.fullmatch(r"[A-Za-z_]\w*", part) and part not in ("as",):
                    names[part] = None
    return list(names)


def _name_range(d: lsp.Diagnostic, name: str, lines: list[str]) -> lsp.Range | None:
    """The range of ``name`` the diagnostic points at (its range, else the first use of the
    name on its line)."""
    ln = d.range.start.line
    if ln >= len(lines):
        return None
    text = lines[ln]
    s, e = d.range.start.character, d.range.end.character
    if d.range.end.line == ln and text[s:e] == name:
        return d.range
    m = re.search(rf"\b{re.escape(name)}\b", text)
    return lsp.Range(lsp.Position(ln, m.start()), lsp.Position(ln, m.end())) if m else None


def did_you_mean(uri: str, d: lsp.Diagnostic, name: str, template: Template | None,
                 source: str) -> list[lsp.CodeAction]:
    rng = _name_range(d, name, source.splitlines())
    if rng is None:
        return []
    known = [n for n in defined_names(template, source) if n != name]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return [lsp.CodeAction(
        title=f"Did you mean '{m}'?", kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
        is_preferred=i == 0,
        edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(rng, m)]}))
        for i, m in enumerate(close)]


def _table_end(template: Template, table: str) -> int | None:
    """1-based line of the last key of ``[table]`` in the front matter."""
    lines = [ln for (t, _k), ln in template.front.lines.items() if t == table]
    return max(lines) if lines else None


def add_node(uri: str, d: lsp.Diagnostic, name: str, template: Template | None,
             source: str) -> list[lsp.CodeAction]:
    """Add ``name`` as a node to the samples that lack it (front matter only)."""
    if template is None or not template.front.start_line or \
            template.settings_file not in (None, template.path):
        return []
    line = source.splitlines()[d.range.start.line] if d.range.start.line < len(
        source.splitlines()) else ""
    if not (name[:1].isupper() or re.search(_NODE_USE_RE.format(name=re.escape(name)), line)):
        return []
    data = d.data if isinstance(d.data, dict) else {}
    where = set(data.get("samples") or [])
    lines = source.splitlines()
    edits, targets = [], []
    for s in template.samples:
        if name in s.nodes or (where and s.name not in where):
            continue
        end = _table_end(template, f"samples.{s.name}")
        if end is None:
            continue
        like = next((n for n in s.nodes if s.nodes[n] is not None), None)
        spec = '{ dtype = "float32", size = [1] }'
        if like is not None:
            key_line = template.front.line_of(f"samples.{s.name}", like)
            text = lines[key_line - 1] if 0 < key_line <= len(lines) else ""
            m = re.match(rf"\s*{re.escape(like)}\s*=\s*(\{{.*\}})\s*(#.*)?$", text)
            if m:
                spec = m.group(1)
        pos = lsp.Position(end, 0)  # the line after the table's last key
        edits.append(lsp.TextEdit(lsp.Range(pos, pos), f"{name} = {spec}\n"))
        targets.append(s.name)
    if not edits:
        return []
    what = f"sample '{targets[0]}'" if len(targets) == 1 else \
        f"samples {', '.join(repr(t) for t in targets)}"
    return [lsp.CodeAction(title=f"Add node '{name}' to {what}",
                           kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
                           edit=lsp.WorkspaceEdit(changes={uri: edits}))]


def open_headers(uri: str, d: lsp.Diagnostic) -> list[lsp.CodeAction]:
    """The headers an nvcc diagnostic's notes point into (not this template, not another
    template): one action each, the place the error was reported first."""
    try:
        here = uri_to_path(uri)
    except ValueError:
        return []
    seen: set[tuple[str, int]] = set()
    out = []
    related = sorted(d.related_information or [],
                     key=lambda r: "reported here" not in r.message)
    for r in related:
        try:
            path = uri_to_path(r.location.uri)
        except ValueError:
            continue
        line0 = r.location.range.start.line
        if path == here or path.name.endswith(_TEMPLATE_SUFFIXES) or (str(path), line0) in seen:
            continue
        seen.add((str(path), line0))
        title = f"Open {_short(path)}:{line0 + 1} ({r.message})"
        out.append(lsp.CodeAction(
            title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
            command=lsp.Command(title=title, command="cutlens.openLocation", arguments=[
                r.location.uri, line0, r.location.range.start.character])))
        if len(out) == MAX_HEADER_ACTIONS:
            break
    return out


def _short(path: Path) -> str:
    """``cute/layout.hpp`` rather than the whole site-packages path."""
    parts = path.parts
    for anchor in ("include", "cutlass", "cute"):
        if anchor in parts[:-1]:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            if anchor == "include":
                i += 1
            return "/".join(parts[i:])
    return path.name


def code_actions(uri: str, template: Template | None, source: str,
                 diagnostics: Sequence[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    """The quick fixes for the diagnostics the client sent (those under the cursor)."""
    out: list[lsp.CodeAction] = []
    for d in diagnostics:
        if not (d.source or "").startswith("cutlens"):
            continue
        data = d.data if isinstance(d.data, dict) else {}
        message = str(data.get("message", d.message))
        m = _UNDEFINED_RE.match(message)
        if m and d.source == "cutlens-jinja":
            out += did_you_mean(uri, d, m.group(1), template, source)
            out += add_node(uri, d, m.group(1), template, source)
        out += open_headers(uri, d)
    return out
