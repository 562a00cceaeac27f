"""Many rendered units as one translation unit, for one front-end pass over all of them.

Each unit keeps its own text, line for line, inside its own namespace, after a ``#line 1
"<its file>"``: what the front end says about it names its file and its own lines, which
its source map takes to the template. The ``#include``\\ s at the top of the units are
hoisted (once each, first seen first) and left as blank lines; the kernel's ``extern "C"``
name gets a suffix per unit (C linkage ignores namespaces). A unit that cannot be wrapped so
(an ``#include`` under an ``#if`` or after code, companions) is not batchable: it runs alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cutlens.nvcc.messages import CompilerMessage

_INCLUDE_RE = re.compile(r"^\s*#\s*include\b")
_IF_RE = re.compile(r"^\s*#\s*if")
_ENDIF_RE = re.compile(r"^\s*#\s*endif\b")
_PREAMBLE_RE = re.compile(r"^\s*(?:$|//|#\s*pragma\s+once\b)")

#: Errors a batch makes by putting units side by side (two units explicitly instantiating
#: one class, one C name defined twice...): they say nothing about the unit alone.
ARTIFACT_RE = re.compile(
    r"explicitly instantiated more than once|has already been defined|"
    r"more than one instance of|already has a definition|redefinition|"
    r"conflicts with a previous declaration|incompatible redefinition of macro")


@dataclass(frozen=True)
class Part:
    """One unit as the batch holds it."""

    path: Path  # the file its ``#line`` names (written too, for the source-map lookup)
    text: str  # the unit's own text (what its source map describes)
    includes: tuple[str, ...]  # its hoisted #include lines
    body: str  # its text with those lines blank and the kernel renamed


def split(text: str, kernel_name: str, suffix: str, path: Path) -> Part | None:
    """``text`` as a batch part, or None when its includes cannot be hoisted."""
    lines = text.split("\n")
    depth = 0
    includes: list[str] = []
    last_include = -1
    for i, line in enumerate(lines):
        if _IF_RE.match(line):
            depth += 1
        elif _ENDIF_RE.match(line):
            depth -= 1
        elif _INCLUDE_RE.match(line):
            if depth:
                return None
            includes.append(line.strip())
            last_include = i
    head = lines[:last_include + 1]
    if any(not (_INCLUDE_RE.match(ln) or _PREAMBLE_RE.match(ln)) for ln in head):
        return None  # a define or code before an include: its order matters
    body = ["" if _INCLUDE_RE.match(ln) else ln for ln in head] + lines[last_include + 1:]
    joined = "\n".join(body)
    if kernel_name:
        joined = re.sub(rf"\b{re.escape(kernel_name)}\b", f"{kernel_name}{suffix}", joined)
    return Part(path, text, tuple(includes), joined)


def assemble(parts: Sequence[Part], batch_path: Path) -> str:
    """The batch's text: the hoisted includes, then each part in its namespace."""
    includes = list(dict.fromkeys(inc for p in parts for inc in p.includes))
    out = [*includes]
    for i, p in enumerate(parts):
        out += [f"namespace cutlens_unit_{i} {{", f'#line 1 "{p.path}"', p.body,
                f'}}  // namespace cutlens_unit_{i}', f'#line {len(out) + 5} "{batch_path}"']
    return "\n".join(out) + "\n"


def owner(message: CompilerMessage, paths: Sequence[Path]) -> int | None:
    """The index of the part a message is about: its own file, else the innermost frame of
    its instantiation chain in a part (None: a hoisted header, or the batch itself)."""
    names = {str(p): i for i, p in enumerate(paths)}
    for file in [message.file, *(f.file for f in reversed(message.chain))]:
        if file is not None and file in names:
            return names[file]
    return None


def is_artifact(message: CompilerMessage) -> bool:
    """An error of the batch, not of the unit (see :data:`ARTIFACT_RE`)."""
    return bool(ARTIFACT_RE.search(message.message))


def stopped(messages: Sequence[CompilerMessage], output: str) -> bool:
    """The front end gave up before the end (a catastrophic error, the error limit): the
    units after the last message were never looked at."""
    return (any(m.level in ("catastrophic error", "fatal error") for m in messages)
            or "Error limit reached" in output or "Compilation terminated" in output)
