"""Where each table and key of a TOML text sits, so that a problem with a setting lands on
the line that says it (a config file, front matter, a per-template table)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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


@dataclass
class TomlIndex:
    """Lines of the tables and keys of one TOML text (1-based, in the file that holds it)."""

    #: First line of the TOML text in its file.
    start_line: int = 0
    #: ``("samples.square", None)`` -> line of ``[samples.square]``;
    #: ``("samples.square", "X")`` -> line of ``X = ...`` inside it.
    lines: dict[tuple[str, str | None], int] = field(default_factory=dict)
    #: Lines of each ``[[name]]`` array-of-tables entry, in order, by table name.
    arrays: dict[str, list[int]] = field(default_factory=dict)

    def line_of(self, table: str, key: str | None = None, default: int | None = None) -> int:
        """Line of ``[table]`` or of ``key`` in it; ``default`` (else the first line) when
        unknown."""
        if (table, key) in self.lines:
            return self.lines[(table, key)]
        if key is not None and (table, None) in self.lines:
            return self.lines[(table, None)]
        return default if default is not None else max(self.start_line, 1)

    def array_lines(self, table: str) -> list[int]:
        """Lines of the ``[[table]]`` entries, in order."""
        return self.arrays.get(table, [])


def index(toml_text: str, first_line: int = 1) -> TomlIndex:
    """Index ``toml_text`` whose first line is line ``first_line`` of its file."""
    idx = TomlIndex(start_line=first_line)
    table = ""
    for i, text in enumerate(toml_text.split("\n")):  # TOML ends lines at \n only
        line = first_line + i
        m = _TABLE_RE.match(text)
        if m and not _KEY_RE.match(text):
            table = ".".join(split_key(m.group(1)))
            if text.lstrip().startswith("[["):
                idx.arrays.setdefault(table, []).append(line)
                continue
            idx.lines.setdefault((table, None), line)
            continue
        k = _KEY_RE.match(text)
        if k:
            parts = split_key(k.group(1))
            key = ".".join(parts)
            # dotted keys: a.b = ... inside [t] registers (t.a, b) too
            idx.lines.setdefault((table, key), line)
            if len(parts) > 1:
                idx.lines.setdefault((".".join([table, *parts[:-1]]).strip("."), parts[-1]),
                                     line)
            # inline tables of a key become a table: [samples.x] Y = {...}
            idx.lines.setdefault((f"{table}.{key}".strip("."), None), line)
    return idx
