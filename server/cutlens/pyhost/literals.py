"""Where a template's text lives in Python source: the string literal (``ast``) whose value
it is, and, for each line of the text, the ``.py`` line and column it starts at.

Handled: plain, raw and triple-quoted literals, implicit concatenation (``"a" "b"``), escape
sequences and escaped newlines (a ``\\`` at a line's end joins two source lines into one
template line), and text made from a literal by ``textwrap.dedent``, ``.strip()``/
``.lstrip()``/``.rstrip()`` or any cut whose place in the literal is unique.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

#: A position in a ``.py`` file: 1-based line, 0-based column.
Pos = tuple[int, int]

_PREFIX_RE = re.compile(r"^([rRbBuUfF]*)('''|\"\"\"|'|\")")
_SIMPLE_ESCAPES = {"\n": "", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
                   "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@dataclass
class Literal:
    """A string literal's value and the source position of each of its characters."""

    file: str
    value: str
    #: ``positions[i]``: where ``value[i]`` comes from (len(value) + 1 entries: the last is
    #: the position just after the literal's text).
    positions: list[Pos] = field(default_factory=list)
    #: Line of the statement holding the literal (e.g. ``NAME = jinja2.Template(...)``).
    line: int = 0


def _token_chars(token: str, start: Pos) -> list[tuple[str, Pos]]:
    """The characters one string token contributes to a value, each with its position."""
    m = _PREFIX_RE.match(token)
    if not m:
        return []
    prefix, quote = m.group(1).lower(), m.group(2)
    if "b" in prefix or "f" in prefix:
        raise ValueError("not a plain str literal")
    body_start = len(m.group(0))
    body = token[body_start:len(token) - len(quote)]
    raw = "r" in prefix
    # the position of each character of ``token`` in the file
    line, col = start
    pos: list[Pos] = []
    for ch in token:
        pos.append((line, col))
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 1
    out: list[tuple[str, Pos]] = []
    i = 0
    while i < len(body):
        ch = body[i]
        p = pos[body_start + i]
        if ch != "\\" or raw:
            out.append((ch, p))
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _SIMPLE_ESCAPES:
            if _SIMPLE_ESCAPES[nxt]:
                out.append((_SIMPLE_ESCAPES[nxt], p))
            i += 2
        elif nxt == "x":
            out.append((chr(int(body[i + 2:i + 4], 16)), p))
            i += 4
        elif nxt in "uU":
            n = 4 if nxt == "u" else 8
            out.append((chr(int(body[i + 2:i + 2 + n], 16)), p))
            i += 2 + n
        elif nxt == "N":
            end = body.index("}", i)
            import unicodedata

            out.append((unicodedata.lookup(body[i + 3:end]), p))
            i = end + 1
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1:])
            assert digits is not None
            out.append((chr(int(digits.group(), 8)), p))
            i += 1 + len(digits.group())
        else:  # an unknown escape keeps its backslash
            out.append(("\\", p))
            i += 1
    return out


def _literal_chars(source_lines: list[str], node: ast.Constant) -> Literal | None:
    """The characters of a (possibly implicitly concatenated) str constant with positions."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    seg_lines = source_lines[node.lineno - 1:node.end_lineno]
    if not seg_lines:
        return None
    seg_lines = list(seg_lines)
    seg_lines[-1] = seg_lines[-1][:node.end_col_offset]
    seg_lines[0] = seg_lines[0][node.col_offset:]
    segment = "\n".join(seg_lines)
    chars: list[tuple[str, Pos]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(segment).readline):
            if tok.type == tokenize.STRING:
                line = tok.start[0] + node.lineno - 1
                col = tok.start[1] + (node.col_offset if tok.start[0] == 1 else 0)
                chars += _token_chars(tok.string, (line, col))
    except (tokenize.TokenError, SyntaxError, ValueError, IndexError):
        return None
    value = "".join(c for c, _ in chars)
    if value != node.value:
        return None  # something we do not model (an f-string piece...): no positions
    end = (node.end_lineno, node.end_col_offset)
    return Literal("", value, [p for _, p in chars] + [end])


@dataclass
class LiteralRef:
    """A str literal found by ``ast``: its value and node; positions computed on demand."""

    file: str
    value: str
    node: ast.Constant
    line: int
    _literal: Literal | None = None

    def literal(self, lines: list[str]) -> Literal | None:
        if self._literal is None:
            lit = _literal_chars(lines, self.node)
            if lit is not None:
                lit.file, lit.line = self.file, self.line
            self._literal = lit
        return self._literal


def literals_of(file: str, text: str, min_length: int = 1) -> list[LiteralRef]:
    """Every str literal of a Python source (at least ``min_length`` characters long)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    out = []
    for stmt in ast.walk(tree):
        if not isinstance(stmt, ast.stmt):
            continue
        for node in ast.iter_child_nodes(stmt):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and \
                        len(sub.value) >= min_length:
                    out.append(LiteralRef(file, sub.value, sub, stmt.lineno))
    seen: set[int] = set()  # a literal nested in two statements: keep the innermost
    unique = []
    for ref in reversed(out):
        if id(ref.node) not in seen:
            seen.add(id(ref.node))
            unique.append(ref)
    return unique[::-1]


@dataclass
class Origin:
    """Where each character of a template's text comes from in a ``.py`` file."""

    file: str
    #: ``chars[i]``: (line, column) of the template text's character ``i`` (one more entry
    #: for the position just after the text).
    chars: list[Pos]
    #: Offsets of the template's lines in its text.
    starts: list[int] = field(default_factory=list)
    #: Line of the statement that holds the literal.
    statement_line: int = 0

    def position(self, line: int, column: int = 0) -> Pos:
        """The ``.py`` position of 1-based template ``line``, 0-based ``column``."""
        if not self.chars or not self.starts:
            return (self.statement_line or 1, 0)
        k = min(max(line, 1), len(self.starts)) - 1
        i = min(self.starts[k] + max(column, 0), len(self.chars) - 1)
        return self.chars[i]


def _starts_of(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def _origin(lit: Literal, text: str, chars: list[Pos]) -> Origin:
    return Origin(lit.file, chars, _starts_of(text), lit.line)


def match(text: str, lit: Literal) -> Origin | None:
    """The origin of ``text`` in ``lit``: its value, a dedent/strip of it, or a unique cut of
    either; None when ``text`` does not come from ``lit``."""
    v, pos = lit.value, lit.positions
    if text == v:
        return _origin(lit, text, list(pos))
    if not text:
        return None
    at = v.find(text)
    if at >= 0 and v.find(text, at + 1) < 0:  # a unique cut: strip(), a split piece...
        return _origin(lit, text, pos[at:at + len(text) + 1])
    dedented = textwrap.dedent(v)
    at = dedented.find(text)
    if at < 0 or dedented.find(text, at + 1) >= 0:
        return None
    # dedent keeps the lines and removes a prefix of each: dedented character j of line L
    # is the literal's character (start of L) + (removed from L) + j
    v_starts = _starts_of(v)
    to_v: list[int] = []
    for ln, (vl, dl) in enumerate(zip(v.split("\n"), dedented.split("\n"), strict=True)):
        to_v += [v_starts[ln] + len(vl) - len(dl) + j for j in range(len(dl) + 1)]
    chars = [pos[min(to_v[i], len(pos) - 1)]
             for i in range(at, min(at + len(text) + 1, len(to_v)))]
    return _origin(lit, text, chars)


@dataclass
class _File:
    text: str
    lines: list[str]
    refs: list[LiteralRef]
    by_value: dict[str, list[LiteralRef]]


@dataclass
class LiteralIndex:
    """The string literals of some ``.py`` files, looked up by the text made from them."""

    files: dict[str, _File] = field(default_factory=dict)

    def add(self, file: str, text: str) -> None:
        if file in self.files and self.files[file].text == text:
            return
        refs = literals_of(file, text, min_length=2)
        by_value: dict[str, list[LiteralRef]] = {}
        for r in refs:
            by_value.setdefault(r.value, []).append(r)
        self.files[file] = _File(text, text.split("\n"), refs, by_value)

    def exact(self, text: str, files: list[str]) -> Origin | None:
        """The origin of ``text`` that is exactly a literal's value (in ``files``' order)."""
        for f in files:
            entry = self.files.get(f)
            for ref in (entry.by_value.get(text, []) if entry else []):
                lit = ref.literal(entry.lines)  # type: ignore[union-attr]
                if lit is not None:
                    return match(text, lit)
        return None

    def near(self, text: str, files: list[str]) -> Origin | None:
        """The origin of ``text`` made from a literal (dedent, strip, a unique cut)."""
        probe = next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
        for f in files:
            entry = self.files.get(f)
            for ref in entry.refs if entry else []:
                if len(ref.value) + 1 < len(text) or probe not in ref.value:
                    continue
                lit = ref.literal(entry.lines)  # type: ignore[union-attr]
                o = match(text, lit) if lit is not None else None
                if o is not None:
                    return o
        return None

    def find(self, text: str, prefer: str | None = None) -> Origin | None:
        """The origin of a template's ``text``: an exact literal first (in ``prefer``'s
        file first), then a dedent/strip/unique cut of one."""
        files = sorted(self.files, key=lambda f: f != prefer)
        return self.exact(text, files) or self.near(text, files)


def read_source(path: str | Path, overlays: dict[str, str] | None = None) -> str | None:
    """A ``.py`` file's text (unsaved editor text first)."""
    key = str(path)
    if overlays and key in overlays:
        return overlays[key]
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
