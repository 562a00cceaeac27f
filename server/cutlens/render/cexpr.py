"""Print sympy size expressions as C++, the way Inductor's ``CppPrinter`` does (``4096L*M``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sympy
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import precedence


class CppPrinter(C99CodePrinter):  # type: ignore[misc]  # sympy is untyped
    """Integers get an ``L`` suffix; floor/min/max become integer C++."""

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return f"{int(expr)}L"

    def _print_floor(self, expr: sympy.Expr) -> str:
        arg = expr.args[0]
        num, den = sympy.fraction(sympy.together(arg))
        if den != 1 and num.is_integer and den.is_integer:
            return f"({self._print(num)} / {self._print(den)})"
        return f"static_cast<int64_t>(std::floor({self._print(arg)}))"

    def _fold(self, fn: str, expr: sympy.Expr) -> str:
        args = [f"static_cast<int64_t>({self._print(a)})" for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"std::{fn}({out}, {a})"
        return out

    def _print_Max(self, expr: sympy.Expr) -> str:
        return self._fold("max", expr)

    def _print_Min(self, expr: sympy.Expr) -> str:
        return self._fold("min", expr)

    def _join(self, args: tuple[Any, ...], sep: str, level: int) -> str:
        return sep.join(self.parenthesize(a, level) for a in args)

    def _print_Add(self, expr: sympy.Add, order: str | None = None) -> str:
        return self._join(expr.args, " + ", precedence(expr))

    def _print_Mul(self, expr: sympy.Mul) -> str:
        return self._join(expr.args, "*", precedence(expr))

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.args
        if exp.is_Integer and int(exp) > 0:
            body = "*".join([self.parenthesize(base, precedence(expr))] * int(exp))
            return f"static_cast<int64_t>({body})"
        return str(super()._print_Pow(expr))

    def parenthesize(self, item: sympy.Basic, level: int, strict: bool = False) -> str:
        if isinstance(item, sympy.Integer) and item < 0:
            return f"({self._print(item)})"
        return str(super().parenthesize(item, level, strict))


_PRINTER = CppPrinter()


@lru_cache(maxsize=4096)
def _cexpr(expr: sympy.Expr) -> str:
    return str(_PRINTER.doprint(expr))


def cexpr(expr: sympy.Expr | int) -> str:
    """C++ text of a size expression."""
    if isinstance(expr, int | sympy.Integer):
        return f"{int(expr)}L"
    return _cexpr(sympy.sympify(expr))
