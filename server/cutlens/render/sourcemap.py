"""Source maps: every rendered line back to the template line (and call sites) behind it.

The renderer plants invisible markers in Jinja's output (see ``render.MarkSource``):
``POINT`` before each piece of literal template text, ``BEGIN``/``END`` around each
``{{ expression }}`` and ``{% include %}``. :func:`build` strips them and records, for
each rendered line, the stack of frames active at its first non-blank character:
outermost (the root template's ``{{ m() }}`` call site) to innermost (the macro's text).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NamedTuple

POINT, POINT_END = "\ue000", "\ue001"
BEGIN, BEGIN_END = "\ue002", "\ue003"
END = "\ue004"
INCLUDE = "\ue005"  # BEGIN of an {% include %}: the same, with frame kind "include"
MARKER_RE = re.compile(f"{POINT}(\\d+),(\\d+),(\\d+){POINT_END}|"
                       f"([{BEGIN}{INCLUDE}])(\\d+),(\\d+),(\\d+){BEGIN_END}|{END}")
_STRIP_RE = re.compile(f"[{POINT}{BEGIN}{INCLUDE}][0-9,]*[{POINT_END}{BEGIN_END}]|{END}")


def point(fid: int, line: int, col: int) -> str:
    return f"{POINT}{fid},{line},{col}{POINT_END}"


def begin(fid: int, line: int, col: int, include: bool = False) -> str:
    return f"{INCLUDE if include else BEGIN}{fid},{line},{col}{BEGIN_END}"


def strip(text: str) -> str:
    """Text without markers (for values handed to Python hooks)."""
    if POINT in text or BEGIN in text or END in text or INCLUDE in text:
        return _STRIP_RE.sub("", text)
    return text


class Frame(NamedTuple):
    """A template position: 1-based ``line``, 0-based ``column`` (0 also when unknown).

    ``kind`` is ``"text"`` for literal template text, ``"expr"`` for a ``{{ }}`` and
    ``"include"`` for an ``{% include %}`` whose output this is.
    """

    file: str
    line: int
    column: int = 0
    kind: str = "text"


@dataclass
class Span:
    """Rendered text ``[start, end)`` (offsets into the rendered string) that an
    expression at ``frame`` produced."""

    frame: Frame
    start: int
    end: int


@dataclass
class SourceMap:
    """Per rendered line (0-based index), the frames behind it, outermost first."""

    lines: list[tuple[Frame, ...]] = field(default_factory=list)
    #: Offsets of each rendered line's start (for offset -> line).
    line_starts: list[int] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    def frames(self, line: int) -> tuple[Frame, ...]:
        """Frames of 1-based rendered ``line`` (empty when out of range)."""
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1]
        return ()

    def origin(self, line: int, file: str | None = None) -> Frame | None:
        """Where 1-based rendered ``line`` came from: the innermost frame, or the innermost
        frame in ``file`` when given (e.g. the include line in the root template)."""
        fr = self.frames(line)
        if file is not None:
            fr = tuple(f for f in fr if f.file == file)
        return fr[-1] if fr else None

    def rendered_lines(self, file: str, line: int) -> list[int]:
        """1-based rendered lines that template ``file:line`` produced (any frame)."""
        return [i + 1 for i, fr in enumerate(self.lines)
                if any(f.file == file and f.line == line for f in fr)]

    def line_of_offset(self, offset: int) -> int:
        """1-based rendered line holding ``offset``."""
        return bisect_right(self.line_starts, offset)

    def expression_at(self, file: str, line: int, column: int) -> tuple[Frame, list[Span]]:
        """The ``{{ }}`` on template ``file:line`` nearest before ``column``, and what it
        rendered to each time it ran."""
        cands = sorted({s.frame for s in self.spans if s.frame.file == file
                        and s.frame.line == line}, key=lambda f: f.column)
        if not cands:
            raise KeyError((file, line))
        best = cands[0]
        for f in cands:
            if f.column <= column:
                best = f
        return best, [s for s in self.spans if s.frame == best]

    def files(self) -> set[str]:
        return {f.file for fr in self.lines for f in fr}


def build(marked: str, files: list[str]) -> tuple[str, SourceMap]:
    """Strip the markers from ``marked`` and build its :class:`SourceMap`.

    ``files`` maps the markers' file ids to paths.
    """
    out: list[str] = []
    smap = SourceMap()
    lines = smap.lines
    line_starts = smap.line_starts
    stack: list[Frame] = []  # outermost first; "expr"/"include" entries are call sites
    open_spans: list[tuple[Frame, int]] = []
    snap: tuple[Frame, ...] | None = None  # tuple(stack), rebuilt after a change
    pos = 0  # offset in the clean text
    line_pending = True  # the current rendered line has no non-blank char yet
    line_frames: tuple[Frame, ...] = ()
    #: Frames where the current line's first (blank) text came from: the origin of a last
    #: line without a newline that stays blank (the stack may be empty by the end).
    blank_frames: tuple[Frame, ...] | None = None
    line_starts.append(0)

    def emit(text: str) -> None:
        nonlocal pos, line_pending, line_frames, snap, blank_frames
        nl = text.find("\n")
        if nl < 0:
            if line_pending and text:
                if not text.isspace():
                    line_frames = snap if snap is not None else (snap := tuple(stack))
                    line_pending = False
                elif blank_frames is None:
                    blank_frames = snap if snap is not None else (snap := tuple(stack))
            out.append(text)
            pos += len(text)
            return
        start = 0
        while nl >= 0:
            if line_pending:  # a blank line, or one whose first non-blank char is here
                line_frames = snap if snap is not None else (snap := tuple(stack))
            lines.append(line_frames)
            line_pending, blank_frames = True, None
            if stack and stack[-1].kind == "text":
                top = stack[-1]
                stack[-1] = Frame(top.file, top.line + 1, 0, "text")
                snap = None
            start = nl + 1
            line_starts.append(pos + start)
            nl = text.find("\n", start)
        rest = text[start:]
        if rest and not rest.isspace():
            line_frames = snap if snap is not None else (snap := tuple(stack))
            line_pending = False
        elif rest:
            blank_frames = snap if snap is not None else (snap := tuple(stack))
        out.append(text)
        pos += len(text)

    last = 0
    for m in MARKER_RE.finditer(marked):
        if m.start() > last:
            emit(marked[last:m.start()])
        last = m.end()
        snap = None
        g = m.groups()
        if g[0] is not None:  # POINT: literal text from here on
            f = Frame(files[int(g[0])], int(g[1]), int(g[2]), "text")
            if stack and stack[-1].kind == "text":
                stack[-1] = f
            else:
                stack.append(f)
        elif g[3] is not None:  # BEGIN: an expression's (or include's) output follows
            f = Frame(files[int(g[4])], int(g[5]), int(g[6]),
                      "include" if g[3] == INCLUDE else "expr")
            if stack and stack[-1].kind == "text":
                stack.pop()
            stack.append(f)
            open_spans.append((f, pos))
        else:  # END
            while stack and stack[-1].kind == "text":
                stack.pop()
            if stack:
                stack.pop()
            if open_spans:
                fr, begin_pos = open_spans.pop()
                smap.spans.append(Span(fr, begin_pos, pos))
    if last < len(marked):
        emit(marked[last:])
    text = "".join(out)
    if text and not text.endswith("\n"):  # a last line without a newline
        if not line_pending:
            lines.append(line_frames)
        else:
            lines.append(blank_frames if blank_frames is not None else tuple(stack))
    else:
        line_starts.pop()
    return text, smap
