"""The render context: ``kernel`` and ``template``, Inductor's CUDA template hook API.

Each hook returns the C++ text Inductor's ``CUDATemplateKernel`` / ``CUTLASSTemplate``
produce for the same nodes (torch/_inductor/codegen/cuda, PR #107931), plus the later
additions (``batch_stride``, ``cutlass_dtype``, ``max_valid_index``, ``get_layout_args``).
(Over 450 lines: the whole hook API templates are written against, kept in one place.)
"""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import sympy

from cutlens.render.cexpr import cexpr
from cutlens.template.ir import DTYPES, Node
from cutlens.template.model import RuntimeParam
from cutlens.template.shapes import SizeMarks, generic_text
from cutlens.template.symexpr import ExprError, to_expr

EXTRA_CPP_ARGS = "size_t* workspace_size, uint8_t* workspace, cudaStream_t stream"
#: C++ type of a size argument in the kernel signature.
SIZE_ARG_TYPE = "int64_t"
_INDUCTOR_SYMBOL = re.compile(r"^p?s\d+$")


class HookError(RuntimeError):
    """A hook refused its arguments (Inductor raises ``RuntimeError`` in the same cases)."""


class _Unset(int):
    """``default_value`` left out (renders 0 like Inductor, with a warning when it is used)."""

    def __repr__(self) -> str:
        return "0"


UNSET = _Unset(0)


def _normalize_idx(index: int, total_length: int) -> int:
    return index if index >= 0 else index + total_length


class CodeBuffer:
    """Inductor's ``IndentedBuffer`` as templates use it: ``splice`` then ``getvalue()``."""

    def __init__(self, initial_indent: int = 0) -> None:
        self._lines: list[str] = []
        self._indent = initial_indent
        self.tabwidth = 4

    def splice(self, code: str, strip: bool = False) -> None:
        code = textwrap.dedent(code)
        if strip:
            code = code.lstrip()
        code = code.rstrip()
        if not code:
            return
        for line in code.split("\n"):
            self.writeline(line)

    def writeline(self, line: str) -> None:
        prefix = " " * (self._indent * self.tabwidth)
        self._lines.append(f"{prefix}{line}" if line.strip() else "")

    def getvalue(self) -> str:
        return "".join(line + "\n" for line in self._lines)

    def __str__(self) -> str:
        return self.getvalue()


@dataclass
class KernelArg:
    """One argument of the kernel's C signature, in order."""

    name: str
    kind: str  # "input" | "output" | "size" | "scalar"
    node: Node | None = None
    symbol: sympy.Symbol | None = None
    ctype: str = ""
    #: A scalar's runtime parameter: its variant key and the C values of named values.
    param: RuntimeParam | None = None


@dataclass
class KernelSignature:
    """What ``def_kernel`` declared: enough for a bench runner to call the built library."""

    kernel_name: str
    args: list[KernelArg] = field(default_factory=list)
    text: str = ""

    def to_json(self, hints: dict[str, int], absent: list[str] | None = None,
                values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Concrete argument list (symbols replaced by their hints, runtime parameters by
        the C value of the variant's ``values``); ``absent`` names the sample's optional
        nodes that are None (bound as None for the bench reference).

        A scalar argument is ``{"name", "kind": "scalar", "ctype", "value", "key"}``: any
        extra scalar of the ABI (a runtime parameter, Inductor's ``uint8_t swizzle``)."""
        out = []
        for a in self.args:
            if a.kind == "scalar":
                assert a.param is not None
                key = a.param.key
                if values is None or key not in values:
                    raise HookError(f"runtime argument {a.name} has no value: the variant "
                                    f"lacks key {key!r}")
                try:
                    c = a.param.c_value(values[key])
                except ValueError as e:
                    raise HookError(f"runtime argument {a.name}: {e}") from None
                out.append({"name": a.name, "kind": "scalar", "ctype": a.ctype, "value": c,
                            "key": key})
            elif a.kind == "size":
                assert a.symbol is not None
                if a.symbol.name not in hints:
                    raise HookError(f"size symbol {a.symbol.name} has no hint; "
                                    f"add it to the sample's hints table")
                out.append({"name": a.name, "kind": "size", "ctype": a.ctype,
                            "value": int(hints[a.symbol.name])})
            else:
                assert a.node is not None
                out.append({"name": a.name, "kind": a.kind, "ctype": a.ctype,
                            "node": a.node.get_name(), **a.node.concrete(hints)})
        return {"kernel": self.kernel_name, "args": out, "absent": list(absent or [])}


class KernelContext:
    """``kernel`` in templates: declares the signature and names nodes' sizes in C++."""

    def __init__(self, kernel_name: str) -> None:
        self.kernel_name = kernel_name
        #: arg name -> node, in the order def_kernel registered them.
        self.named_nodes: dict[str, Node] = {}
        #: node name -> arg name (Inductor's ``self.args.input_buffers``/``output_buffers``).
        self.input_buffers: dict[str, str] = {}
        self.output_buffers: dict[str, str] = {}
        #: symbol -> C name of the size argument.
        self.size_args: dict[sympy.Symbol, str] = {}
        #: The variant's runtime parameters (set by the renderer), in declaration order.
        self.runtime_params: list[RuntimeParam] = []
        self.signature: KernelSignature | None = None
        #: Hooks that quietly rendered their default: (template file, line, message).
        self.quiet_defaults: list[tuple[str, int, str]] = []
        #: A shape-generic render (:mod:`cutlens.render.shapes`): the values of the size
        #: symbols standing for concrete sizes, and the marks around what the hooks print
        #: from them (the static render prints the values there, and no size argument).
        self.shape_sizes: dict[sympy.Symbol, sympy.Integer] = {}
        self.size_marks: SizeMarks | None = None

    def _quiet_default(self, hook: str, message: str, default: object) -> str:
        """Render ``default`` as Inductor does, and note where a template relied on it (an
        index past the node's rank: probably a mistake)."""
        f: FrameType | None = sys._getframe(2)
        while f is not None:
            t = f.f_globals.get("__jinja_template__")
            if t is not None:
                line = t.get_corresponding_lineno(f.f_lineno)
                self.quiet_defaults.append((f.f_code.co_filename, line,
                                            f"kernel.{hook}(): {message}: renders the default "
                                            f"{default!s} (as Inductor does)"))
                break
            f = f.f_back
        return str(default)

    # -- signature -------------------------------------------------------------------------
    def def_kernel(self, inputs: list[Node | None], outputs: list[Node | None],
                   names_str: str = "", input_reorder: list[int] | None = None,
                   runtime: list[str] | None = None) -> str:
        """``PT_EXPORT int <name>(<buffers>, <size args>, <runtime args>,
        size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)``; registers each
        node under its name.

        ``names_str``: comma-separated input then output argument names. ``input_reorder``:
        the actual order of the inputs (e.g. ``[2, 0, 1]`` for ``Bias, X, W``).
        ``runtime``: the order of the runtime parameters' arguments (every
        ``[variants.runtime]`` key, once); default: their declaration order.
        """
        if self.signature is not None:
            raise HookError("def_kernel called twice in one template")
        names = [x.strip() for x in names_str.strip().split(",")]
        if len(inputs) + len(outputs) != len(names):
            raise HookError(
                f"def_kernel: {len(inputs)} inputs + {len(outputs)} outputs != "
                f"{len(names)} names in names_str={names_str!r}")
        if input_reorder is not None:
            if sorted(input_reorder) != list(range(len(inputs))):
                raise HookError(f"def_kernel: input_reorder={input_reorder} is not a "
                                f"permutation of range({len(inputs)})")
        else:
            input_reorder = list(range(len(inputs)))
        for idx in input_reorder:
            node = inputs[idx]
            if node is not None:
                self._check_node(node, names[idx])
                self.named_nodes[names[idx]] = node
                self.input_buffers.setdefault(node.get_name(), names[idx])
        for name, node in zip(names[len(inputs):], outputs, strict=True):
            if node is not None:
                self._check_node(node, name)
                self.named_nodes[name] = node
                self.output_buffers.setdefault(node.get_name(), name)

        sig = KernelSignature(self.kernel_name)
        arg_defs = []
        for node_name, arg in self.input_buffers.items():
            if node_name in self.output_buffers:
                continue
            node = self._node_by_name(node_name)
            ctype = f"const {node.get_dtype().cpp}*"
            arg_defs.append(f"{ctype} {arg}")
            sig.args.append(KernelArg(arg, "input", node, ctype=ctype))
        for node_name, arg in self.output_buffers.items():
            node = self._node_by_name(node_name)
            ctype = f"{node.get_dtype().cpp}*"
            arg_defs.append(f"{ctype} {arg}")
            sig.args.append(KernelArg(arg, "output", node, ctype=ctype))
        for node in self.named_nodes.values():
            for s in node.free_symbols:
                self._size_arg(s)
        shape_args: set[int] = set()
        for s, cname in self.size_args.items():
            if s in self.shape_sizes:
                shape_args.add(len(arg_defs))
            arg_defs.append(f"{SIZE_ARG_TYPE} {cname}")
            sig.args.append(KernelArg(cname, "size", symbol=s, ctype=SIZE_ARG_TYPE))
        taken = {a.name for a in sig.args}
        for p in self._runtime_order(runtime):
            if p.name in taken:
                raise HookError(f"def_kernel: runtime argument {p.name!r} ([variants.runtime] "
                                f"{p.key}) has the name of another argument; give it another "
                                f"with arg = \"...\"")
            arg_defs.append(f"{p.ctype} {p.name}")
            sig.args.append(KernelArg(p.name, "scalar", ctype=p.ctype, param=p))
        text = ""
        for i, a in enumerate([*arg_defs, EXTRA_CPP_ARGS]):
            piece = f", {a}" if i else a
            # a static render has no such argument
            text += self.size_marks.mark(piece, "") if (
                i in shape_args and self.size_marks is not None) else piece
        sig.text = f"PT_EXPORT int {self.kernel_name}({generic_text(text)})"
        self.signature = sig
        return f"PT_EXPORT int {self.kernel_name}({text})"

    def _runtime_order(self, runtime: list[str] | None) -> list[RuntimeParam]:
        by_key = {p.key: p for p in self.runtime_params}
        if runtime is None:
            return list(self.runtime_params)
        names = [str(k) for k in runtime]
        unknown = [k for k in names if k not in by_key]
        missing = [k for k in by_key if k not in names]
        if unknown or missing or len(set(names)) != len(names):
            raise HookError(
                f"def_kernel: runtime={names} must list each runtime parameter once "
                f"(declared in [variants.runtime]: {', '.join(by_key) or 'none'})")
        return [by_key[k] for k in names]

    def _check_node(self, node: Any, name: str) -> None:
        if not isinstance(node, Node):
            raise HookError(f"def_kernel: argument {name!r} is {node!r}, not a sample node")

    def _node_by_name(self, node_name: str) -> Node:
        for n in self.named_nodes.values():
            if n.get_name() == node_name:
                return n
        raise KeyError(node_name)

    def _size_arg(self, s: sympy.Symbol) -> str:
        if s not in self.size_args:
            # Inductor names its own size symbols s0, s1... and passes them as ks0, ks1...
            self.size_args[s] = f"k{s.name}" if _INDUCTOR_SYMBOL.match(s.name) else s.name
        return self.size_args[s]

    def rename_indexing(self, expr: sympy.Expr | int) -> sympy.Expr:
        """Replace symbols with their size-argument names (``s0`` -> ``ks0``)."""
        try:
            expr = to_expr(expr)  # never sympify a template's string: it would eval it
        except ExprError as e:
            raise HookError(f"rename_indexing: {e}") from None
        if expr.is_number:
            return expr
        subs = {s: sympy.Symbol(self._size_arg(s), integer=True, positive=True)
                for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
        return expr.xreplace(subs) if subs else expr

    def _c(self, expr: sympy.Expr | int) -> str:
        text = cexpr(self.rename_indexing(expr))
        if self.size_marks is None or not self.shape_sizes:
            return text
        concrete = to_expr(expr).xreplace(self.shape_sizes)
        return self.size_marks.mark(text, cexpr(self.rename_indexing(concrete)))

    # -- hooks -----------------------------------------------------------------------------
    def arg_name(self, node: Node | None) -> str | None:
        """The argument name of an input or output node (None when not an argument)."""
        if node is None:
            return None
        return {**self.input_buffers, **self.output_buffers}.get(node.get_name())

    def check_not_null(self, node: Node | None) -> str:
        """A C++ block that throws when the node's pointer is null but its size is not 0."""
        if node is None:
            return ""
        size_str = self.size(node, 0, -1)
        name_str = self.arg_name(node)
        if name_str is None:
            return ""
        res = CodeBuffer(initial_indent=2)
        res.tabwidth = 1
        res.splice(f"""
            {{
              if (!{name_str}) {{
                int64_t {name_str}_size = {size_str};
                if ({name_str}_size > 0) {{
                  throw std::runtime_error("input {name_str} is null but size is not 0!");
                }}
              }}
            }}
            """)
        return res.getvalue()

    def dtype(self, node: Node | None) -> str:
        """The C++ element type of the node (``void`` for None)."""
        if node is None:
            return "void"
        return node.get_layout().dtype.cpp

    def cutlass_dtype(self, node: Node | None, default_dtype: str = "void") -> str:
        """The CUTLASS element type of the node (``cutlass::bfloat16_t``...)."""
        if node is None:
            return default_dtype
        return node.get_layout().dtype.cutlass

    def offset(self, node: Node | None) -> str:
        """The node's offset in elements, as C++ (``0`` for None)."""
        if node is None:
            return "0"
        off = node.get_layout().offset
        return str(off) if not sympy.sympify(off).free_symbols else self._c(off)

    def ptr(self, node: Node | None) -> str:
        """The node's data pointer: ``arg`` or ``arg + offset`` (``nullptr`` for None)."""
        if node is None:
            return "nullptr"
        arg_name = self.arg_name(node)
        if arg_name is None:
            return "nullptr"
        offset = self.offset(node)
        return arg_name if offset == "0" else f"{arg_name} + {offset}"

    def size(self, node: Node | None, start_index: int, end_index: int | None = None,
             default_value: int = UNSET) -> str:
        """Product of the node's sizes over dims ``[start_index, end_index]`` (inclusive;
        negative indices count from the end) as C++; ``default_value`` for None/empty (dims
        outside the node with no ``default_value`` given render 0 with a warning)."""
        if node is None:
            return str(int(default_value))
        n = len(node.get_size())
        start, end = start_index, end_index
        start_index = _normalize_idx(start_index, n)
        if end_index is None:
            end_index = start_index
        end_index = _normalize_idx(end_index, n)
        if default_value is UNSET and not (0 <= start_index < n and 0 <= end_index < n):
            dims = f"[{start}, {start if end is None else end}]"
            return self._quiet_default("size", f"dims {dims} are outside {node.get_name()}'s "
                                       f"{n} dims", 0)
        sizes = node.get_size()[start_index:end_index + 1]
        if len(sizes) == 0:
            return str(int(default_value))
        return self._c(sympy.Mul(*sizes))

    def stride(self, node: Node | None, index: int, default_value: int = UNSET) -> str:
        """The node's stride at ``index`` as C++ (``default_value`` for None/out of range; an
        index out of range with no ``default_value`` given renders 0 with a warning)."""
        if node is None:
            return str(int(default_value))
        n = len(node.get_size())
        given, index = index, _normalize_idx(index, n)
        if index < 0:
            if default_value is not UNSET:
                return str(int(default_value))
            return self._quiet_default("stride", f"index {given} is outside "
                                       f"{node.get_name()}'s {n} dims", 0)
        return self._c(node.get_stride()[index])

    def row_or_column_stride(self, node: Node | None, default_value: int = 0) -> str:
        """The leading dimension: ``stride[-2]`` when row-major, ``stride[-1]`` when
        column-major; an error when neither of the last two strides is 1."""
        if node is None or len(node.get_stride()) < 2:
            return str(default_value)
        stride0 = node.get_stride()[-1]
        stride1 = node.get_stride()[-2]
        if stride0 == 1:
            return self._c(stride1)
        if stride1 == 1:
            return self._c(stride0)
        raise HookError(f"At least 1 stride should be 1. Strides: {node.get_name()}."
                        f"get_stride()={node.get_stride()}")

    def batch_stride(self, node: Node | None, default_value: int = 0) -> str:
        """The stride of dim 0 of a 3-d (batched) node; ``default_value`` below 3 dims."""
        if node is None or len(node.get_size()) < 3:
            return str(default_value)
        batch = node.get_stride()[0]
        if sympy.sympify(batch).is_number and batch <= 1:
            return str(batch)
        return self._c(batch)

    def max_valid_index(self, node: Node | None, default: int = -1) -> int | str:
        """The largest element index the node touches: sum of (size-1)*stride."""
        if node is None:
            return default
        total = sum(((s - 1) * st for s, st in zip(node.get_size(), node.get_stride(),
                                                    strict=True)), sympy.Integer(0))
        total = sympy.expand(total)
        return int(total) if total.is_number else self._c(total)

    def get_layout_args(self) -> tuple[str, ...]:
        """``(M, N, K, B, lda, ldb, ldc, ldd)`` of a GEMM over nodes named X, W, Bias, Y."""
        try:
            x, w, y = (self.named_nodes[k] for k in ("X", "W", "Y"))
        except KeyError as e:
            raise HookError(f"get_layout_args needs def_kernel nodes named X, W and Y "
                            f"(missing {e.args[0]})") from None
        bias = self.named_nodes.get("Bias")

        def ld(node: Node) -> sympy.Expr:
            st = node.get_stride()
            return st[-2] if st[-1] == 1 else st[-1]

        m, k = x.get_size()[-2], x.get_size()[-1]
        n = w.get_size()[-1]
        b = x.get_size()[0] if len(x.get_size()) > 2 else 1
        vals = (m, n, k, b, ld(x), ld(w), ld(bias) if bias is not None else 0, ld(y))
        return tuple(self._c(v) for v in vals)


_DTYPE_TO_CUTLASS = {name: d.cutlass for name, d in DTYPES.items()}

_CUDA_HEADER = """
    #include <exception>
    #include <iostream>
    #include <memory>
    #include <random>
    #include <vector>
"""
_CUDA_RUNTIME_HEADER = """
    #include <cstdint>
    #include <stdexcept>
    #include <string>
    #include <cuda_runtime.h>
    #include <cuda_fp16.h>
    #include <cuda_bf16.h>
"""
_CUTLASS_HEADER = """
    #include "cutlass/cutlass.h"
    #include "cutlass/numeric_types.h"
    #include "cutlass/util/host_tensor.h"
    #include "cutlass/util/reference/host/tensor_fill.h"
    #if __has_include(<curand_kernel.h>)  // the device fill needs cuRAND's headers
    #include "cutlass/util/reference/device/tensor_fill.h"
    #endif
    #include "cutlass/util/device_memory.h"
"""
_CUDA_GLOBALS = """
    // We compile all models with -fvisibility=hidden. Any symbols that need to be
    // exposed in the final shared library must be declared with PT_EXPORT to make
    // them visible.
    #ifdef __GNUC__ // Applies to any compiler with GNU extensions (clang and g++)
    #define PT_EXPORT __attribute__((__visibility__("default")))
    #else
    #ifdef _WIN32
    #define PT_EXPORT __declspec(dllexport)
    #else
    #define PT_EXPORT
    #endif
    #endif
    using bfloat16 = nv_bfloat16;
"""
_CUTLASS_GLOBALS = """
    #define CUTLASS_CHECK(status)                                                      \\
    {                                                                                  \\
      cutlass::Status error = status;                                                  \\
      if (error != cutlass::Status::kSuccess) {                                        \\
        auto msg = std::string("[") + __FILE__ + "] Got cutlass error: " +             \\
            cutlassGetStatusString(error) + " at: " + std::to_string(__LINE__);        \\
        throw std::runtime_error(msg);                                                 \\
      }                                                                                \\
    }
"""


class TemplateContext:
    """``template`` in templates: headers, globals and CUTLASS helpers.

    ``kind`` is ``"cutlass"`` (Inductor's ``CUTLASSTemplate``) or ``"cuda"``
    (``CUDATemplate``, no CUTLASS headers). A project subclasses this class
    (``template_class = "module:Class"``) to bring helpers such as
    ``render_gemm_arguments``.
    """

    _DTYPE_TO_CUTLASS = _DTYPE_TO_CUTLASS

    def __init__(self, name: str, kind: str = "cutlass", sample: Any = None,
                 variant: Any = None, kernel: KernelContext | None = None) -> None:
        self.name = name
        self.kind = kind
        self.sample = sample
        self.variant = variant
        self.kernel = kernel

    def header(self) -> CodeBuffer:
        """``#include`` lines every kernel needs (plus CUTLASS's for CUTLASS templates)."""
        res = CodeBuffer()
        res.splice(_CUDA_HEADER)
        res.splice(_CUDA_RUNTIME_HEADER)
        if self.kind == "cutlass":
            res.splice(_CUTLASS_HEADER)
        return res

    def globals(self) -> CodeBuffer:
        """The ``PT_EXPORT`` visibility macro (and ``CUTLASS_CHECK`` for CUTLASS)."""
        res = CodeBuffer()
        res.splice(_CUDA_GLOBALS)
        if self.kind == "cutlass":
            res.splice(_CUTLASS_GLOBALS)
        return res

    def cute_int(self, int_str: str, var_name: str) -> str:
        """``cute::Int<1>{} /* name */`` for a unit value, else ``<int_str> /* name */``."""
        res = "cute::Int<1>{}" if str(int_str) in {"1", "1L"} else str(int_str)
        return f"{res} /* {var_name} */"

    def cutlass_type_cast(self, node: Node | None, ptr: str) -> str:
        """``(cutlass::half_t*)(ptr)`` for the node's dtype; ``ptr`` for None."""
        if node is None:
            return ptr
        return f"({node.get_dtype().cutlass}*)({ptr})"
