"""Source-map markers planted in a template's AST: invisible marks in the output before
each piece of literal text and around each ``{{ expression }}`` and ``{% include %}`` (stripped
by :func:`sourcemap.build`), and a time check in every loop and macro."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from cutlens.render import sourcemap

#: The module global holding a template's literal texts, and the strip function/filter.
DATA_NAME = "cutlens_data"
STRIP_NAME = "cutlens_strip"
#: The filter that makes a ``{% set %}`` block's marked text a :class:`CapturedText`.
CAPTURE_NAME = "cutlens_capture"

_rendering: ContextVar[bool] = ContextVar("cutlens_rendering", default=False)


class CapturedText(str):
    """The text a ``{% set %}`` block captured: plain text as a value (compared, filtered,
    passed to hooks), its markers back when a render prints it, so the lines it prints map
    to the block's own lines (as a render driver's captured text does)."""

    marked: str

    def __new__(cls, marked: str) -> CapturedText:
        obj = super().__new__(cls, sourcemap.strip(marked))
        obj.marked = marked
        return obj

    def __str__(self) -> str:
        return self.marked if _rendering.get() else str.__str__(self)


def capture(value: Any) -> Any:
    """The :data:`CAPTURE_NAME` filter."""
    return CapturedText(value) if isinstance(value, str) else value


@contextmanager
def rendering() -> Iterator[None]:
    """While a render runs: printing a :class:`CapturedText` prints its markers."""
    token = _rendering.set(True)
    try:
        yield
    finally:
        _rendering.reset(token)


class MarkSource(NodeTransformer):
    """Plant source-map markers in a template's AST, and a time check in every loop."""

    def __init__(self, fid: int, source: str, var_start: str, literal_refs: bool = True,
                 capture: str | None = None) -> None:
        """``literal_refs``: read literal text from ``cutlens_data`` (the literal-edit fast
        path of :class:`~cutlens.render.environment.RenderEnvironment`). ``capture``: a
        filter that turns the marked text a ``{% set %}`` block captures into a value that
        keeps its source map (default: the markers are left out of captured text)."""
        self.fid = fid
        self.literal_refs = literal_refs
        self.capture = capture
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
                if self.literal_refs:
                    out.append(self._data_ref(child))
                else:
                    data(child.data, ln)
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
            return cast(nodes.Node, self._value(node, printed=False))
        return super().generic_visit(node, *args, **kwargs)

    def _unmarked(self, node: nodes.AssignBlock | nodes.FilterBlock,
                  first: str = STRIP_NAME, keep: bool = False) -> nodes.Node:
        # Captured text is a value (compared, passed to hooks): keep it free of markers,
        # also those of the macros and includes it prints (the first filter strips them) —
        # or, with ``keep``, marked inside and made a source-mapped value by ``first``.
        strip = nodes.Filter(None, first, [], [], None, None, lineno=node.lineno)
        inner = node.filter
        while inner is not None and isinstance(inner.node, nodes.Filter):
            inner = inner.node
        if inner is None:
            node.filter = strip
        else:
            inner.node = strip
        markers, self.markers = self.markers, self.markers and keep
        try:
            return self.generic_visit(node)
        finally:
            self.markers = markers

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        if self.capture is not None:
            return self._unmarked(node, self.capture, keep=True)
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


RESERVED_RE = re.compile(f"[{sourcemap.POINT}-{sourcemap.INCLUDE}]")


def strip_value(value: Any) -> Any:
    if isinstance(value, CapturedText):
        return str.__str__(value)
    return sourcemap.strip(value) if isinstance(value, str) else value


