"""What nvcc's output parses into: :class:`CompilerMessage` (one diagnostic of one tool, with
its instantiation or include chain and its notes), :class:`Frame` and :class:`KernelResources`
(ptxas's resource usage of one entry function). Pure data, shared by the per-tool parsers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Tool = Literal["edg", "cicc", "gcc", "ptxas", "nvlink", "nvcc", "fatbinary", "other"]
Severity = Literal["error", "warning", "info"]

LEVELS: dict[str, Severity] = {
    "error": "error", "catastrophic error": "error", "internal error": "error",
    "command-line error": "error", "fatal error": "error", "fatal": "error",
    "warning": "warning", "remark": "info",
    "note": "info", "info": "info",
}

#: Largest line or column kept (LSP positions are 32-bit); beyond it a number is unknown.
MAX_LINE = 2**31 - 1


def num(text: str | None) -> int:
    """A printed line, column or count; 0 when absent or absurd (``int()`` refuses more than
    4300 digits, and an LSP position cannot hold more than 31 bits)."""
    if not text or len(text) > 10:
        return 0
    n = int(text)
    return n if n <= MAX_LINE else 0


@dataclass(frozen=True)
class Frame:
    """One context frame: ``instantiation of "..." at line N of FILE`` (EDG), or a gcc
    ``required from`` / ``In file included from`` location."""

    file: str | None
    line: int
    text: str
    column: int | None = None


@dataclass
class CompilerMessage:
    """One diagnostic from one tool of nvcc's pipeline."""

    tool: Tool
    severity: Severity
    file: str | None
    line: int | None
    column: int | None
    message: str
    code: str | None
    chain: list[Frame]
    raw: str
    kernel: str | None = None
    #: Secondary messages (EDG ``note #N-D``, gcc ``note:``) that explain this one.
    notes: list[CompilerMessage] = field(default_factory=list)
    #: ``K`` of ``[ K instantiation contexts not shown ]`` (0 when the chain is complete).
    elided_frames: int = 0
    #: Index in ``chain`` where the contexts not shown belong (before ``chain[elided_at]``).
    elided_at: int | None = None
    #: The tool's own word: ``error``, ``catastrophic error``, ``fatal error``, ``remark``...
    level: str = ""
    #: The source line the tool printed (EDG: after macro expansion, so it can differ from
    #: the file's line; ``column`` counts on this text).
    excerpt: str | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.tool, self.severity, self.file, self.line, self.column, self.code,
                self.message)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CompilerMessage:
        d = dict(d)
        d["chain"] = [Frame(**f) for f in d.get("chain", [])]
        d["notes"] = [cls.from_json(n) for n in d.get("notes", [])]
        return cls(**d)


@dataclass
class KernelResources:
    """ptxas's resource usage for one entry function (``-Xptxas -v``)."""

    kernel: str  # demangled when a demangler is available
    arch: str
    registers: int
    barriers: int
    smem_bytes: int  # static shared memory (dynamic shared memory does not show here)
    cmem_bytes: int  # constant memory, all banks summed (bank 0 holds the parameters)
    stack_bytes: int
    spill_stores: int
    spill_loads: int
    mangled: str = ""
    compile_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> KernelResources:
        return cls(**d)
