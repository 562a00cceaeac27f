"""Front matter: a leading ``{#- cutlens ... -#}`` Jinja comment holding TOML."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

_OPEN_RE = re.compile(r"\A\s*\{#-?\s*cutlens\b")
_CLOSE_RE = re.compile(r"-?#\}")
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE_RE = re.compile(r"""^\s*\[\[?\s*((?:"[^"]*"|'[^']*'|[^\]"'])+?)\s*\]\]?\s*(#.*)?$""")
_KEY_PART = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY_RE = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_PART_RE = re.compile(r"""\s*("[^"]*"|'[^']*'|[^."']+)\s*(?:\.|$)""")


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1] if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'" else part


def split_key(key: str) -> list[str]:
    """Split a dotted TOML key, honouring quotes: ``template."a.cu.jinja"`` -> 2 parts."""
    return [_unquote(p) for p in _PART_RE.findall(key) if p.strip()]


class FrontMatterError(ValueError):
    """Bad front matter, at a 1-based template line."""

    def __init__(self, message: str, line: int, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class FrontMatter:
    """Parsed TOML plus where each table and key sits in the template."""

    data: dict = field(default_factory=dict)
    #: 1-based template line of the comment's first line (0: no front matter).
    start_line: int = 0
    #: 1-based template line of the comment's last line.
    end_line: int = 0
    #: ``("samples.square", None)`` -> line of ``[samples.square]``;
    #: ``("samples.square", "X")`` -> line of ``X = ...`` inside it.
    lines: dict[tuple[str, str | None], int] = field(default_factory=dict)
    #: Lines of each ``[[variant]]`` table, in order.
    variant_list_lines: list[int] = field(default_factory=list)

    def line_of(self, table: str, key: str | None = None, default: int | None = None) -> int:
        """Template line of ``[table]`` or of ``key`` in it; the front matter's first line
        when unknown."""
        if (table, key) in self.lines:
            return self.lines[(table, key)]
        if key is not None and (table, None) in self.lines:
            return self.lines[(table, None)]
        return default if default is not None else max(self.start_line, 1)


def _index_lines(toml_text: str, first_line: int, fm: FrontMatter) -> None:
    table = ""
    for i, text in enumerate(toml_text.split("\n")):  # TOML ends lines at \n only
        line = first_line + i
        m = _TABLE_RE.match(text)
        if m and not _KEY_RE.match(text):
            table = ".".join(split_key(m.group(1)))
            if text.lstrip().startswith("[["):
                if table == "variant":
                    fm.variant_list_lines.append(line)
                continue
            fm.lines.setdefault((table, None), line)
            continue
        k = _KEY_RE.match(text)
        if k:
            parts = split_key(k.group(1))
            key = ".".join(parts)
            # dotted keys: a.b = ... inside [t] registers (t.a, b) too
            fm.lines.setdefault((table, key), line)
            if len(parts) > 1:
                fm.lines.setdefault((".".join([table, *parts[:-1]]).strip("."), parts[-1]), line)
            # inline tables of a key become a table: [samples.x] Y = {...}
            fm.lines.setdefault((f"{table}.{key}".strip("."), None), line)


def split(source: str) -> tuple[str | None, int, int]:
    """``(toml_text, first_line, last_line)`` of the front matter, or ``(None, 0, 0)``.

    ``first_line`` is the 1-based template line where the TOML text starts (the line of
    ``{#- cutlens``: the TOML begins after that word).
    """
    m = _OPEN_RE.match(source)
    if not m:
        return None, 0, 0
    close = _CLOSE_RE.search(source, m.end())
    start_line = source.count("\n", 0, m.end()) + 1
    if not close:
        raise FrontMatterError("front matter comment '{#- cutlens' is never closed with '#}'",
                               start_line)
    text = source[m.end():close.start()]
    end_line = source.count("\n", 0, close.end()) + 1
    return text, start_line, end_line


def parse(source: str) -> FrontMatter:
    """Parse the front matter of a template's source (an empty one when absent)."""
    text, start, end = split(source)
    if text is None:
        return FrontMatter()
    fm = FrontMatter(start_line=start, end_line=end)
    try:
        fm.data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        pos = _TOML_POS_RE.search(msg)
        if pos:
            line, col = int(pos.group(1)), int(pos.group(2))
        else:  # "(at end of document)": the last line of the TOML text (as TOML counts
            # lines: at "\n" only, not at the "\r" or "\u2028" that splitlines() splits at)
            line, col = text.rstrip().count("\n") + 1, 0
        msg = _TOML_POS_RE.sub("", msg).replace("(at end of document)", "at the end").strip()
        raise FrontMatterError(f"front matter: {msg}", start + line - 1, col) from None
    _index_lines(text, start, fm)
    return fm


def index(toml_text: str, first_line: int) -> FrontMatter:
    """Line index of TOML text that lives elsewhere (a per-template table in the config)."""
    fm = FrontMatter(start_line=first_line, end_line=first_line + toml_text.count("\n"))
    _index_lines(toml_text, first_line, fm)
    return fm
