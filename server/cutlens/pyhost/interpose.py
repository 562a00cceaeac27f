"""Source maps through Python: while a render driver runs, every jinja2 template built from
source text — ``jinja2.Template(...)``, ``Environment.from_string(...)``,
``Environment.get_template(...)`` — is compiled by the caller's own environment (its options,
filters, globals and undefined unchanged) with cutlens's source-map markers planted in it.

A render then returns a :class:`MappedStr`: the same text plain jinja2 renders (markers
stripped, so Python code sees exactly what it would without cutlens) carrying its source map.
Printing a ``MappedStr`` inside another render puts its markers back, so a line an outer
template prints from an inner template's rendered value maps to the inner template's line;
a ``{% set %}`` block's captured text stays mapped the same way.

Templates built from a string are located in the ``.py`` file that holds the literal
(:mod:`cutlens.pyhost.literals`); a string made at run time maps to the line that built the
template. Only the worker process (:mod:`cutlens.pyhost.worker`) installs this.
"""

from __future__ import annotations

import builtins
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
from jinja2 import environment as jenv

from cutlens.pyhost.literals import LiteralIndex, Origin, read_source
from cutlens.render import sourcemap
from cutlens.render.markers import RESERVED_RE, STRIP_NAME, MarkSource, strip_value

CAPTURE_NAME = "cutlens_capture"
TICK_NAME = "cutlens_tick"
_state = threading.local()


def _depth() -> int:
    return getattr(_state, "depth", 0)


class MappedStr(str):
    """A rendered text that knows where each of its lines came from."""

    source_map: sourcemap.SourceMap
    marked: str

    def __new__(cls, text: str, source_map: sourcemap.SourceMap, marked: str) -> MappedStr:
        obj = super().__new__(cls, text)
        obj.source_map = source_map
        obj.marked = marked
        return obj

    def __str__(self) -> str:
        # Inside a render, printing this value puts its markers back: the outer map gets
        # this text's frames (stripped again when the outer render ends).
        return self.marked if _depth() > 0 else str.__str__(self)


@dataclass
class TemplateFile:
    """A template text cutlens planted markers in: where its lines live."""

    name: str
    #: The real file (a ``.py`` holding the literal, a ``.jinja`` a loader read) and how its
    #: lines map there (None: the template's lines are the file's lines).
    file: str
    origin: Origin | None = None
    #: A template built from a string, not located yet: its text and who built it (located
    #: when one of its lines is first needed — most templates a package defines are never
    #: rendered in a run).
    pending: tuple[str, tuple[str, int] | None] | None = None


@dataclass
class Registry:
    """Every instrumented template of the run, the renders, and where to find literals."""

    root: Path
    overlays: dict[str, str] = field(default_factory=dict)
    #: Files outside the root that count as the project's (an installed template module the
    #: config names as the one being checked).
    extra_files: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)
    templates: dict[str, TemplateFile] = field(default_factory=dict)
    literals: LiteralIndex = field(default_factory=LiteralIndex)
    #: Every render's result, in order (for anchoring text Python built from them).
    renders: list[MappedStr] = field(default_factory=list)
    _indexed: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)
    _n_modules: int = 0
    _module_files: list[str] = field(default_factory=list)
    #: Templates whose frames were translated since the last :meth:`reset_used`.
    used: set[str] = field(default_factory=set)
    #: Undefined names printed as empty text: (message, file, line), each once.
    undefined: list[tuple[str, str, int]] = field(default_factory=list)
    #: Text files the driver read (their lines may be pasted into a unit).
    reads: list[str] = field(default_factory=list)
    _read_cache: dict[str, str] = field(default_factory=dict)

    def read_text(self, path: str) -> str:
        if path not in self._read_cache:
            self._read_cache[path] = read_source(path, self.overlays) or ""
        return self._read_cache[path]

    def index(self, file: str) -> None:
        """Index the literals of a project ``.py`` file (once per run)."""
        if file in self._indexed:
            return
        self._indexed.add(file)
        text = read_source(file, self.overlays)
        if text is not None:
            self.literals.add(file, text)

    def fid(self, name: str) -> int:
        if name not in self.templates:
            self.templates[name] = TemplateFile(name, name)
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def in_project(self, file: str) -> bool:
        try:
            p = Path(file).resolve()
        except (OSError, ValueError):
            return False
        if str(p) in self.extra_files:
            return True
        return p.is_relative_to(self.root) and "site-packages" not in p.parts and \
            not p.is_relative_to(_CUTLENS)

    def _project_modules(self) -> list[str]:
        """Files of the project modules imported since the last call (indexed lazily)."""
        new = []
        for mod in list(sys.modules.values())[self._n_modules:]:
            f = getattr(mod, "__file__", None)
            if f and f not in self._seen and f.endswith(".py"):
                self._seen.add(f)
                if self.in_project(f):
                    new.append(str(Path(f).resolve()))
        self._n_modules = len(sys.modules)
        self._module_files += new
        return self._module_files

    def deferred(self, source: str) -> TemplateFile:
        """A template file for ``source``, located later (:meth:`resolve`)."""
        name = f"<cutlens:{len(self.templates)}>"
        tf = TemplateFile(name, name, None, (source, _caller(self)))
        self.templates[name] = tf
        return tf

    def resolve(self, tf: TemplateFile) -> TemplateFile:
        """Locate a deferred template: the literal in the caller's own file first, then in
        the project's imported modules; a string built at run time maps to its builder."""
        if tf.pending is None:
            return tf
        source, caller = tf.pending
        tf.pending = None
        first = [caller[0]] if caller is not None else []
        for f in first:
            self.index(f)
        origin = self.literals.exact(source, first)
        if origin is None:
            others = [f for f in self._project_modules() if f not in first]
            for f in others:
                self.index(f)
            origin = self.literals.exact(source, others) or \
                self.literals.near(source, first + others)
        if origin is None:
            file, line = caller if caller is not None else ("<unknown>", 1)
            origin = Origin(file, [], [], line)
        tf.file, tf.origin = origin.file, origin
        return tf

    def real(self, frame: sourcemap.Frame) -> sourcemap.Frame:
        """A frame of an instrumented template, in the real file."""
        tf = self.templates.get(frame.file)
        if tf is not None:
            self.used.add(tf.name)
            self.resolve(tf)
        if tf is None or tf.origin is None:
            return frame if tf is None else sourcemap.Frame(tf.file, frame.line,
                                                            frame.column, frame.kind)
        line, col = tf.origin.position(frame.line, frame.column)
        return sourcemap.Frame(tf.file, line, col, frame.kind)

    def constants(self, names: set[str]) -> list[tuple[str, int]]:
        """(file, line of the statement) of the templates named, built from literals."""
        found = [self.resolve(t) for n in names if (t := self.templates.get(n)) is not None]
        return sorted({(t.file, t.origin.statement_line) for t in found
                       if t.origin is not None and t.origin.chars})

    def real_position(self, name: str, line: int) -> tuple[str, int]:
        f = self.real(sourcemap.Frame(name, line))
        return f.file, f.line


_CUTLENS = Path(__file__).resolve().parents[1]
_JINJA = Path(jinja2.__file__).resolve().parent


def _caller(reg: Registry) -> tuple[str, int] | None:
    """The innermost project frame on the stack (who built the template)."""
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if fn.endswith(".py") and reg.in_project(fn):
            return str(Path(fn).resolve()), f.f_lineno
        f = f.f_back
    return None


@contextmanager
def installed(reg: Registry) -> Iterator[Registry]:
    """jinja2 instrumented for the duration of the block (one driver run)."""
    orig_compile = jenv.Environment.compile
    orig_parse = jenv.Environment._parse
    orig_render = jenv.Template.render
    orig_undefined_str = jinja2.Undefined.__str__
    orig_open = builtins.open

    def tracking_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and "b" not in mode and not set(mode) & set("wax+"):
            p = str(Path(file).resolve())
            if p not in reg.reads and not p.endswith(".py"):
                reg.reads.append(p)
        return orig_open(file, mode, *args, **kwargs)

    def capture(marked: Any) -> Any:
        if not isinstance(marked, str):
            return marked
        text, smap = sourcemap.build(str.__str__(marked), reg.names)
        return MappedStr(text, smap, str.__str__(marked))

    def compile(self: jenv.Environment, source: Any, name: str | None = None,
                filename: str | None = None, raw: bool = False,
                defer_init: bool = False) -> Any:
        if isinstance(source, str) and filename is None and not RESERVED_RE.search(source):
            filename = reg.deferred(source).name
        return orig_compile(self, source, name, filename, raw,  # type: ignore[call-overload]
                            defer_init)

    def _parse(self: jenv.Environment, source: str, name: str | None,
               filename: str | None) -> Any:
        tree = orig_parse(self, source, name, filename)
        if RESERVED_RE.search(source):
            return tree  # it holds marker characters: leave it alone
        _prepare(self)
        fid = reg.fid(filename or name or "<template>")
        mark = MarkSource(fid, source, self.variable_start_string, literal_refs=False,
                          capture=CAPTURE_NAME)
        return mark.visit(tree)

    def render(self: jenv.Template, *args: Any, **kwargs: Any) -> Any:
        _state.depth = _depth() + 1
        try:
            marked = orig_render(self, *args, **kwargs)
        finally:
            _state.depth -= 1
        out = capture(marked)
        reg.renders.append(out)
        return out

    def _prepare(env: jenv.Environment) -> None:
        if CAPTURE_NAME not in env.filters:
            env.filters[CAPTURE_NAME] = capture
            env.filters[STRIP_NAME] = strip_value
            env.globals[STRIP_NAME] = strip_value
            env.globals[TICK_NAME] = _tick

    def undefined_str(self: jinja2.Undefined) -> str:
        _printed_undefined(reg, self)
        return orig_undefined_str(self)

    jinja2.Undefined.__str__ = undefined_str  # type: ignore[method-assign]
    builtins.open = tracking_open
    jenv.Environment.compile = compile  # type: ignore[method-assign]
    jenv.Environment._parse = _parse  # type: ignore[method-assign]
    jenv.Template.render = render  # type: ignore[method-assign]
    try:
        yield reg
    finally:
        jenv.Environment.compile = orig_compile  # type: ignore[method-assign]
        jenv.Environment._parse = orig_parse  # type: ignore[method-assign]
        jenv.Template.render = orig_render  # type: ignore[method-assign]
        jinja2.Undefined.__str__ = orig_undefined_str  # type: ignore[method-assign]
        builtins.open = orig_open


def _printed_undefined(reg: Registry, value: jinja2.Undefined) -> None:
    """Note an undefined value a template printed (plain jinja2 prints it as empty text):
    the innermost instrumented template frame says where."""
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if name in reg.templates:
            t = f.f_globals.get("__jinja_template__")
            line = t.get_corresponding_lineno(f.f_lineno) if t is not None else 1
            file, ln = reg.real_position(name, line)
            hint = value._undefined_hint or (
                f"{value._undefined_name!r} is undefined" if value._undefined_name else
                "an undefined value")
            item = (f"{hint}: printed as empty text", file, ln)
            if item not in reg.undefined:
                reg.undefined.append(item)
            return
        f = f.f_back


def _tick() -> None:
    """The time check MarkSource plants in loops (the worker's own limit stops a render)."""


