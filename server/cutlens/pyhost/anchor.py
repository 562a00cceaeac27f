"""Where each line of a case's text came from, when Python built it from rendered pieces.

A case's ``source`` that is a render's own result carries its source map. Text Python made
from renders (``.strip()``, ``"\\n".join(...)``, string formatting) is anchored: each render of
the run, largest first, is looked for in the text (as is, then stripped) and the lines it
covers take its frames. The same search refines a line an outer template printed from a
plain string (its innermost frame is the ``{{ }}``): when that string is a render's text, the
line maps on into that render. Lines no render explains map to the driver line that produced
the case.
"""

from __future__ import annotations

import difflib

from cutlens.pyhost.interpose import MappedStr, Registry
from cutlens.render.sourcemap import Frame

Frames = tuple[Frame, ...]
#: A render shorter than this is not anchored on its own (it would match by accident).
MIN_ANCHOR = 12


def _lines_of(text: str) -> int:
    """How many rendered lines a text has (as the source map counts them)."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _by_size(reg: Registry) -> list[MappedStr]:
    """The run's renders, largest first, each once (sorted again only when there are new)."""
    cached = getattr(reg, "_by_size", None)
    if cached is None or cached[0] != len(reg.renders):
        cached = (len(reg.renders), sorted({id(r): r for r in reg.renders}.values(), key=len,
                                          reverse=True))
        reg._by_size = cached  # type: ignore[attr-defined]
    return cached[1]


def _render_frames(reg: Registry, r: MappedStr) -> list[Frames]:
    return [tuple(reg.real(f) for f in fr) for fr in r.source_map.lines]


def _place(text: str, piece: MappedStr, core: str, covered: list[bool],
           frames: list[Frames | None], reg: Registry, base: Frames = ()) -> bool:
    """Anchor ``core`` (``piece`` or a strip of it) at its first place in ``text`` whose
    lines are not covered yet; True when it was placed."""
    start = 0
    skip = piece.count("\n", 0, piece.find(core))  # lines strip() removed in front
    while True:
        at = text.find(core, start)
        if at < 0:
            return False
        first = text.count("\n", 0, at)
        n = _lines_of(core) or 1
        # a piece that starts after other text on its line does not own that line
        lead = text[text.rfind("\n", 0, at) + 1:at]
        k0 = 0 if not lead.strip() else 1
        span = range(first + k0, min(first + n, len(frames)))
        if span and not any(covered[i] for i in span):
            inner = _render_frames(reg, piece)
            for k, i in enumerate(span, start=k0):
                fr = inner[skip + k] if skip + k < len(inner) else ()
                frames[i] = base + fr
                covered[i] = True
            return True
        start = at + 1


def line_frames(text: str, reg: Registry, fallback: Frame,
                exclude: set[int] | None = None) -> list[Frames]:
    """The frames behind each line of ``text`` (outermost first)."""
    n = _lines_of(text)
    if isinstance(text, MappedStr) and len(text.source_map.lines) == n:
        frames: list[Frames | None] = list(_render_frames(reg, text))
        refine(text, frames, reg, exclude or {id(text)})
        return [f or (fallback,) for f in frames]
    frames = [None] * n
    covered = [False] * n
    for r in _by_size(reg):
        if exclude and id(r) in exclude:
            continue
        for core in dict.fromkeys((str.__str__(r), r.strip())):
            if len(core) >= MIN_ANCHOR and _place(text, r, core, covered, frames, reg):
                break
        if all(covered):
            break
    if not all(covered):
        align(text, frames, covered, reg, exclude or set())
    refine(text, frames, reg, exclude or set())
    return [f or (fallback,) for f in frames]


def _norm(line: str) -> str:
    return " ".join(line.split())


def align(text: str, frames: list[Frames | None], covered: list[bool], reg: Registry,
          exclude: set[int]) -> None:
    """Text Python reworked line by line (dedented, blank lines emptied, a name replaced —
    Inductor's ``IndentedBuffer.splice``): the lines of the largest renders aligned with
    ``difflib``; equal lines, and lines of same-sized replaced runs, take the render's."""
    lines = [_norm(ln) for ln in str.__str__(text).split("\n")][:len(frames)]
    for r in _by_size(reg):
        if id(r) in exclude or len(r) < MIN_ANCHOR:
            continue
        theirs = [_norm(ln) for ln in str.__str__(r).split("\n")]
        sm = difflib.SequenceMatcher(None, lines, theirs, autojunk=False)
        if sm.ratio() < 0.5:
            continue
        inner = _render_frames(reg, r)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                for k in range(i2 - i1):
                    i, j = i1 + k, j1 + k
                    if tag == "replace" and difflib.SequenceMatcher(
                            None, lines[i], theirs[j]).ratio() < 0.6:
                        continue  # a different line, not the same one edited
                    if not covered[i] and j < len(inner):
                        frames[i] = inner[j]
                        covered[i] = True
        if all(covered):
            return


def refine(text: str, frames: list[Frames | None], reg: Registry, exclude: set[int]) -> None:
    """Map on the lines an outer template printed from a plain string that a render made."""
    lines = str.__str__(text).split("\n")
    i = 0
    while i < len(frames):
        fr = frames[i]
        if not fr or fr[-1].kind != "expr":
            i += 1
            continue
        j = i
        while j + 1 < len(frames) and frames[j + 1] == fr:
            j += 1
        chunk = "\n".join(lines[i:j + 1])
        sub: list[Frames | None] = [None] * (j - i + 1)
        covered = [False] * len(sub)
        for r in _by_size(reg):
            if id(r) in exclude or len(r) >= len(text):
                continue
            for core in dict.fromkeys((str.__str__(r), r.strip())):
                if len(core) >= MIN_ANCHOR and _place(chunk, r, core, covered, sub, reg,
                                                      base=fr):
                    break
            if all(covered):
                break
        if not all(covered):
            _place_files(chunk, sub, covered, reg, fr)
        for k, s in enumerate(sub):
            if s is not None:
                frames[i + k] = s
        i = j + 1


def _place_files(chunk: str, sub: list[Frames | None], covered: list[bool], reg: Registry,
                 base: Frames) -> None:
    """Lines an outer template printed from a file's text that the driver read (a header
    pasted into the unit): they map into that file."""
    lines = chunk.split("\n")
    for path in reg.reads:
        text = reg.read_text(path)
        if not text:
            continue
        for core in dict.fromkeys((chunk, chunk.strip())):
            if len(core) < MIN_ANCHOR:
                continue
            at = text.find(core)
            if at < 0:
                continue
            first_line = text.count("\n", 0, at) + 1
            skip = chunk.count("\n", 0, chunk.find(core))
            for k in range(_lines_of(core) or 1):
                if skip + k < len(lines) and not covered[skip + k]:
                    sub[skip + k] = (*base, Frame(path, first_line + k, 0, "text"))
                    covered[skip + k] = True
            return
