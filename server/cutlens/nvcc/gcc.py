"""gcc's (and clang's, the assembler's, the linker's) messages: ``file:line[:col]: error: ...``
with the context lines printed before them (``In function``, ``In instantiation of``,
``required from``, ``In file included from``), source excerpts, and ``note:`` lines.

Context lines belong to the diagnostic that follows them, notes included: a note printed
with its own ``In file included from`` lines takes them (they are never left over).
"""

from __future__ import annotations

import re

from cutlens.nvcc.messages import LEVELS, CompilerMessage, Frame, num

GCC = re.compile(
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<level>fatal error|error"
    r"|warning|note|Error|Warning): (?P<msg>.*)$")
GCC_PROG = re.compile(
    r"^(?P<file>cc1plus|cc1|gcc|g\+\+|c\+\+|clang\+\+|clang|collect2|as|(?:\S*/)?ld(?:\.\w+)?)"
    r": (?P<level>fatal error|error|warning|note): (?P<msg>.*)$")
LD = re.compile(r"^(?:\S*/)?ld(?:\.\w+)?: (?P<msg>.*)$")
CONTEXT = re.compile(r"^(?P<file>[^\s:][^:]*?): (?P<what>(?:In|At) .+):$")
INCLUDED = re.compile(
    r"^(?:In file included from|\s+from) (?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?[:,]$")
REQUIRED = re.compile(  # gcc indents these with 3 spaces; diagnostics have 1
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s{2,}(?P<what>\S.*)$")
EXCERPT = re.compile(r"^\s*(?:\d+\s*)?\|(?: .*)?$|^\s*\+\+\+ \|")
_SRC = re.compile(r"^\s*\d+ \| (?P<src>.*)$")
_WFLAG = re.compile(r"\s*\[(?P<flag>-W[^\]]+|-f[^\]]+)\]$")


def message(m: re.Match[str], raw: list[str], chain: list[Frame]) -> CompilerMessage:
    """The diagnostic of a :data:`GCC`/:data:`GCC_PROG` line, its context and excerpt."""
    level = m["level"]
    text = m["msg"]
    code = None
    wm = _WFLAG.search(text)
    if wm:
        code, text = wm["flag"], text[: wm.start()]
    gd = m.groupdict()
    file = gd.get("file")
    level = level.lower()  # the assembler says "Error:"
    excerpt = next((em["src"] for em in map(_SRC.match, raw) if em), None)
    return CompilerMessage(
        tool="gcc", severity=LEVELS[level], file=file, excerpt=excerpt,
        line=num(gd.get("line")) or None,
        column=num(gd.get("col")) if gd.get("col") else None,
        message=text.strip(), code=code, chain=chain, raw="\n".join(raw), level=level)


class Context:
    """The context lines read so far, waiting for the diagnostic they introduce."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.chain: list[Frame] = []
        self._pending_inst: str | None = None

    def take(self, ln: str) -> bool:
        """Read ``ln`` if it is a context line (True), else leave it (False)."""
        cm = CONTEXT.match(ln)
        if cm:
            self.lines.append(ln)
            what = cm["what"]
            if what.startswith("In instantiation of "):
                self._pending_inst = what[len("In "):]
            return True
        im = INCLUDED.match(ln)
        if im:
            self.lines.append(ln)
            self.chain.append(Frame(file=im["file"], line=num(im["line"]),
                                    column=num(im["col"]) if im["col"] else None,
                                    text="in file included from"))
            return True
        rm = REQUIRED.match(ln)
        if rm:
            self.lines.append(ln)
            what = rm["what"].strip()
            text = self._pending_inst or what
            if what.startswith("required from ") and what != "required from here":
                self._pending_inst = "instantiation of " + what[len("required from "):]
            else:
                self._pending_inst = None
            self.chain.append(Frame(file=rm["file"], line=num(rm["line"]),
                                    column=num(rm["col"]) if rm["col"] else None, text=text))
            return True
        return False

    def diagnostic(self, m: re.Match[str], excerpt: list[str]) -> CompilerMessage:
        """The diagnostic line ``m`` (with its excerpt lines) and the context before it."""
        msg = message(m, [*self.lines, m.string, *excerpt], list(self.chain))
        self.clear()
        return msg

    def clear(self) -> None:
        self.lines.clear()
        self.chain.clear()
        self._pending_inst = None

    def leftover(self) -> CompilerMessage | None:
        """Context with no diagnostic after it (output cut short): kept as its text."""
        if not self.lines:
            return None
        text = "\n".join(self.lines)
        self.clear()
        return CompilerMessage(tool="gcc", severity="error", file=None, line=None,
                               column=None, message=text, code=None, chain=[], raw=text,
                               level="error")
