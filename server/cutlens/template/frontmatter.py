"""Front matter: a leading ``{#- cutlens ... -#}`` Jinja comment holding TOML."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from cutlens.config import toml_index
from cutlens.config.toml_index import TomlIndex

_OPEN_RE = re.compile(r"\A\s*\{#-?\s*cutlens\b")
_CLOSE_RE = re.compile(r"-?#\}")
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


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

    data: dict[str, Any] = field(default_factory=dict)
    #: 1-based template line of the comment's first line (0: no front matter).
    start_line: int = 0
    #: 1-based template line of the comment's last line.
    end_line: int = 0
    index: TomlIndex = field(default_factory=TomlIndex)

    @property
    def lines(self) -> dict[tuple[str, str | None], int]:
        """Line of each ``(table, key)`` (``key`` None: the table's header)."""
        return self.index.lines

    @property
    def variant_list_lines(self) -> list[int]:
        """Lines of each ``[[variant]]`` table, in order."""
        return self.index.array_lines("variant")

    def line_of(self, table: str, key: str | None = None, default: int | None = None) -> int:
        """Template line of ``[table]`` or of ``key`` in it; the front matter's first line
        when unknown."""
        return self.index.line_of(table, key, default if default is not None
                                  else max(self.start_line, 1))


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
    fm.index = toml_index.index(text, start)
    return fm
