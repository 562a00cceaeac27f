"""Reading a template's text around the cursor: Jinja regions, words, imports, macros."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*")
_IMPORT_RE = re.compile(r"""\{%-?\s*import\s+["']([^"']+)["']\s+as\s+(\w+)""")
_FROM_RE = re.compile(r"""\{%-?\s*from\s+["']([^"']+)["']\s+import\s+([\w\s,]+?)\s*-?%\}""")
_MACRO_RE = re.compile(r"\{%-?\s*macro\s+(\w+)\s*\(([^)]*)\)")
_BLOCK_RE = re.compile(r"\{%-?\s*block\s+(\w+)")
_REF_RE = re.compile(r"""\{%-?\s*(include|import|extends|from)\s+(["'])([^"']+)\2""")


@dataclass(frozen=True)
class Region:
    """A Jinja region on a line: ``expr`` ({{ }}), ``stmt`` ({% %}) or ``comment``."""

    kind: str
    start: int  # column of the opening delimiter
    end: int  # column after the closing delimiter (or end of line)


def region_at(line: str, col: int) -> Region | None:
    """The ``{{ }}`` / ``{% %}`` / ``{# #}`` region containing column ``col``."""
    for open_, close, kind in (("{{", "}}", "expr"), ("{%", "%}", "stmt"),
                               ("{#", "#}", "comment")):
        start = line.rfind(open_, 0, col + 1)
        while start >= 0:
            end = line.find(close, start + 2)
            end = len(line) if end < 0 else end + 2
            if start <= col < end or (end == len(line) and col == end):
                return Region(kind, start, end)
            start = line.rfind(open_, 0, start)
    return None


def word_at(line: str, col: int) -> tuple[str, int, int] | None:
    """The dotted word under ``col`` (``kernel.stride``) and its span; the part up to and
    including the segment under the cursor."""
    for m in _WORD_RE.finditer(line):
        if m.start() <= col <= m.end():
            word = m.group(0)
            # cut after the segment under the cursor: "kernel.stride" at "kernel" -> kernel
            rel = col - m.start()
            nxt = word.find(".", rel)
            if nxt >= 0:
                word = word[:nxt]
            return word, m.start(), m.start() + len(word)
    return None


def prefix_before(line: str, col: int) -> str:
    """The dotted word (possibly ending in ``.``) right before ``col``, for completion."""
    m = re.search(r"[A-Za-z_0-9.]*$", line[:col])
    return m.group(0) if m else ""


def imports(source: str) -> dict[str, str]:
    """``{% import "x" as m %}`` aliases: alias -> template name."""
    return {alias: name for name, alias in _IMPORT_RE.findall(source)}


def from_imports(source: str) -> dict[str, str]:
    """``{% from "x" import a, b %}``: name -> template name."""
    out = {}
    for name, names in _FROM_RE.findall(source):
        for n in names.split(","):
            n = n.strip().split(" as ")[-1].strip()
            if n:
                out[n] = name
    return out


def macros(source: str) -> dict[str, tuple[int, str]]:
    """Macros defined in ``source``: name -> (0-based line, argument list)."""
    out = {}
    for i, line in enumerate(source.splitlines()):
        for m in _MACRO_RE.finditer(line):
            out[m.group(1)] = (i, m.group(2).strip())
    return out


def blocks(source: str) -> dict[str, int]:
    out = {}
    for i, line in enumerate(source.splitlines()):
        for m in _BLOCK_RE.finditer(line):
            out[m.group(1)] = i
    return out


def reference_at(line: str, col: int) -> str | None:
    """The template name of an include/import/extends/from statement under ``col``."""
    for m in _REF_RE.finditer(line):
        if m.start() <= col <= m.end():
            return m.group(3)
    return None
