"""Which ``#include`` line of a rendered unit brings a header in.

A message about a header that has no instantiation chain into the unit (a deprecation
warning in plain header code, a ptxas spill warning of a header's kernel) belongs on the
unit's ``#include`` line that reached the header first, as gcc's "In file included from"
says. nvcc does not say it (its host pass compiles cudafe++'s flattened output), so the
include graph is read here: the rendered files' ``#include`` lines, resolved like the
preprocessor does (the includer's folder for ``"..."``, then ``-I``, then ``-isystem``), and
every header they reach, depth first in text order (each header once, as ``#pragma once``
does). Conditional compilation is not evaluated: an ``#include`` under a false ``#if`` still
counts. Headers that cannot be found (the toolkit's, the standard library's) are skipped.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterable, Sequence

_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)


def include_names(text: str) -> list[tuple[int, bool, str]]:
    """``(1-based line, quoted, name)`` of every ``#include`` in ``text``."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1) == '"', m.group(2).strip())
            for m in _INCLUDE_RE.finditer(text)]


@functools.lru_cache(maxsize=8192)
def _header_includes(path: str, _mtime_ns: int, _size: int) -> tuple[tuple[bool, str], ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ()
    return tuple((quoted, name) for _, quoted, name in include_names(text))


def header_includes(path: str) -> tuple[tuple[bool, str], ...]:
    """The ``#include`` names of a header on disk (cached by its mtime and size)."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return _header_includes(path, st.st_mtime_ns, st.st_size)


def include_dirs(command: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The ``-iquote`` (through ``-Xcompiler``), ``-I`` and ``-isystem`` folders of an nvcc
    command line, in order."""
    quote: list[str] = []
    normal: list[str] = []
    system: list[str] = []
    flags = (("-iquote", quote), ("-isystem", system), ("--include-path", normal),
             ("-I", normal))
    i = 0
    while i < len(command):
        arg = command[i]
        if arg.startswith(("-Xcompiler=", "--compiler-options=")):
            parts = arg.split("=", 1)[1].split(",")
            quote += [d for k, d in itertools.pairwise(parts) if k == "-iquote"]
            i += 1
            continue
        for flag, into in flags:
            if arg == flag:
                if i + 1 < len(command):
                    into.append(command[i + 1])
                    i += 1
                break
            if arg.startswith(flag):
                into.append(arg[len(flag):].removeprefix("="))
                break
        i += 1
    return quote, normal, system


class IncludeGraph:
    """The headers a unit's rendered files reach, each with the rendered ``#include`` line
    that reaches it first: ``(rendered file, 1-based line)``."""

    def __init__(self, rendered: dict[str, str], root: str, command: Sequence[str]) -> None:
        #: Rendered files by path (the unit's TU first, then its companions).
        self.rendered = rendered
        quote, normal, system = include_dirs(command)
        self._quote, self._angle = [*quote, *normal, *system], [*normal, *system]
        self.via: dict[str, tuple[str, int]] = {}
        #: Headers in the order the preprocessor would first open them.
        self.order: list[str] = []
        self._seen: set[str] = set()
        self._real: dict[str, str] | None = None
        self._walk_rendered(root)

    def _resolve(self, includer: str, quoted: bool, name: str) -> str | None:
        if os.path.isabs(name):
            return os.path.normpath(name) if os.path.isfile(name) else None
        dirs: Iterable[str] = ([os.path.dirname(includer), *self._quote] if quoted
                               else self._angle)
        for d in dirs:
            cand = os.path.normpath(os.path.join(d, name))
            if cand in self.rendered or os.path.isfile(cand):
                return cand
        return None

    def _walk_rendered(self, path: str) -> None:
        self._seen.add(path)
        for line, quoted, name in include_names(self.rendered[path]):
            target = self._resolve(path, quoted, name)
            if target is not None and target not in self._seen:
                self._walk(target, (path, line))

    def _walk(self, path: str, via: tuple[str, int]) -> None:
        if path in self.rendered:
            self._walk_rendered(path)
            return
        stack: list[tuple[str, Iterable[tuple[bool, str]]]] = []
        self._seen.add(path)
        self.via[path] = via
        self.order.append(path)
        stack.append((path, iter(header_includes(path))))
        while stack:
            cur, todo = stack[-1]
            for quoted, name in todo:
                target = self._resolve(cur, quoted, name)
                if target is None or target in self._seen:
                    continue
                if target in self.rendered:
                    self._walk_rendered(target)
                    continue
                self._seen.add(target)
                self.via[target] = via
                self.order.append(target)
                stack.append((target, iter(header_includes(target))))
                break
            else:
                stack.pop()

    def include_line(self, header: str) -> tuple[str, int] | None:
        """The rendered ``#include`` line that brings ``header`` in (None: not reached)."""
        hit = self.via.get(header) or self.via.get(os.path.normpath(header))
        if hit is not None:
            return hit
        if self._real is None:  # the same file by another path (a symlink)
            self._real = {os.path.realpath(p): p for p in self.via}
        key = self._real.get(os.path.realpath(header))
        return self.via[key] if key is not None else None

    def defining_header(self, pattern: re.Pattern[str]) -> tuple[str, int] | None:
        """The first header (in include order) with a line matching ``pattern``: its path
        and 1-based line."""
        for path in self.order:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            m = pattern.search(text)
            if m:
                return path, text.count("\n", 0, m.start()) + 1
        return None
