"""A driver's failures as diagnostics on the line the user edits: a Jinja syntax error in a
template literal (raised at import), an undefined name or any error inside a render (on the
template line, through the ``.py`` literal), and the driver's own Python exceptions (on the
deepest project frame)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from jinja2.exceptions import TemplateSyntaxError, UndefinedError

from cutlens.diagnostics import Diagnostic, Related
from cutlens.pyhost.interpose import Registry


def _template_frames(exc: BaseException, reg: Registry) -> list[tuple[str, int]]:
    """(file, line) of each instrumented template frame of the traceback, outermost first."""
    out = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if name in reg.templates:
            out.append(reg.real_position(name, lineno))
    return out


def _project_frames(exc: BaseException, reg: Registry) -> list[tuple[str, int]]:
    out = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if fn.endswith(".py") and reg.in_project(fn):
            out.append((str(Path(fn).resolve()), lineno))
    return out


def diagnostic(exc: BaseException, reg: Registry, case: str | None,
               fallback: tuple[str, int]) -> Diagnostic:
    """``exc`` on the line that caused it (``fallback``: where the driver is declared)."""
    where: dict[str, Any] = {"variants": [case] if case else []}
    py = _project_frames(exc, reg)
    if isinstance(exc, TemplateSyntaxError):
        name = exc.filename or exc.name or ""
        file, line = reg.real_position(name, exc.lineno or 1) if name in reg.templates else \
            (py[-1] if py else fallback)
        related = [Related(f, ln, "the template is built here") for f, ln in py[-1:]
                   if (f, ln) != (file, line)]
        return Diagnostic(file=file, line=line, message=f"syntax error: {exc.message}",
                          source="jinja", code="syntax", related=related, **where)
    chain = _template_frames(exc, reg)
    if chain:
        file, line = chain[-1]
        related = [Related(f, ln, "called from here") for f, ln in reversed(chain[:-1])]
        related += [Related(f, ln, "rendered from here") for f, ln in py[-1:]]
        code = "undefined" if isinstance(exc, UndefinedError) else "exception"
        msg = str(exc.message or exc) if isinstance(exc, UndefinedError) else \
            f"{type(exc).__name__}: {exc}"
        return Diagnostic(file=file, line=line, message=msg, source="jinja", code=code,
                          related=related, **where)
    file, line = py[-1] if py else fallback
    related = [Related(f, ln, "called from here") for f, ln in reversed(py[:-1])][:3]
    return Diagnostic(file=file, line=line, message=f"{type(exc).__name__}: {exc}",
                      source="cutlens", code="driver", related=related, **where)
