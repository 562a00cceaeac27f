"""The EDG front ends' messages (cudafe++ and cicc print the same format).

``file(LINE): error|warning|remark|note [#N-D]: text``, continuation lines, the source line
and caret, then the instantiation chain: ``detected during instantiation of "..." at line N
[of FILE]`` or a ``detected during:`` block with one frame per line and ``[ K instantiation
contexts not shown ]``. EDG prints a message's chain once, after all its notes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cutlens.nvcc.messages import LEVELS, CompilerMessage, Frame, num

EDG = re.compile(
    r"^(?P<file>\S.*?)\((?P<line>\d+)\): (?P<level>catastrophic error|internal error|error"
    r"|warning|remark|note)(?: #(?P<code>\d+(?:-D)?))?: (?P<msg>.*)$")
EDG_NOFILE = re.compile(
    r"^(?P<level>[Cc]atastrophic error|[Ii]nternal error|[Cc]ommand-line error)"
    r"(?: #(?P<code>\d+(?:-D)?))?: (?P<msg>.*)$")
# Messages without a source excerpt about host code used from device code come from cicc
# (after its front end).
_CICC_TEXT = re.compile(r"calling a __host__ function|in device code")
_CARET = re.compile(r"^\s*\^\s*$")
_DETECTED = re.compile(r"^\s+detected during(?::|\s+(?P<frame>.+))$")
_FRAME = re.compile(r"^(?P<text>.+) at line (?P<line>\d+)(?: of (?P<file>.+?))?$")
_ELIDED = re.compile(r"^\s+\[ (?P<n>\d+) instantiation contexts? not shown \]$")


def _frame(text: str, primary_file: str | None) -> Frame:
    m = _FRAME.match(text.strip())
    if not m:
        return Frame(file=primary_file, line=0, text=text.strip())
    return Frame(file=m["file"] or primary_file, line=num(m["line"]), text=m["text"])


def parse_edg(lines: list[str], i: int, m: re.Match[str] | None, nofile: re.Match[str] | None,
              starts_message: Callable[[str], bool]) -> tuple[CompilerMessage, int]:
    """An EDG message starting at ``lines[i]``; returns it and the index after it.
    ``starts_message`` says whether a line opens a message of any tool."""
    hm = m or nofile
    assert hm is not None
    body: list[str] = []
    j = i + 1
    # The block runs to a blank line or the next message. Its lines are indented, except
    # where the message text itself holds a newline (CUTLASS's static_assert strings do).
    while j < len(lines) and lines[j].strip() and not starts_message(lines[j]):
        body.append(lines[j])
        j += 1
    file = m["file"] if m else None
    caret = next((k for k, ln in enumerate(body) if _CARET.match(ln)), None)
    chain_start = next((k for k, ln in enumerate(body) if _DETECTED.match(ln)), len(body))
    column = excerpt = None
    if caret is not None and caret >= 1:
        cont, after = body[: caret - 1], body[caret + 1:]
        # EDG indents the source line and the caret line by two spaces.
        excerpt = body[caret - 1][2:]
        column = max(body[caret].index("^") - 1, 0)
    else:
        cont, after = body[:chain_start], body[chain_start:]
    chain: list[Frame] = []
    elided = 0
    elided_at = None
    for ln in after:
        dm = _DETECTED.match(ln)
        if dm:
            if dm["frame"]:
                chain.append(_frame(dm["frame"], file))
            continue
        em = _ELIDED.match(ln)
        if em:
            elided += num(em["n"])
            elided_at = len(chain)
        elif _FRAME.match(ln.strip()):
            chain.append(_frame(ln, file))
    message = "\n".join([hm["msg"].strip(), *(c.strip() for c in cont)])
    level = hm["level"].lower()
    msg = CompilerMessage(
        tool="cicc" if caret is None and _CICC_TEXT.search(message) else "edg",
        severity=LEVELS[level], file=file, line=num(m["line"]) or None if m else None,
        column=column,
        message=message, code=hm["code"], chain=chain, raw="\n".join(lines[i:j]),
        elided_frames=elided, elided_at=elided_at, level=level, excerpt=excerpt)
    return msg, j


def adopt_chain(parent: CompilerMessage, note: CompilerMessage) -> None:
    """EDG prints a message's instantiation chain once, after its notes (overload candidates,
    "declared here"): the chain read with the last note belongs to the message."""
    if note.tool not in ("edg", "cicc") or not note.chain or parent.chain:
        return
    parent.chain, note.chain = note.chain, []
    parent.elided_frames, parent.elided_at = note.elided_frames, note.elided_at
    note.elided_frames, note.elided_at = 0, None
