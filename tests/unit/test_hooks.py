"""Every hook against the reference semantics of Inductor's CUDATemplateKernel/CUTLASSTemplate
(PR #107931 and later additions). Expected strings are what Inductor emits for the same nodes."""

from __future__ import annotations

import pytest
import sympy

from cutlens.render.cexpr import cexpr
from cutlens.render.hooks import HookError, KernelContext, TemplateContext
from cutlens.template.ir import make_node, symbol


def node(name, dtype="float16", size=(128, 64), stride=None, offset=0):
    spec = {"dtype": dtype, "size": list(size), "offset": offset}
    if stride is not None:
        spec["stride"] = list(stride)
    return make_node(name, spec)


@pytest.fixture
def gemm():
    x = node("X", size=(128, 64))
    w = node("W", size=(64, 32), stride=(1, 64))  # column-major
    y = node("Y", size=(128, 32))
    k = KernelContext("kern")
    sig = k.def_kernel(inputs=[x, w, None], outputs=[y], names_str="X, W, Bias, Y")
    return k, x, w, y, sig


def test_def_kernel_signature_and_none_input(gemm):
    k, _x, _w, _y, sig = gemm
    assert sig == ("PT_EXPORT int kern(const half* X, const half* W, half* Y, "
                   "size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)")
    assert [(a.name, a.kind) for a in k.signature.args] == [
        ("X", "input"), ("W", "input"), ("Y", "output")]
    assert list(k.named_nodes) == ["X", "W", "Y"]


def test_def_kernel_input_reorder():
    x, w, b, y = node("X"), node("W"), node("B", size=(64,)), node("Y")
    k = KernelContext("kern")
    sig = k.def_kernel(inputs=[x, w, b], outputs=[y], names_str="X, W, Bias, Y",
                       input_reorder=[2, 0, 1])
    assert sig.startswith("PT_EXPORT int kern(const half* Bias, const half* X, const half* W, "
                          "half* Y,")
    assert [a.name for a in k.signature.args] == ["Bias", "X", "W", "Y"]


def test_def_kernel_name_count_mismatch():
    with pytest.raises(HookError, match="names_str"):
        KernelContext("k").def_kernel(inputs=[node("X")], outputs=[node("Y")], names_str="X")


def test_def_kernel_symbolic_sizes_become_size_args():
    x = node("X", size=("M", 64))
    y = node("Y", size=("M", "N"))
    k = KernelContext("kern")
    sig = k.def_kernel(inputs=[x], outputs=[y], names_str="X, Y")
    assert sig == ("PT_EXPORT int kern(const half* X, half* Y, int64_t M, int64_t N, "
                   "size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)")
    assert k.size(x, 0) == "M"
    assert k.size(y, 0, -1) == "M*N"
    assert k.stride(y, 0) == "N"
    assert k.signature.to_json({"M": 8, "N": 4})["args"][-2:] == [
        {"name": "M", "kind": "size", "ctype": "int64_t", "value": 8},
        {"name": "N", "kind": "size", "ctype": "int64_t", "value": 4}]


def test_inductor_named_symbols_are_passed_as_ks():
    x = node("X", size=("s0", 64))
    k = KernelContext("kern")
    sig = k.def_kernel(inputs=[x], outputs=[], names_str="X")
    assert "int64_t ks0" in sig
    assert k.size(x, 0, -1) == "64L*ks0"


def test_size_inclusive_ranges_and_negative_indices(gemm):
    k, x, _w, _y, _ = gemm
    assert k.size(x, 0) == "128L"
    assert k.size(x, -1) == "64L"
    assert k.size(x, 0, -1) == "8192L"
    assert k.size(x, -2, -1) == "8192L"
    assert k.size(x, 1, 0) == "0"  # empty range -> default
    assert k.size(x, 1, 0, default_value=5) == "5"
    assert k.size(None, 0, default_value=7) == "7"


def test_stride(gemm):
    k, x, w, _y, _ = gemm
    assert k.stride(x, 0) == "64L"
    assert k.stride(x, -1) == "1L"
    assert k.stride(w, 1) == "64L"
    assert k.stride(None, 0) == "0"
    assert k.stride(None, 0, default_value=3) == "3"
    assert k.stride(x, -3) == "0"  # out of range after normalising


def test_row_or_column_stride(gemm):
    k, x, w, _y, _ = gemm
    assert k.row_or_column_stride(x) == "64L"  # row-major: stride[-2]
    assert k.row_or_column_stride(w) == "64L"  # column-major: stride[-1]
    w2 = node("W2", size=(64, 48), stride=(1, 80))
    assert k.row_or_column_stride(w2) == "80L"
    assert k.row_or_column_stride(node("V", size=(64,))) == "0"
    assert k.row_or_column_stride(None, default_value=2) == "2"
    with pytest.raises(HookError, match="At least 1 stride should be 1"):
        k.row_or_column_stride(node("Z", size=(4, 4), stride=(8, 2)))


def test_offset_and_ptr():
    x = node("X", offset=16)
    y = node("Y")
    k = KernelContext("kern")
    k.def_kernel(inputs=[x], outputs=[y], names_str="A, B")
    assert k.offset(x) == "16"
    assert k.offset(y) == "0"
    assert k.offset(None) == "0"
    assert k.ptr(x) == "A + 16"
    assert k.ptr(y) == "B"
    assert k.ptr(None) == "nullptr"
    assert k.ptr(node("Unregistered")) == "nullptr"
    assert k.arg_name(x) == "A"
    assert k.arg_name(None) is None


def test_symbolic_offset():
    x = node("X", size=("M", 8), offset="2*M")
    k = KernelContext("kern")
    k.def_kernel(inputs=[x], outputs=[], names_str="X")
    assert k.ptr(x) == "X + 2L*M"


def test_dtype_and_cutlass_dtype():
    k = KernelContext("kern")
    expect = {"float32": ("float", "float"), "float64": ("double", "double"),
              "float16": ("half", "cutlass::half_t"),
              "bfloat16": ("bfloat16", "cutlass::bfloat16_t"),
              "int32": ("int", "int"), "int8": ("signed char", "int8_t"),
              "uint8": ("unsigned char", "uint8_t"), "bool": ("bool", "bool")}
    for dt, (cpp, cutlass) in expect.items():
        n = node("X", dtype=dt)
        assert k.dtype(n) == cpp
        assert k.cutlass_dtype(n) == cutlass
    assert k.dtype(None) == "void"
    assert k.cutlass_dtype(None) == "void"
    assert k.cutlass_dtype(None, default_dtype="float") == "float"


def test_check_not_null_matches_inductor_text(gemm):
    k, x, *_ = gemm
    assert k.check_not_null(x) == (
        "\n"
        "  {\n"
        "    if (!X) {\n"
        "      int64_t X_size = 8192L;\n"
        "      if (X_size > 0) {\n"
        '        throw std::runtime_error("input X is null but size is not 0!");\n'
        "      }\n"
        "    }\n"
        "  }\n")
    assert k.check_not_null(None) == ""
    assert k.check_not_null(node("Unregistered")) == ""


def test_batch_stride_and_max_valid_index():
    k = KernelContext("kern")
    b = node("B3", size=(4, 128, 64))
    assert k.batch_stride(b) == "8192L"
    assert k.batch_stride(node("X")) == "0"
    assert k.batch_stride(None, default_value=1) == "1"
    assert k.max_valid_index(node("X", size=(128, 64))) == 127 * 64 + 63
    assert k.max_valid_index(node("W", size=(64, 32), stride=(1, 64))) == 63 + 31 * 64
    assert k.max_valid_index(None) == -1
    sym = node("S", size=("M", 64))
    k.def_kernel(inputs=[sym], outputs=[], names_str="S")
    assert k.max_valid_index(sym) == "(-1L) + 64L*M"


def test_get_layout_args(gemm):
    k, *_ = gemm
    assert k.get_layout_args() == ("128L", "32L", "64L", "1L", "64L", "64L", "0L", "32L")
    with pytest.raises(HookError, match="named X, W and Y"):
        KernelContext("k").get_layout_args()


def test_template_hooks():
    t = TemplateContext("gemm", kind="cutlass")
    assert t.cute_int("1", "stride") == "cute::Int<1>{} /* stride */"
    assert t.cute_int("1L", "stride") == "cute::Int<1>{} /* stride */"
    assert t.cute_int("64L", "ld") == "64L /* ld */"
    x = node("X", dtype="bfloat16")
    assert t.cutlass_type_cast(x, "X + 4") == "(cutlass::bfloat16_t*)(X + 4)"
    assert t.cutlass_type_cast(None, "ptr") == "ptr"
    head = t.header().getvalue()
    assert head.startswith("\n#include <exception>\n")
    assert '#include "cutlass/cutlass.h"' in head
    glob = t.globals().getvalue()
    assert '#define PT_EXPORT __attribute__((__visibility__("default")))' in glob
    assert "#define CUTLASS_CHECK(status)" in glob
    cuda = TemplateContext("k", kind="cuda")
    assert "cutlass" not in cuda.header().getvalue()
    assert "CUTLASS_CHECK" not in cuda.globals().getvalue()
    assert str(cuda.header()) == cuda.header().getvalue()


def test_cexpr_matches_inductor_printer():
    torch_printer = pytest.importorskip("torch._inductor.codegen.cpp_utils")
    m, n, s0 = symbol("M"), symbol("N"), symbol("s0")
    for e in [sympy.Integer(4096), 4096 * m, m * s0, sympy.Integer(1), 2 * m * s0 + 1,
              m + n, m - n, (m + 1) * (n + 2), sympy.Max(m, n), m**2, -m,
              (m - 1) * s0 + (n - 1)]:
        assert cexpr(e) == torch_printer.cexpr(e), e
