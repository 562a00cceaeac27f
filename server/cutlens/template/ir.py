"""Sample IR nodes: named buffers answering the Inductor node interface templates use.

A :class:`Node` has a dtype (torch dtype name), sizes and strides (ints or sympy
expressions over size symbols with hints) and an offset. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy

from cutlens.template import symexpr


class IRError(ValueError):
    """A sample node that cannot be built (unknown dtype, bad size...)."""


@dataclass(frozen=True)
class DType:
    """A torch dtype by name, with the C++ spellings Inductor uses for it."""

    name: str
    itemsize: int
    cpp: str  # Inductor's DTYPE_TO_CPP (kernel.dtype, argument types)
    cutlass: str  # CUTLASSTemplate._DTYPE_TO_CUTLASS (template.cutlass_type_cast)
    is_floating_point: bool = False

    def __str__(self) -> str:
        return f"torch.{self.name}"

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.name == other.name
        if isinstance(other, str):
            return other in (self.name, f"torch.{self.name}")
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


def _dt(name: str, itemsize: int, cpp: str, cutlass: str, fp: bool = False) -> DType:
    return DType(name, itemsize, cpp, cutlass, fp)


DTYPES: dict[str, DType] = {d.name: d for d in [
    _dt("float32", 4, "float", "float", True),
    _dt("float64", 8, "double", "double", True),
    _dt("float16", 2, "half", "cutlass::half_t", True),
    _dt("bfloat16", 2, "bfloat16", "cutlass::bfloat16_t", True),
    _dt("float8_e4m3fn", 1, "__nv_fp8_e4m3", "cutlass::float_e4m3_t", True),
    _dt("float8_e5m2", 1, "__nv_fp8_e5m2", "cutlass::float_e5m2_t", True),
    _dt("int64", 8, "long", "int64_t"),
    _dt("int32", 4, "int", "int"),
    _dt("int16", 2, "short", "int16_t"),
    _dt("int8", 1, "signed char", "int8_t"),
    _dt("uint8", 1, "unsigned char", "uint8_t"),
    _dt("bool", 1, "bool", "bool"),
]}
DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "fp16": "float16",
                 "bf16": "bfloat16", "fp32": "float32", "long": "int64", "int": "int32"}


def dtype(name: str) -> DType:
    """The :class:`DType` named ``name`` (``bfloat16``, ``torch.float16``, ``half``...)."""
    key = name.removeprefix("torch.")
    key = DTYPE_ALIASES.get(key, key)
    try:
        return DTYPES[key]
    except KeyError:
        known = ", ".join(DTYPES)
        raise IRError(f"unknown dtype {name!r} (known: {known})") from None


def symbol(name: str) -> sympy.Symbol:
    """A size symbol: a positive integer, as Inductor creates them."""
    return sympy.Symbol(name, integer=True, positive=True)


def parse_dim(value: int | str, what: str = "size") -> sympy.Expr:
    """An int or an expression over symbols (``"M"``, ``"2*M"``) as a sympy expression."""
    if isinstance(value, bool):
        raise IRError(f"{what} must be an integer or a symbol, not {value!r}")
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, str):
        try:
            expr = symexpr.parse(value, symbol)  # never sympify: it evals strings
        except (symexpr.ExprError, TypeError, ValueError) as e:
            raise IRError(f"cannot parse {what} {value!r}: {e}") from None
        if not isinstance(expr, sympy.Expr) or not expr.is_integer:
            raise IRError(f"{what} {value!r} is not an integer expression")
        return expr
    raise IRError(f"{what} must be an integer or a symbol, not {value!r}")


def contiguous_strides(sizes: list[sympy.Expr]) -> list[sympy.Expr]:
    """Row-major strides for ``sizes``."""
    strides: list[sympy.Expr] = []
    acc: sympy.Expr = sympy.Integer(1)
    for s in reversed(sizes):
        strides.append(acc)
        acc = acc * s
    return list(reversed(strides))


@dataclass
class Layout:
    """``node.get_layout()``: dtype, size, stride, offset, device."""

    dtype: DType
    size: list[sympy.Expr]
    stride: list[sympy.Expr]
    offset: sympy.Expr = field(default_factory=lambda: sympy.Integer(0))
    device: str = "cuda"


class Device:
    """``node.get_device()``: ``type`` and ``index``, like ``torch.device``."""

    def __init__(self, type_: str = "cuda", index: int = 0) -> None:
        self.type = type_
        self.index = index

    def __str__(self) -> str:
        return f"{self.type}:{self.index}"

    __repr__ = __str__


class Node:
    """A named sample buffer with the methods of an Inductor IR node."""

    def __init__(self, name: str, layout: Layout) -> None:
        self.name = name
        self.layout = layout
        if len(layout.size) != len(layout.stride):
            raise IRError(f"{name}: {len(layout.size)} sizes but {len(layout.stride)} strides")

    # The Inductor node interface.
    def get_name(self) -> str:
        return self.name

    def get_size(self) -> list[sympy.Expr]:
        return list(self.layout.size)

    def get_stride(self) -> list[sympy.Expr]:
        return list(self.layout.stride)

    def get_layout(self) -> Layout:
        return self.layout

    def get_dtype(self) -> DType:
        return self.layout.dtype

    def get_numel(self) -> sympy.Expr:
        return sympy.Mul(*self.layout.size) if self.layout.size else sympy.Integer(1)

    def get_device(self) -> Device:
        return Device("cuda", 0)

    def get_offset(self) -> sympy.Expr:
        return self.layout.offset

    @cached_property
    def free_symbols(self) -> list[sympy.Symbol]:
        """Symbols in sizes, strides and offset, in order of first appearance."""
        seen: list[sympy.Symbol] = []
        for e in [*self.layout.size, *self.layout.stride, self.layout.offset]:
            for s in sorted(sympy.sympify(e).free_symbols, key=lambda s: s.name):
                if s not in seen:
                    seen.append(s)
        return seen

    def concrete(self, hints: dict[str, int]) -> dict[str, Any]:
        """Sizes, strides and offset with every symbol replaced by its hint."""
        bad = [k for k, v in hints.items() if isinstance(v, bool) or not isinstance(v, int)]
        if bad:  # never hand sympy a string: subs() would eval it
            raise IRError(f"{self.name}: hint {bad[0]!r} is not an integer")
        subs = {symbol(str(k)): sympy.Integer(v) for k, v in hints.items()}

        def ev(e: sympy.Expr) -> int:
            v = sympy.sympify(e).subs(subs)
            if v.free_symbols:
                missing = ", ".join(sorted(s.name for s in v.free_symbols))
                raise IRError(f"{self.name}: no hint for {missing}")
            return int(v)

        return {
            "dtype": self.layout.dtype.name,
            "size": [ev(s) for s in self.layout.size],
            "stride": [ev(s) for s in self.layout.stride],
            "offset": ev(self.layout.offset),
        }

    def describe(self) -> str:
        """``bfloat16[4096, 4096] stride [1, 4096]`` — for hovers and headers."""
        size = ", ".join(str(s) for s in self.layout.size)
        stride = ", ".join(str(s) for s in self.layout.stride)
        off = f" offset {self.layout.offset}" if self.layout.offset != 0 else ""
        return f"{self.layout.dtype.name}[{size}] stride [{stride}]{off}"

    def __repr__(self) -> str:
        return f"Node({self.name}: {self.describe()})"


def make_node(name: str, spec: dict[str, Any]) -> Node:
    """Build a node from a front-matter table: ``{dtype, size, stride?, offset?}``."""
    unknown = set(spec) - {"dtype", "size", "stride", "offset", "device"}
    if unknown:
        raise IRError(f"{name}: unknown key(s) {', '.join(sorted(unknown))} "
                      "(expected dtype, size, stride, offset)")
    if "dtype" not in spec:
        raise IRError(f"{name}: missing dtype")
    if "size" not in spec:
        raise IRError(f"{name}: missing size")
    dt = dtype(str(spec["dtype"]))
    raw_size = spec["size"]
    if not isinstance(raw_size, list):
        raise IRError(f"{name}: size must be a list")
    size = [parse_dim(v, f"{name} size") for v in raw_size]
    if "stride" in spec:
        raw_stride = spec["stride"]
        if not isinstance(raw_stride, list) or len(raw_stride) != len(size):
            raise IRError(f"{name}: stride must be a list of {len(size)} entries")
        stride = [parse_dim(v, f"{name} stride") for v in raw_stride]
    else:
        stride = contiguous_strides(size)
    offset = parse_dim(spec.get("offset", 0), f"{name} offset")
    return Node(name, Layout(dt, size, stride, offset, str(spec.get("device", "cuda"))))
