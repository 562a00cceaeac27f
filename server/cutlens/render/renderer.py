"""Render a template for one sample × variant into a :class:`RenderedUnit` with its source map.

The Jinja environment is sandboxed, uses ``StrictUndefined`` like Inductor, stops a render
that runs past its time limit, and plants source-map markers in the output (stripped by
:func:`sourcemap.build`). Every failure becomes a :class:`Diagnostic` on the template line
that caused it, never an exception.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.lexer import Token, TokenStream
from jinja2.parser import Parser
from jinja2.runtime import Macro, Undefined
from jinja2.sandbox import SecurityError
from jinja2.visitor import NodeTransformer

from cutlens.diagnostics import Diagnostic, Related
from cutlens.render import sourcemap
from cutlens.render.hooks import HookError, KernelContext, KernelSignature, TemplateContext
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.symexpr import SympySafeSandbox
from cutlens.template.variants import import_project_module

_THIS_DIR = str(Path(__file__).parents[1])  # the cutlens package


class RenderTimeout(RuntimeError):
    """The render ran past its time limit."""


# -- loading ---------------------------------------------------------------------------------
class OutsideRoots(SecurityError):
    """An include/import/extends name that resolves outside the template roots."""

    def __init__(self, name: str, roots: list[Path]) -> None:
        where = ", ".join(map(str, dict.fromkeys(roots)))
        super().__init__(f"{name!r} is outside the project's template roots ({where}); add "
                         "its folder to search_path in the project config to include it")
        self.name = name


class OverlayLoader(BaseLoader):
    """Loads template names from ``search_path``, preferring unsaved editor text
    (``overlays``: absolute path -> text). A name that resolves (symlinks followed) outside
    every ``search_path`` directory is refused: templates read only inside the project."""

    def __init__(self, search_path: list[Path], overlays: Mapping[str, str] | None = None):
        self.search_path = [p.resolve() for p in search_path]
        self.overlays: Mapping[str, str] = overlays if overlays is not None else {}

    def resolve(self, name: str) -> Path | None:
        p = Path(name)
        cands = [p] if p.is_absolute() else [d / name for d in self.search_path]
        outside = 0
        for c in cands:
            real = c.resolve()
            if not any(real.is_relative_to(r) for r in self.search_path):
                outside += 1
                continue
            key = str(real) if c.exists() or str(c) in self.overlays else str(c)
            if key in self.overlays or c.is_file():
                return Path(key)
        if outside == len(cands):
            raise OutsideRoots(name, self.search_path)
        return None

    def load(self, environment: Any, name: str, globals: Any = None) -> JinjaTemplate:
        source, filename, uptodate = self.get_source(environment, name)
        if isinstance(environment, RenderEnvironment):
            return environment.load_source(name, source, filename, uptodate, globals or {})
        return super().load(environment, name, globals)

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.resolve(template)
        if path is None:
            raise TemplateNotFound(template)
        key = str(path)
        if key in self.overlays:
            text = self.overlays[key]
            return text, key, lambda: self.overlays.get(key) is text
        text = path.read_text()
        mtime = path.stat().st_mtime_ns
        return text, key, lambda: (key not in self.overlays and path.is_file()
                                   and path.stat().st_mtime_ns == mtime)


# -- source markers --------------------------------------------------------------------------
class MarkSource(NodeTransformer):
    """Plant source-map markers in a template's AST, and a time check in every loop."""

    def __init__(self, fid: int, source: str, var_start: str) -> None:
        self.fid = fid
        self.lines = source.splitlines()
        self.var_start = var_start
        self.expr_count: dict[int, int] = defaultdict(int)
        #: The template's literal text, in source order; the compiled code reads literal
        #: ``i`` from ``cutlens_data[i]`` so that an edit of literal text only swaps strings.
        self.data: list[str] = []
        self.markers = True

    def _data_ref(self, child: nodes.TemplateData) -> nodes.Expr:
        name = nodes.InternalName.__new__(nodes.InternalName)  # InternalName() refuses
        name.name, name.lineno, name.environment = DATA_NAME, child.lineno, None
        ref = nodes.Getitem(name, nodes.Const(len(self.data)), "load", lineno=child.lineno)
        self.data.append(child.data)
        return ref

    def _expr_col(self, line: int) -> int:
        k = self.expr_count[line]
        self.expr_count[line] += 1
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        pos = -1
        for _ in range(k + 1):
            pos = text.find(self.var_start, pos + 1)
            if pos < 0:
                return 0
        return pos

    def _text_col(self, line: int, data: str) -> int:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        first = data.split("\n", 1)[0]
        if "\n" in data and text.endswith(first):
            return len(text) - len(first)
        pos = text.find(first) if first else -1
        return max(pos, 0)

    def visit_Output(self, node: nodes.Output) -> nodes.Output:
        out: list[nodes.Expr] = []

        def data(text: str, ln: int) -> None:
            # Coalesce with a preceding literal: fewer nodes, faster Jinja codegen.
            if out and isinstance(out[-1], nodes.TemplateData):
                out[-1].data += text
            else:
                out.append(nodes.TemplateData(text, lineno=ln))

        for child in node.nodes:
            ln = child.lineno
            if isinstance(child, nodes.TemplateData):
                if self.markers:
                    data(sourcemap.point(self.fid, ln, self._text_col(ln, child.data)), ln)
                out.append(self._data_ref(child))
            elif self.markers:
                data(sourcemap.begin(self.fid, ln, self._expr_col(ln)), ln)
                out.append(self._value(child, printed=True))
                data(sourcemap.END, ln)
            else:
                out.append(self._value(child, printed=False))
        node.nodes = out
        return node

    def _value(self, node: nodes.Node, printed: bool) -> Any:
        """``node`` with every call whose result is used as a value (filtered, compared,
        assigned, passed on) wrapped in ``cutlens_strip``: a macro's output carries markers,
        which must not reach ``| trim``, ``| length``, ``==``... Only a call printed as is
        (alone, in a ``~`` or an ``if``-``else`` branch) keeps them, and its lines' origins."""
        if isinstance(node, nodes.Concat):
            node.nodes = [self._value(n, printed) for n in node.nodes]
            return node
        if isinstance(node, nodes.CondExpr):
            node.test = self._value(node.test, False)
            node.expr1 = self._value(node.expr1, printed)
            if node.expr2 is not None:
                node.expr2 = self._value(node.expr2, printed)
            return node
        for name, old in node.iter_fields():
            if isinstance(old, nodes.Node):
                setattr(node, name, self._value(old, False))
            elif isinstance(old, list):
                setattr(node, name, [self._value(n, False) if isinstance(n, nodes.Node) else n
                                     for n in old])
        if isinstance(node, nodes.Call) and not printed:
            return nodes.Call(nodes.Name(STRIP_NAME, "load", lineno=node.lineno), [node], [],
                              None, None, lineno=node.lineno)
        return node

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> nodes.Node:
        if isinstance(node, nodes.Expr):  # expressions hold no output: nothing to mark
            return self._value(node, printed=False)
        return super().generic_visit(node, *args, **kwargs)

    def _unmarked(self, node: nodes.AssignBlock | nodes.FilterBlock) -> nodes.Node:
        # Captured text is a value (compared, passed to hooks): keep it free of markers,
        # also those of the macros and includes it prints (the first filter strips them).
        strip = nodes.Filter(None, STRIP_NAME, [], [], None, None, lineno=node.lineno)
        inner = node.filter
        while inner is not None and isinstance(inner.node, nodes.Filter):
            inner = inner.node
        if inner is None:
            node.filter = strip
        else:
            inner.node = strip
        markers, self.markers = self.markers, False
        try:
            return self.generic_visit(node)
        finally:
            self.markers = markers

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        return self._unmarked(node)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node | list[nodes.Node]:
        """``{% filter %}`` text is a value too; what it prints maps to the ``{% filter %}``."""
        marked = self.markers
        node = self._unmarked(node)  # type: ignore[assignment]
        if not marked:
            return node
        ln = node.lineno
        col = max(self.lines[ln - 1].find("{%"), 0) if 0 < ln <= len(self.lines) else 0
        return [nodes.Output([nodes.TemplateData(sourcemap.begin(self.fid, ln, col))],
                             lineno=ln),
                node,
                nodes.Output([nodes.TemplateData(sourcemap.END)], lineno=ln)]

    def visit_Include(self, node: nodes.Include) -> list[nodes.Node]:
        ln = node.lineno
        col = max(self.lines[ln - 1].find("{%"), 0) if 0 < ln <= len(self.lines) else 0
        return [nodes.Output([nodes.TemplateData(sourcemap.begin(self.fid, ln, col, include=True))],
                             lineno=ln),
                node,
                nodes.Output([nodes.TemplateData(sourcemap.END)], lineno=ln)]

    def _tick(self, node: nodes.Node) -> nodes.Node:
        self.generic_visit(node)
        call = nodes.Call(nodes.Name("cutlens_tick", "load"), [], [], None, None)
        node.body.insert(0, nodes.ExprStmt(call, lineno=node.lineno))  # type: ignore[attr-defined]
        return node

    visit_For = _tick
    visit_Macro = _tick

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        call, node.call = node.call, None  # type: ignore[assignment]
        self._tick(node)
        node.call = self._value(call, printed=True)  # the macro call itself stays a call
        return node


DATA_NAME = "cutlens_data"
STRIP_NAME = "cutlens_strip"
_RESERVED_RE = re.compile(f"[{sourcemap.POINT}-{sourcemap.INCLUDE}]")


def _strip_value(value: Any) -> Any:
    return sourcemap.strip(value) if isinstance(value, str) else value


class MarkedTemplate(JinjaTemplate):
    """A compiled template whose literal text lives in its module's ``cutlens_data``."""

    @classmethod
    def from_code(cls, environment: Any, code: Any, globals: Any,
                  uptodate: Callable[[], bool] | None = None) -> JinjaTemplate:
        data = environment.take_data() if isinstance(environment, RenderEnvironment) else []
        namespace = {"environment": environment, "__file__": code.co_filename,
                     DATA_NAME: data}
        exec(code, namespace)
        rv = cls._from_namespace(environment, namespace, globals)
        rv._uptodate = uptodate
        return rv


@dataclass
class _Compiled:
    """The last compile of a file: its token signature, template and literal texts."""

    signature: tuple
    template: JinjaTemplate
    data: list[str]


def _signature(tokens: list[Token]) -> tuple:
    """Everything the parser sees except the text of literals."""
    return tuple((t.lineno, t.type, bool(t.value) if t.type == "data" else t.value)
                 for t in tokens)


class RenderEnvironment(SympySafeSandbox):
    """Sandboxed, ``StrictUndefined``, source-marking, time-limited Jinja environment.

    An edit that changes only literal text (a keystroke in C++ code) re-lexes the template
    and swaps its literal strings in the compiled code: no parse, no codegen.
    """

    template_class = MarkedTemplate

    def __init__(self, loader: OverlayLoader) -> None:
        super().__init__(loader=loader, undefined=StrictUndefined, keep_trailing_newline=True,
                         auto_reload=True, cache_size=400)
        self.files: list[str] = []
        self.file_ids: dict[str, int] = {}
        self._deadline = threading.local()
        self._stash = threading.local()
        self._compiled: dict[str, _Compiled] = {}
        self.globals["cutlens_tick"] = lambda: None
        self.globals[STRIP_NAME] = self.filters[STRIP_NAME] = _strip_value
        self.fast_reloads = 0

    def take_data(self) -> list[str]:
        data = getattr(self._stash, "data", None)
        self._stash.data = None
        return data if data is not None else []

    def load_source(self, name: str, source: str, filename: str,
                    uptodate: Callable[[], bool], globals: Any) -> JinjaTemplate:
        """Compile ``source`` — or, when only literal text changed since the last compile of
        ``filename``, reuse that compile with the new literal strings."""
        reserved = _RESERVED_RE.search(source)
        if reserved:  # they would be read as markers: wrong text, or a crash
            raise TemplateSyntaxError(
                f"character U+{ord(reserved.group()):04X} is reserved (cutlens's source-map "
                "markers are made of U+E000-U+E005)",
                source.count("\n", 0, reserved.start()) + 1, name, filename)
        tokens = list(self._tokenize(source, name, filename))
        sig = _signature(tokens)
        entry = self._compiled.get(filename)
        if entry is not None and entry.signature == sig:
            entry.data[:] = [t.value for t in tokens if t.type == "data" and t.value]
            entry.template._uptodate = uptodate
            self.fast_reloads += 1
            return entry.template
        self._stash.tokens = tokens
        try:
            code = self.compile(source, name, filename)
        finally:
            self._stash.tokens = None
        same_order = getattr(self._stash, "same_order", False)
        t = self.template_class.from_code(self, code, globals, uptodate)
        if same_order:
            self._compiled[filename] = _Compiled(
                sig, t, t.root_render_func.__globals__[DATA_NAME])
        else:
            self._compiled.pop(filename, None)
        return t

    def file_id(self, filename: str) -> int:
        if filename not in self.file_ids:
            self.file_ids[filename] = len(self.files)
            self.files.append(filename)
        return self.file_ids[filename]

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tokens = getattr(self._stash, "tokens", None)
        if tokens is None:
            tokens = list(self._tokenize(source, name, filename))
        parser = Parser(self, source, name, filename)
        parser.stream = TokenStream(iter(tokens), name, filename)
        tree = parser.parse()
        fid = self.file_id(filename or name or "<template>")
        mark = MarkSource(fid, source, self.variable_start_string)
        tree = mark.visit(tree)
        self._stash.data = mark.data
        # Literals must map to data tokens one to one for the literal-edit fast path.
        self._stash.same_order = mark.data == [t.value for t in tokens
                                               if t.type == "data" and t.value]
        return tree

    def set_deadline(self, deadline: float | None) -> None:
        self._deadline.value = deadline

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined) and attribute.startswith("_"):
            obj._fail_with_undefined_error()  # report the first unsafe access of a chain
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(__self._deadline, "value", None)
        if deadline is not None and time.monotonic() > deadline:
            raise RenderTimeout("render took too long (time limit reached)")
        if not isinstance(__obj, Macro):
            args = tuple(sourcemap.strip(a) if isinstance(a, str) else a for a in args)
            kwargs = {k: sourcemap.strip(v) if isinstance(v, str) else v
                      for k, v in kwargs.items()}
        return super().call(__context, __obj, *args, **kwargs)


# -- results ---------------------------------------------------------------------------------
@dataclass
class RenderedFile:
    """Rendered text and its source map."""

    text: str
    source_map: sourcemap.SourceMap


@dataclass
class RenderedUnit:
    """A rendered translation unit for one sample × variant."""

    template: Path
    sample: Sample
    variant: Variant
    text: str
    source_map: sourcemap.SourceMap
    kernel_name: str
    signature: KernelSignature | None = None
    companions: dict[str, RenderedFile] = field(default_factory=dict)
    #: Non-fatal findings (e.g. def_kernel never called).
    warnings: list[Diagnostic] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(self.text.encode())
        for name in sorted(self.companions):
            h.update(name.encode() + b"\0" + self.companions[name].text.encode())
        return h.hexdigest()

    def header(self) -> str:
        return (f"// Rendered by cutlens from {self.template.name}, sample "
                f"'{self.sample.name}', variant '{self.variant.name}' "
                f"(#{self.variant.index}).\n")

    def with_line_directives(self) -> str:
        """The text with ``#line N "template"`` wherever the origin jumps."""
        return add_line_directives(self.text, self.source_map)


def add_line_directives(text: str, smap: sourcemap.SourceMap) -> str:
    out: list[str] = []
    expect: tuple[str, int] | None = None
    prev = ""
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        o = smap.origin(i)
        if o is not None and (o.file, o.line) != expect and not prev.rstrip().endswith("\\"):
            out.append(f'#line {o.line} "{o.file}"\n')
        expect = (o.file, o.line + 1) if o else None
        out.append(line)
        prev = line
    return "".join(out)


@dataclass
class RenderFailure:
    """A render that failed: the diagnostics saying why."""

    template: Path
    sample: Sample
    variant: Variant
    diagnostics: list[Diagnostic]
    duration_s: float = 0.0


# -- error mapping ---------------------------------------------------------------------------
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
        related = []
        # A syntax error in an included template is also reported at its include line.
        chain = _template_frames(exc, files)
        related = [Related(f, ln, "included from here") for f, ln in chain if f != file]
        return Diagnostic(file=file, line=exc.lineno or 1, message=msg, related=related,
                          code="syntax", **where)  # type: ignore[arg-type]
    chain = _template_frames(exc, files)
    if isinstance(exc, UndefinedError):
        msg = str(exc.message or exc)
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
    related: list[Related] = []
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


# -- the renderer ----------------------------------------------------------------------------
def _import_class(spec: str, template: Template) -> type:
    mod_name, _, cls_name = spec.partition(":")
    return getattr(import_project_module(mod_name, template), cls_name)


class Renderer:
    """Renders templates of one project; compiled templates are cached by content."""

    def __init__(self, overlays: dict[str, str] | None = None) -> None:
        #: Unsaved editor text by absolute path; the live dict is shared, not copied.
        self.overlays: dict[str, str] = overlays if overlays is not None else {}
        self._envs: dict[tuple[str, ...], RenderEnvironment] = {}
        self._lock = threading.Lock()

    def environment(self, template: Template) -> RenderEnvironment:
        cfg = template.config
        search = [template.path.parent, cfg.root, *map(Path, cfg.search_path)]
        key = tuple(str(p) for p in search)
        with self._lock:
            env = self._envs.get(key)
            if env is None:
                env = RenderEnvironment(OverlayLoader(search, self.overlays))
                self._envs[key] = env
        return env

    def _classes(self, template: Template) -> tuple[type, type]:
        tcls: type = TemplateContext
        kcls: type = KernelContext
        spec = template.settings.get("template_class") or template.config.template_class
        kspec = template.settings.get("kernel_class") or template.config.kernel_class
        if spec:
            tcls = _import_class(str(spec), template)
            if not issubclass(tcls, TemplateContext):
                raise TypeError(f"template_class {spec} must subclass "
                                "cutlens.render.hooks.TemplateContext")
        if kspec:
            kcls = _import_class(str(kspec), template)
            if not issubclass(kcls, KernelContext):
                raise TypeError(f"kernel_class {kspec} must subclass "
                                "cutlens.render.hooks.KernelContext")
        return tcls, kcls

    def render(self, template: Template, sample: Sample, variant: Variant,
               timeout_s: float | None = None) -> RenderedUnit | RenderFailure:
        """Render one sample × variant; never raises on template problems."""
        t0 = time.perf_counter()
        env = self.environment(template)
        limit = template.config.render_timeout_s if timeout_s is None else timeout_s
        env.set_deadline(time.monotonic() + limit if limit else None)
        try:
            try:
                tcls, kcls = self._classes(template)
            except Exception as e:
                file, line = template.setting_line("", "template_class")
                return RenderFailure(template.path, sample, variant, [Diagnostic(
                    file=file, line=line, message=f"template_class: {type(e).__name__}: {e}",
                    source="cutlens")], time.perf_counter() - t0)
            kernel = kcls(template.kernel_name)
            tctx = tcls(template.path.name, template.kind, sample, variant, kernel)
            ctx = {**sample.context(), **variant.values, "kernel": kernel, "template": tctx,
                   "kernel_name": template.kernel_name, "sample_name": sample.name,
                   "variant_name": variant.name}
            try:
                text, smap = self._render_file(env, str(template.path), ctx)
                companions = {name: RenderedFile(*self._render_file(env, str(p), ctx))
                              for name, p in template.companions.items()}
            except Exception as e:  # every template problem lands on its line
                diags = error_diagnostics(e, env, template.path, sample, variant)
                return RenderFailure(template.path, sample, variant, diags,
                                     time.perf_counter() - t0)
        finally:
            env.set_deadline(None)
        unit = RenderedUnit(template.path, sample, variant, text, smap, template.kernel_name,
                            kernel.signature, companions)
        if kernel.signature is None and template.samples:
            unit.warnings.append(Diagnostic(
                file=str(template.path), line=1, severity="warning", source="jinja",
                message="kernel.def_kernel(...) was never called: the kernel has no "
                        "signature, so it cannot be benchmarked",
                samples=[sample.name], variants=[variant.name]))
        unit.duration_s = time.perf_counter() - t0
        return unit

    def syntax_check(self, template: Template) -> list[Diagnostic]:
        """Compile (don't render) the template and its companions: syntax errors only."""
        env = self.environment(template)
        try:
            for p in [template.path, *template.companions.values()]:
                env.get_template(str(p))
        except Exception as e:
            diags = error_diagnostics(e, env, template.path, Sample("default"),
                                      Variant(0, "default", {}))
            for d in diags:
                d.samples, d.variants = [], []
            return diags
        return []

    def _render_file(self, env: RenderEnvironment, path: str,
                     ctx: dict) -> tuple[str, sourcemap.SourceMap]:
        tmpl = env.get_template(path)
        marked = tmpl.render(ctx)
        return sourcemap.build(marked, env.files)


def render_all(renderer: Renderer, template: Template) -> list[RenderedUnit | RenderFailure]:
    """Render every sample × variant of ``template``."""
    return [renderer.render(template, s, v) for s, v in template.pairs()]


def _no_torch() -> None:  # pragma: no cover - a guard used by tests
    assert "torch" not in sys.modules


__all__ = ["RenderFailure", "RenderTimeout", "RenderedFile", "RenderedUnit", "Renderer",
           "TemplateError", "render_all"]
