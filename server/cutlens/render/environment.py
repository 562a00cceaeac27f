"""The render environment: sandboxed, ``StrictUndefined``, source-marking, time-limited
Jinja; an edit of literal text only swaps strings in the compiled template."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import StrictUndefined, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import Token, TokenStream
from jinja2.parser import Parser
from jinja2.runtime import Macro, Undefined

from cutlens.render.loader import OverlayLoader
from cutlens.render.markers import (
    CAPTURE_NAME,
    DATA_NAME,
    RESERVED_RE,
    STRIP_NAME,
    MarkSource,
    capture,
    strip_value,
)
from cutlens.render.runtime import is_runtime
from cutlens.template.symexpr import SympySafeSandbox


class RenderTimeout(RuntimeError):
    """The render ran past its time limit."""



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

    signature: tuple[Any, ...]
    template: JinjaTemplate
    data: list[str]


def _signature(tokens: list[Token]) -> tuple[Any, ...]:
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
        # jinja2's default keep_trailing_newline=False: the text FlashInfer, AITemplate and
        # Inductor render (jinja2.Template(...), jinja2.Environment()), byte for byte.
        super().__init__(loader=loader, undefined=StrictUndefined, auto_reload=True,
                         cache_size=400)
        self.files: list[str] = []
        self.file_ids: dict[str, int] = {}
        self._deadline = threading.local()
        self._stash = threading.local()
        self._compiled: dict[str, _Compiled] = {}
        self.globals["cutlens_tick"] = lambda: None
        self.globals[STRIP_NAME] = self.filters[STRIP_NAME] = strip_value
        self.filters[CAPTURE_NAME] = capture
        self.tests["runtime"] = is_runtime
        self.fast_reloads = 0

    def take_data(self) -> list[str]:
        data = getattr(self._stash, "data", None)
        self._stash.data = None
        return data if data is not None else []

    def load_source(self, name: str, source: str, filename: str,
                    uptodate: Callable[[], bool], globals: Any) -> JinjaTemplate:
        """Compile ``source`` — or, when only literal text changed since the last compile of
        ``filename``, reuse that compile with the new literal strings."""
        reserved = RESERVED_RE.search(source)
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
        mark = MarkSource(fid, source, self.variable_start_string, capture=CAPTURE_NAME)
        tree = cast(nodes.Template, mark.visit(tree))
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
            args = tuple(strip_value(a) for a in args)
            kwargs = {k: strip_value(v) for k, v in kwargs.items()}
        return super().call(__context, __obj, *args, **kwargs)


