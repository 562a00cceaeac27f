"""Which template line of a multi-line statement an error is about.

EDG names only the line where an instantiating statement starts (``instantiation of
"Run<...>" [with HEAD_DIM=128, DTypeO=float] at line 4``). When the statement spans several
template lines (FlashInfer's explicit instantiations put one argument per line), the line
that matters is the one whose ``{{ expression }}`` rendered the offending argument: the
template parameter the error's own source line (or message) names, bound in the chain's
``[with NAME=value]`` lists, matched against what the statement's expressions rendered.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

from cutlens.render.sourcemap import Frame, SourceMap, Span

_WITH_RE = re.compile(r"\[with (.*)\]\"?\s*$")
_IDENT_RE = IDENT_RE = re.compile(r"[A-Za-z_]\w*")
_QUALIFIER_RE = re.compile(r"\b[A-Za-z_]\w*::")
_INT_SUFFIX_RE = re.compile(r"\b(\d+)[uUlL]+\b")


def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside ``<>``, ``()``, ``[]``, ``{}``."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth = max(depth - 1, 0)
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def bindings(frame_texts: Iterable[str]) -> list[tuple[str, str]]:
    """``(name, value)`` of every ``[with NAME=value, ...]`` in the chain's frames, innermost
    frame first."""
    out: list[tuple[str, str]] = []
    for text in frame_texts:
        m = _WITH_RE.search(text)
        if not m:
            continue
        for part in split_top(m.group(1)):
            name, eq, value = part.partition("=")
            if eq and _IDENT_RE.fullmatch(name.strip()):
                out.append((name.strip(), value.strip()))
    return out


def normalize(value: str) -> str:
    """A C++ argument as text, comparable however EDG and the template spell it: no
    namespace qualifiers, no integer suffixes, no leading underscores, no blanks."""
    v = _QUALIFIER_RE.sub("", value)
    v = _INT_SUFFIX_RE.sub(r"\1", v)
    v = re.sub(r"\b_+(?=[A-Za-z])", "", v)
    return re.sub(r"\s+", "", v)


def offending_values(bound: list[tuple[str, str]], said: str) -> list[str]:
    """The values of the bound template parameters that ``said`` (the error's source line
    and message) names — by the parameter's name (``sizeof(DTypeO)``), or by a type it is
    bound to (``class "Params" has no member ...``) — innermost binding first. Failing
    those, a constant derived from one parameter: ``NUM_MMA_D_QK`` names the only bound
    parameter ending in ``_QK``."""
    named = set(_IDENT_RE.findall(said))
    values: list[str] = []
    seen: set[str] = set()
    for name, value in bound:
        if name in named and name not in seen:
            seen.add(name)
            values.append(value)
    for _, value in bound:
        bare = value.rsplit("::", 1)[-1]
        if _IDENT_RE.fullmatch(bare) and bare in named and value not in values:
            values.append(value)
    if not values:  # a constant derived from a parameter: NUM_MMA_D_QK from HEAD_DIM_QK
        for ident in sorted(named):
            tail = ident.rsplit("_", 1)[-1] if ident.isupper() and "_" in ident else ""
            hits = {n: v for n, v in bound if len(tail) >= 2 and n.isupper()
                    and n.rsplit("_", 1)[-1] == tail}
            if len(hits) == 1:
                values += [v for v in hits.values() if v not in values]
    return values


def statement_range(text: str, offset: int) -> tuple[int, int]:
    """``[start, end)`` of the C++ statement (or declaration) around ``offset``: from after
    the last ``;``, ``{`` or ``}`` outside parentheses before it to the next one. Comments,
    string literals and preprocessor lines are skipped."""
    bounds = _boundaries(text)
    k = bisect_right(bounds, offset)
    start = bounds[k - 1] if k else 0
    end = bounds[k] if k < len(bounds) else len(text)
    return start, end


_NON_BLANK_RE = re.compile(r"\S")


def statement_at(smap: SourceMap, text: str, line: int) -> tuple[int, int] | None:
    """:func:`statement_range` of the statement rendered ``line`` starts in (from its first
    non-blank character); None for a line out of range."""
    if not 1 <= line <= len(smap.line_starts):
        return None
    m = _NON_BLANK_RE.search(text, smap.line_starts[line - 1])
    return statement_range(text, m.start() if m else len(text))


def _boundaries(text: str) -> list[int]:
    """Offsets just after each statement boundary (``;``, ``{``, ``}`` at parenthesis depth
    0, and the end of each preprocessor line)."""
    out: list[int] = []
    depth = 0
    i, n = 0, len(text)
    line_start = True
    while i < n:
        ch = text[i]
        if line_start and ch == "#":
            j = i
            while True:  # a directive runs to an unescaped newline
                j = text.find("\n", j)
                if j < 0:
                    j = n
                    break
                if text[j - 1] != "\\":
                    break
                j += 1
            out.append(i)
            out.append(j)
            i = j
            continue
        if ch == "\n":
            line_start = True
            i += 1
            continue
        if not ch.isspace():
            line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(depth - 1, 0)
        elif ch in ";{}" and depth == 0:
            out.append(i + 1)
        i += 1
    return out


def pick(smap: SourceMap, text: str, line: int, values: list[str]) -> Frame | None:
    """Where, in the statement holding rendered ``line``, one of ``values`` (the first value
    found wins) was written: the first ``{{ expression }}`` that rendered it, else its first
    occurrence as a token of the statement's literal text (an argument typed in the
    template)."""
    stmt = statement_at(smap, text, line) if values else None
    if stmt is None:
        return None
    start, end = stmt
    spans = sorted((s for s in smap.spans if start <= s.start and s.end <= end
                    and s.frame.kind == "expr"), key=lambda s: s.start)
    for value in values:
        want = normalize(value)
        if not want:
            continue
        for s in spans:
            if normalize(text[s.start:s.end]) == want:
                return s.frame
    body = text[start:end]
    for value in values:
        for form in dict.fromkeys((value.strip(), value.rsplit("::", 1)[-1].strip())):
            if not form:
                continue
            m = re.search(rf"(?<![\w:]){re.escape(form)}(?!\w)", body)
            if m is None:
                continue
            fr = smap.frames(smap.line_of_offset(start + m.start()))
            if fr:
                return fr[-1]
    return None


def span_at(smap: SourceMap, offset: int) -> Span | None:
    """The innermost expression span holding rendered ``offset``."""
    best: Span | None = None
    for s in smap.spans:
        if s.frame.kind == "expr" and s.start <= offset < s.end and (
                best is None or s.end - s.start < best.end - best.start):
            best = s
    return best


_QUOTED_RE = re.compile(r'"([^"\n]*)"')


def later_lines(smap: SourceMap, text: str, line: int) -> set[tuple[str, int]] | None:
    """When rendered ``line`` starts a statement spread over several lines: the template
    ``(file, line)`` pairs of its *other* lines (its later lines and the expressions in
    them). None when ``line`` starts no such statement."""
    stmt = statement_at(smap, text, line)
    if stmt is None:
        return None
    start, end = stmt
    m = _NON_BLANK_RE.search(text, start, end)
    s0 = m.start() if m else start
    if smap.line_of_offset(s0) != line or text.find("\n", s0, end) < 0:
        return None
    own = {(f.file, f.line) for f in smap.frames(line)}
    last = smap.line_of_offset(max(end - 1, s0))
    out = {(f.file, f.line) for ln in range(line + 1, last + 1) for f in smap.frames(ln)[-1:]}
    out |= {(s.frame.file, s.frame.line) for s in smap.spans
            if s.frame.kind == "expr" and start <= s.start and s.end <= end}
    return out - own


def names_the_line(message: str, line_text: str) -> bool:
    """True when a name the message quotes (``identifier "Foo" is undefined``) is a token
    of ``line_text``: the message is about that line. (A static assertion quotes prose; "no
    instance of function template "f" matches" is about the arguments, not ``f``.)"""
    if message.startswith(("static assertion failed", "no instance of")):
        return False
    for quoted in _QUOTED_RE.findall(message):
        for name in _IDENT_RE.findall(quoted):
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", line_text):
                return True
    return False


_DEFINE_FLAG_RE = re.compile(r"-D(?=[A-Za-z_])")


def named_parameters(bound: list[tuple[str, str]], said: str) -> list[str]:
    """Values of the statement's own template parameters (``bound``: the ``[with ...]`` of
    the chain's frame at the statement) that ``said`` names: by name (``HEAD_DIM``), else by
    the one parameter sharing most (at least two) words with a constant it names
    (``FP16_QK_REDUCTION_SUPPORTED`` -> ``USE_FP16_QK_REDUCTION``). Stronger evidence than
    a value that merely matches a type the statement spells."""
    named = set(_IDENT_RE.findall(_DEFINE_FLAG_RE.sub(" ", said)))
    out = [v for n, v in bound if n in named]
    if out:
        return list(dict.fromkeys(out))
    best: dict[str, int] = {}
    for ident in named:
        if not (ident.isupper() and "_" in ident):
            continue
        words = set(ident.split("_"))
        for n, v in bound:
            if n.isupper() and "_" in n:
                k = len(words & set(n.split("_")))
                if k >= 2:
                    best[v] = max(best.get(v, 0), k)
    if not best:
        return []
    top = max(best.values())
    winners = [v for v, k in best.items() if k == top]
    return winners if len(winners) == 1 else []


def template_argument_line(smap: SourceMap, text: str, line: int) -> Frame | None:
    """When rendered ``line`` starts an explicit instantiation whose template-argument list
    (``<...>``) opens at the end of that line and lies wholly on one later line: that
    line's template frame (the arguments, where a statement-level error about them
    belongs). None otherwise."""
    stmt = statement_at(smap, text, line)
    if stmt is None:
        return None
    start, end = stmt
    body = text[start:end]
    m = re.match(r"\s*template\b[^<;]*<\s*\n", body)
    if m is None or smap.line_of_offset(start + m.end() - 1) != line:
        return None
    depth, i = 1, m.end()
    while i < len(body) and depth:
        depth += {"<": 1, ">": -1}.get(body[i], 0)
        i += 1
    first = smap.line_of_offset(start + m.end())
    last = smap.line_of_offset(start + i - 1)
    if depth or first != last:
        return None
    fr = smap.frames(first)
    return fr[-1] if fr else None
