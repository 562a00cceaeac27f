"""Render failures as diagnostics: each exception on the template line (and token) that
caused it, with the call chain through macros and includes and the project Python frame."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

from jinja2 import TemplateNotFound
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from cutlens.diagnostics import Diagnostic, Related
from cutlens.render.environment import RenderEnvironment, RenderTimeout
from cutlens.render.hooks import HookError, KernelContext, TemplateContext
from cutlens.render.loader import OutsideRoots
from cutlens.template.model import Sample, Variant

_THIS_DIR = str(Path(__file__).parents[1])  # the cutlens package

def _template_frames(exc: BaseException, files: set[str]) -> list[tuple[str, int]]:
    out = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if fn in files:
            out.append((fn, lineno))
    return out


def _hook_name(exc: BaseException) -> str | None:
    """``kernel.size`` / ``template.render_gemm_arguments``: the outermost hook that raised."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        obj = frame.f_locals.get("self")
        if isinstance(obj, KernelContext | TemplateContext) and \
                not frame.f_code.co_name.startswith("_"):
            prefix = "kernel" if isinstance(obj, KernelContext) else "template"
            return f"{prefix}.{frame.f_code.co_name}"
    return None


def _user_frame(exc: BaseException) -> tuple[str, int] | None:
    """The innermost frame in project Python code (template_class helpers, generators)."""
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if fn.endswith(".py") and not fn.startswith(_THIS_DIR) and "site-packages" not in fn \
                and "/lib/python" not in fn:
            found = (fn, lineno)
    return found


_ATTR_RE = re.compile(r"attribute '([^']+)'")
#: cutlens's names that once were plain variables (now ``cutlens.<name>``).
_OWN_NAMES = ("kernel_name", "sample_name", "variant_name")
_UNDEF_RE = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")


def _line_text(env: RenderEnvironment, file: str, line: int) -> str:
    try:
        source = env.loader.get_source(env, file)[0]  # type: ignore[union-attr]
    except Exception:
        return ""
    lines = source.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _locate(d: Diagnostic, text: str, token: str | None) -> Diagnostic:
    """Give ``d`` the range of ``token`` on its line (else the line's non-blank text)."""
    if not text:
        return d
    start = text.find(token) if token else -1
    if start >= 0:
        assert token is not None
        d.column, d.end_column = start + 1, start + 1 + len(token)
    else:
        stripped = text.lstrip()
        d.column = len(text) - len(stripped) + 1
        d.end_column = len(text.rstrip()) + 1
    d.end_line = d.line
    return d


def error_diagnostics(exc: BaseException, env: RenderEnvironment, root: Path,
                      sample: Sample, variant: Variant) -> list[Diagnostic]:
    """Turn a render exception into a diagnostic on the line (and token) that caused it."""
    d = _error_diagnostic(exc, env, root, sample, variant)
    token = None
    if isinstance(exc, UndefinedError):
        m = _UNDEF_RE.search(str(exc.message or ""))
        token = (m.group(1) or m.group(2)) if m else None
    elif d.code == "hook":
        token = d.message.split("(", 1)[0].split(".")[-1]
    elif isinstance(exc, TemplateNotFound | OutsideRoots):
        token = exc.name
    elif isinstance(exc, SecurityError):
        m = _ATTR_RE.search(str(exc))
        token = m.group(1) if m else None
    return [_locate(d, _line_text(env, d.file, d.line), token)]


def _error_diagnostic(exc: BaseException, env: RenderEnvironment, root: Path,
                      sample: Sample, variant: Variant) -> Diagnostic:
    """Turn a render exception into a diagnostic on the line that caused it."""
    files = set(env.files)
    where = {"samples": [sample.name], "variants": [variant.name], "source": "jinja"}
    if isinstance(exc, TemplateSyntaxError):
        file = exc.filename or str(root)
        msg = f"syntax error: {exc.message}"
        related: list[Related] = []
        # A syntax error in an included template is also reported at its include line.
        chain = _template_frames(exc, files)
        related = [Related(f, ln, "included from here") for f, ln in chain if f != file]
        return Diagnostic(file=file, line=exc.lineno or 1, message=msg, related=related,
                          code="syntax", **where)  # type: ignore[arg-type]
    chain = _template_frames(exc, files)
    if isinstance(exc, UndefinedError):
        msg = str(exc.message or exc)
        m = _UNDEF_RE.search(msg)
        if m and m.group(1) in _OWN_NAMES:
            msg += f" (cutlens's own value is cutlens.{m.group(1)})"
        code = "undefined"
    elif isinstance(exc, TemplateNotFound):
        msg = f"template not found: {exc.name}"
        code = "not-found"
    elif isinstance(exc, RenderTimeout):
        msg = str(exc)
        code = "timeout"
    elif isinstance(exc, OutsideRoots):
        msg = f"not allowed: {exc}"
        code = "outside-roots"
    elif isinstance(exc, SecurityError):
        msg = f"not allowed in the sandbox: {exc}"
        code = "sandbox"
    else:
        hook = _hook_name(exc)
        kind = "" if isinstance(exc, HookError) else f"{type(exc).__name__}: "
        msg = f"{hook}(): {kind}{exc}" if hook else f"{type(exc).__name__}: {exc}"
        code = "hook" if hook else "exception"
    related = []
    if chain:
        file, line = chain[-1]
        for f, ln in reversed(chain[:-1]):
            related.append(Related(f, ln, "called from here"))
    else:
        file, line = str(root), 1
    uf = _user_frame(exc)
    if uf is not None:
        related.append(Related(uf[0], uf[1], "raised here"))
    return Diagnostic(file=file, line=line, message=msg, code=code, related=related,
                      **where)  # type: ignore[arg-type]


