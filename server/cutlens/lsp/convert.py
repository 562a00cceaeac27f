"""Core diagnostics <-> LSP types."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp

from cutlens.diagnostics import Diagnostic, Related

SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "info": lsp.DiagnosticSeverity.Information}
SEVERITY_NAME = {v: k for k, v in SEVERITY.items()}
SOURCE_PREFIX = "cutlens-"


def path_to_uri(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


@functools.lru_cache(maxsize=4096)
def uri_to_path(uri: str) -> Path:
    """The resolved path of a ``file:`` URI (memoised: every edit resolves its document's
    URI, and ``resolve`` walks the path's components)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"not a file URI: {uri}")
    return Path(unquote(parsed.path)).resolve()


def _range(line: int, column: int, end_line: int, end_column: int,
           lines: list[str] | None) -> lsp.Range:
    ln = max(line - 1, 0)
    text = lines[ln] if lines is not None and ln < len(lines) else None
    if column > 0:
        start = column - 1
    elif text is not None:
        start = len(text) - len(text.lstrip())
    else:
        start = 0
    eln = max(end_line - 1, ln)
    if end_column > 0:
        end = end_column - 1
    elif text is not None and eln == ln:
        end = max(len(text.rstrip()), start)
    else:
        end = start
    if eln == ln and end <= start:
        end = start + 1 if text is None or start < len(text) else start
    return lsp.Range(lsp.Position(ln, start), lsp.Position(eln, end))


def to_lsp(d: Diagnostic, lines: list[str] | None = None) -> lsp.Diagnostic:
    """An LSP diagnostic; ``lines`` (the file's text) widens unknown columns to the line."""
    msg = d.message + (f" {d.where()}" if d.partial and d.where() else "")
    related = [lsp.DiagnosticRelatedInformation(
        location=lsp.Location(path_to_uri(r.file), _range(r.line, r.column, r.line, 0, None)),
        message=r.message) for r in d.related if r.file]
    return lsp.Diagnostic(
        range=_range(d.line, d.column, d.end_line, d.end_column, lines),
        message=msg, severity=SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
        source=SOURCE_PREFIX + d.source, code=d.code,
        related_information=related or None,
        data={"samples": d.samples, "variants": d.variants, "partial": d.partial,
              "message": d.message, "column": d.column, "end_column": d.end_column,
              "related_columns": [r.column for r in d.related if r.file]})


def from_lsp(uri: str, d: lsp.Diagnostic) -> Diagnostic:
    """Back to a core diagnostic (headless mode prints them like ``check``)."""
    data = d.data if isinstance(d.data, dict) else {}
    cols = list(data.get("related_columns", []))
    related = [Related(str(uri_to_path(r.location.uri)), r.location.range.start.line + 1,
                       r.message, cols[i] if i < len(cols) else 0)
               for i, r in enumerate(d.related_information or [])]
    return Diagnostic(
        file=str(uri_to_path(uri)), line=d.range.start.line + 1,
        column=int(data.get("column", 0)), end_line=d.range.end.line + 1,
        end_column=int(data.get("end_column", 0)),
        severity=SEVERITY_NAME.get(d.severity, "error"),  # type: ignore[arg-type]
        message=str(data.get("message", d.message)),
        source=(d.source or "cutlens").removeprefix(SOURCE_PREFIX),  # type: ignore[arg-type]
        code=str(d.code) if d.code is not None else None,
        samples=list(data.get("samples", [])), variants=list(data.get("variants", [])),
        related=related, partial=bool(data.get("partial", False)))
