"""Diagnostics: one problem, on a template line, for the samples and variants that show it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
Source = Literal["jinja", "nvcc", "ptxas", "nvlink", "cutlens"]

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Related:
    """A secondary location: a header frame, a macro's call site, an include."""

    file: str
    line: int
    message: str
    column: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "message": self.message}


@dataclass
class Diagnostic:
    """A problem at ``file:line`` (1-based; ``column`` 1-based, 0 when unknown)."""

    file: str
    line: int
    message: str
    severity: Severity = "error"
    source: Source = "cutlens"
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    code: str | None = None
    samples: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)
    raw: str = ""
    #: True when the problem shows in only some of the template's samples/variants.
    partial: bool = False

    def __post_init__(self) -> None:
        if self.end_line < self.line:
            self.end_line = self.line

    def key(self) -> tuple[Any, ...]:
        """Identity used to merge the same problem reported by several samples/variants."""
        return (self.file, self.line, self.column, self.severity, self.source, self.code,
                self.message)

    def where(self) -> str:
        """``[sample/variant]`` suffix naming where the problem shows."""
        if not self.samples and not self.variants:
            return ""
        s = ",".join(self.samples) or "*"
        v = ",".join(self.variants) or "*"
        return f"[{s}/{v}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "severity": self.severity,
            "message": self.message,
            "source": self.source,
            "code": self.code,
            "samples": list(self.samples),
            "variants": list(self.variants),
            "related": [r.to_json() for r in self.related],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Diagnostic:
        return cls(
            file=d["file"], line=d["line"], column=d.get("column", 0),
            end_line=d.get("end_line", 0), end_column=d.get("end_column", 0),
            severity=d.get("severity", "error"), message=d["message"],
            source=d.get("source", "cutlens"), code=d.get("code"),
            samples=list(d.get("samples", [])), variants=list(d.get("variants", [])),
            related=[Related(r["file"], r["line"], r["message"], r.get("column", 0))
                     for r in d.get("related", [])],
            raw=d.get("raw", ""),
        )


def _append_unique(dst: list[str], items: Iterable[str]) -> None:
    for it in items:
        if it not in dst:
            dst.append(it)


def merge(diags: Iterable[Diagnostic], all_samples: list[str] | None = None,
          all_variants: list[str] | None = None) -> list[Diagnostic]:
    """Merge the same problem seen in several samples/variants into one diagnostic.

    With ``all_samples``/``all_variants`` known, a problem seen everywhere drops the
    lists of names (it is not specific), one seen in only some keeps them and is
    marked ``partial``.
    """
    out: dict[tuple[Any, ...], Diagnostic] = {}
    for d in diags:
        k = d.key()
        if k in out:
            m = out[k]
            _append_unique(m.samples, d.samples)
            _append_unique(m.variants, d.variants)
            for r in d.related:
                if r not in m.related:
                    m.related.append(r)
        else:
            out[k] = replace(d, samples=list(d.samples), variants=list(d.variants),
                             related=list(d.related))
    result = list(out.values())
    order = {n: i for i, n in enumerate([*(all_samples or []), *(all_variants or [])])}
    for d in result:
        d.samples.sort(key=lambda n: order.get(n, len(order)))
        d.variants.sort(key=lambda n: order.get(n, len(order)))
        every_sample = all_samples is not None and set(d.samples) >= set(all_samples)
        every_variant = all_variants is not None and set(d.variants) >= set(all_variants)
        d.partial = not (every_sample and every_variant)
    return sorted(result, key=sort_key)


def sort_key(d: Diagnostic) -> tuple[Any, ...]:
    """File, line, column, severity, message: the order every output uses."""
    return (d.file, d.line, d.column, SEVERITY_ORDER[d.severity], d.message, d.source)
