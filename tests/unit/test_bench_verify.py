"""Reference evaluation and dtype-aware tolerances."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cutlens.bench.marshal import marshal  # noqa: E402
from cutlens.bench.verify import (  # noqa: E402
    ReferenceFailed,
    compare,
    compile_reference,
    run_reference,
    tolerance,
)


def sig(dtype: str = "float32", k: int = 64) -> dict:
    return {"kernel": "k", "library": "x", "args": [
        {"name": "X", "kind": "input", "dtype": dtype, "size": [16, k], "stride": [k, 1]},
        {"name": "W", "kind": "input", "dtype": dtype, "size": [k, 8], "stride": [8, 1]},
        {"name": "Bias", "kind": "input", "dtype": None, "none": True},
        {"name": "Y", "kind": "output", "dtype": dtype, "size": [16, 8], "stride": [8, 1]},
        {"name": "K", "kind": "size", "value": k},
    ]}


def expected_for(m, ref: str = "Y = X @ W"):
    return run_reference(compile_reference(ref), m)


def write_output(m, value):
    m.by_name()["Y"].copy_(value)


def test_tolerance_defaults_and_overrides():
    assert tolerance(torch.bfloat16) > tolerance(torch.float16) > tolerance(torch.float32)
    assert tolerance(torch.int32) == (0.0, 0.0)
    assert tolerance(torch.float32, atol=0.5) == (0.5, 1e-3)
    assert tolerance(torch.float32, rtol=0.25)[1] == 0.25


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_exact_and_upcast_results_pass(dtype):
    m = marshal(sig(dtype, k=512), "cpu")
    exp = expected_for(m)
    x, w = m.by_name()["X"], m.by_name()["W"]
    # a kernel accumulating in fp32/fp64 and rounding once differs from torch's result
    write_output(m, (x.double() @ w.double()).to(x.dtype))
    check = compare(m, exp)
    assert check.ok, check.message
    # the error reported is the largest element-wise difference from the reference
    (name, ref), = exp.items()
    out = m.by_name()[name]
    assert check.max_abs_err == pytest.approx(float((out.double() - ref.double()).abs().max()),
                                              rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_wrong_results_fail(dtype):
    m = marshal(sig(dtype), "cpu")
    exp = expected_for(m)
    x, w = m.by_name()["X"], m.by_name()["W"]
    write_output(m, x @ w.flip(0))  # wrong indexing
    check = compare(m, exp)
    assert not check.ok and "max abs err" in check.message


def test_unwritten_output_fails():
    m = marshal(sig(), "cpu")
    exp = expected_for(m)
    y = m.by_name()["Y"]
    y[:-1].copy_(exp["Y"][:-1])  # last row left NaN
    check = compare(m, exp)
    assert not check.ok and "NaN" in check.message


def test_integer_outputs_exact():
    s = {"kernel": "k", "library": "x", "args": [
        {"name": "X", "kind": "input", "dtype": "int32", "size": [10], "stride": [1]},
        {"name": "Y", "kind": "output", "dtype": "int32", "size": [10], "stride": [1]}]}
    m = marshal(s, "cpu")
    exp = expected_for(m, "Y = X * 2")
    write_output(m, exp["Y"])
    assert compare(m, exp).ok
    m.by_name()["Y"][3] += 1
    assert "1 of 10" in compare(m, exp).message


def test_reference_forms():
    m = marshal(sig(), "cpu")
    x, w = m.by_name()["X"], m.by_name()["W"]
    for ref in ("Y = X @ W", "torch.mm(X, W, out=Y)", "Y = F.linear(X, W.t(), Bias)",
                "acc = X.double() @ W.double()\nY = acc.float() if K > 0 else None"):
        got = expected_for(m, ref)["Y"]
        assert torch.allclose(got, x @ w, atol=1e-5), ref


def test_reference_errors():
    m = marshal(sig(), "cpu")
    with pytest.raises(ReferenceFailed, match="does not assign Y"):
        expected_for(m, "Z = X @ W")
    with pytest.raises(ReferenceFailed, match="reference failed"):
        expected_for(m, "Y = X @ X")
    with pytest.raises(ReferenceFailed, match="not a tensor"):
        expected_for(m, "Y = 3")


def test_reference_cannot_clobber_inputs():
    m = marshal(sig(), "cpu")
    before = m.by_name()["X"].clone()
    expected_for(m, "X.zero_()\nY = X @ W")
    assert torch.equal(m.by_name()["X"], before)


def test_shape_mismatch():
    m = marshal(sig(), "cpu")
    exp = {"Y": torch.zeros(3, 3)}
    assert "shape" in compare(m, exp).message
