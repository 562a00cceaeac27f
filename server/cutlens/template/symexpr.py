"""Size expressions written in templates and front matter (``"M"``, ``"2*M + 1"``), read
without ``eval``.

``sympy.sympify`` evaluates a string as Python, so front matter such as
``size = ["().__class__.__base__.__subclasses__()..."]`` would run code. Here the string is
parsed with :mod:`ast` and only integers, names (size symbols), ``+ - * / // % **`` and a few
functions become a sympy expression; anything else is an :class:`ExprError`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import sympy
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_LENGTH = 256
MAX_INT = 2**63
MAX_POWER = 64
FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "floor": sympy.floor, "ceiling": sympy.ceiling, "Min": sympy.Min, "Max": sympy.Max,
    "min": sympy.Min, "max": sympy.Max, "Mod": sympy.Mod, "Abs": sympy.Abs, "abs": sympy.Abs,
}


class ExprError(ValueError):
    """Text that is not a size expression."""


def _default_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def parse(text: str, symbol: Callable[[str], sympy.Symbol] = _default_symbol) -> sympy.Expr:
    """The sympy expression of ``text``; names become ``symbol(name)``."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"invalid syntax: {e.msg}") from None
    return _Build(symbol).visit(tree.body)


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: sympy.Mod(a, b),
}


class _Build(ast.NodeVisitor):
    def __init__(self, symbol: Callable[[str], sympy.Symbol]) -> None:
        self.symbol = symbol

    def generic_visit(self, node: ast.AST) -> Any:
        raise ExprError(f"{type(node).__name__} is not allowed in a size expression "
                        "(integers, symbols, + - * / // % ** and "
                        f"{', '.join(sorted(FUNCTIONS))} only)")

    def visit_Constant(self, node: ast.Constant) -> sympy.Expr:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int):
            raise ExprError(f"{v!r} is not an integer")
        if abs(v) > MAX_INT:
            raise ExprError(f"{v} is too large")
        return sympy.Integer(v)

    def visit_Name(self, node: ast.Name) -> sympy.Expr:
        return self.symbol(node.id)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> sympy.Expr:
        v = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> sympy.Expr:
        a, b = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            if b.is_number and not (b.is_integer and 0 <= int(b) <= MAX_POWER):
                raise ExprError(f"exponent {b} is not an integer in 0..{MAX_POWER}")
            return a**b
        op = _BINOPS.get(type(node.op))
        if op is None:
            return self.generic_visit(node)
        return op(a, b)

    def visit_Call(self, node: ast.Call) -> sympy.Expr:
        fn = FUNCTIONS.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if fn is None or node.keywords:
            raise ExprError(f"call of {ast.unparse(node.func)!r} is not allowed (allowed: "
                            f"{', '.join(sorted(FUNCTIONS))})")
        return fn(*[self.visit(a) for a in node.args])


def to_expr(value: Any, symbol: Callable[[str], sympy.Symbol] = _default_symbol) -> sympy.Expr:
    """A sympy expression from an int, a sympy expression or expression text (never
    ``sympify`` of a string or a container, which would ``eval`` strings)."""
    if isinstance(value, bool):
        raise ExprError(f"{value!r} is not a size expression")
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, str):
        return parse(value, symbol)
    raise ExprError(f"{type(value).__name__} is not a size expression")


def evaluates_strings(fn: Any) -> bool:
    """True for callables of sympy (and mpmath), which ``sympify`` — ``eval`` — string
    arguments: ``expr.subs("M", "...")``, ``expr.func("...")``."""
    mod = getattr(fn, "__module__", None)
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, type):
        mod = type(owner).__module__ or mod
    return isinstance(mod, str) and mod.split(".")[0] in ("sympy", "mpmath")


def contains_string(values: Any, depth: int = 0) -> bool:
    """True when a string is anywhere in ``values`` (lists, tuples, sets, dicts)."""
    if isinstance(values, str):
        return True
    if depth > 8:
        return True  # too deep to look at: treat as unsafe
    if isinstance(values, dict):
        return any(contains_string(k, depth + 1) or contains_string(v, depth + 1)
                   for k, v in values.items())
    if isinstance(values, list | tuple | set | frozenset):
        return any(contains_string(v, depth + 1) for v in values)
    return False


class SympySafeSandbox(SandboxedEnvironment):
    """Jinja's sandbox, refusing string arguments to sympy callables (which would ``eval``
    them): ``{{ M.subs("M", "__import__('os')...") }}``."""

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if evaluates_strings(__obj) and contains_string((args, kwargs)):
            raise SecurityError("sympy functions and methods take no strings in templates "
                                "(sympy would evaluate them as Python)")
        return super().call(__context, __obj, *args, **kwargs)
