"""Reference evaluation and dtype-aware comparison of a kernel's outputs.

The template's ``bench.reference`` is Python executed with the signature's nodes bound by name
(inputs as tensors, absent inputs as ``None``, size symbols as ints, outputs as fresh
NaN-filled tensors so in-place forms like ``torch.mm(X, W, out=Y)`` work too) plus ``torch``,
``F`` (``torch.nn.functional``) and ``math``. After it runs, each output's name holds the
expected value.

Check (per output): the kernel's output has no NaN where the reference has none, and
``max|out - ref| <= atol + rtol * max|ref|`` — a tolerance relative to the reference's max
norm, so a long reduction's rounding (which grows with K like the values themselves) passes
while wrong indexing does not. Defaults by output dtype are in :data:`TOLERANCES`; the
template's ``atol`` / ``rtol`` override them. Integer and boolean outputs must match exactly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cutlens.bench.marshal import Marshalled, fill_poison

#: dtype -> (atol, rtol). fp32's rtol admits TF32 tensor-core accumulation (unit roundoff
#: 2^-11); half types allow for both the kernel's and the reference's output rounding.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-7),
    torch.float32: (1e-5, 1e-3),
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-3, 2e-2),
    torch.complex64: (1e-5, 1e-3),
    torch.complex128: (1e-10, 1e-7),
}
for _name, _tol in (("float8_e4m3fn", (1e-2, 0.125)), ("float8_e4m3fnuz", (1e-2, 0.125)),
                    ("float8_e5m2", (1e-2, 0.25)), ("float8_e5m2fnuz", (1e-2, 0.25))):
    if hasattr(torch, _name):
        TOLERANCES[getattr(torch, _name)] = _tol


class ReferenceFailed(RuntimeError):
    """The reference expression failed or left an output unset."""


@dataclass
class Check:
    """Outcome of comparing every output with the reference."""

    ok: bool
    max_abs_err: float
    message: str = ""


def tolerance(dtype: torch.dtype, atol: float | None = None,
              rtol: float | None = None) -> tuple[float, float]:
    """(atol, rtol) for an output of ``dtype``, with the template's overrides applied."""
    da, dr = TOLERANCES.get(dtype, (0.0, 0.0))
    return (da if atol is None else float(atol), dr if rtol is None else float(rtol))


def namespace(m: Marshalled, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Globals for the reference / flops / bytes expressions: nodes by name plus torch, F,
    math. ``outputs`` replaces the output tensors (the reference gets fresh ones)."""
    ns: dict[str, Any] = {"torch": torch, "F": F, "math": math}
    ns.update(m.by_name())
    if outputs:
        ns.update(outputs)
    return ns


def compile_reference(source: str) -> Any:
    """Compile the reference code (a statement or several lines)."""
    return compile(source, "<bench.reference>", "exec")


@contextlib.contextmanager
def precise_matmul() -> Iterator[None]:
    """No TF32 and no reduced-precision fp16/bf16 reductions in cuBLAS while computing the
    expected values (the torch baseline is timed with torch's defaults)."""
    m = torch.backends.cuda.matmul
    names = ("allow_tf32", "allow_fp16_reduced_precision_reduction",
             "allow_bf16_reduced_precision_reduction")
    saved = {n: getattr(m, n) for n in names if hasattr(m, n)}
    try:
        for n in saved:
            setattr(m, n, False)
        yield
    finally:
        for n, v in saved.items():
            setattr(m, n, v)


def run_reference(code: Any, m: Marshalled) -> dict[str, torch.Tensor]:
    """Execute the reference (under :func:`precise_matmul`) and return the expected value of
    each output by name."""
    placeholders = {}
    for a in m.outputs:
        view = a.view
        assert view is not None  # an output is a buffer
        ph = torch.empty_strided(view.shape, view.stride(), dtype=view.dtype,
                                 device=view.device)
        if a.kind == "inout":
            ph.copy_(view)
        else:
            fill_poison(ph)
        placeholders[a.name] = ph
    ns = namespace(m, placeholders)
    # Inputs may be modified by an in-place reference: give it clones of the inputs.
    for a in m.inputs:
        if a.kind == "input" and a.view is not None:
            ns[a.name] = a.view.clone()
    try:
        with precise_matmul():
            exec(code, ns)
    except Exception as e:
        raise ReferenceFailed(f"reference failed: {type(e).__name__}: {e}") from e
    expected = {}
    for a in m.outputs:
        val = ns.get(a.name)
        if not isinstance(val, torch.Tensor):
            raise ReferenceFailed(f"reference leaves {a.name} as {type(val).__name__}, "
                                  "not a tensor")
        if val is placeholders[a.name] and a.kind == "output" and _all_poison(val):
            raise ReferenceFailed(f"reference does not assign {a.name}")
        expected[a.name] = val
    return expected


def _all_poison(t: torch.Tensor) -> bool:
    if t.dtype.is_floating_point:
        return bool(torch.isnan(t.float()).all())
    return False


def compare(m: Marshalled, expected: dict[str, torch.Tensor], atol: float | None = None,
            rtol: float | None = None) -> Check:
    """Compare each output of ``m`` (after the kernel ran) with ``expected``."""
    worst = 0.0
    for a in m.outputs:
        out, ref = a.view, expected[a.name]
        assert out is not None  # an output is a buffer
        if tuple(ref.shape) != tuple(out.shape):
            return Check(False, math.inf, f"{a.name}: reference shape {tuple(ref.shape)} "
                                          f"!= output shape {tuple(out.shape)}")
        a_tol, r_tol = tolerance(out.dtype, atol, rtol)
        ok, err, msg = _compare_one(a.name, out, ref, a_tol, r_tol)
        worst = max(worst, err)
        if not ok:
            return Check(False, worst, msg)
    return Check(True, worst)


def _compare_one(name: str, out: torch.Tensor, ref: torch.Tensor, atol: float,
                 rtol: float) -> tuple[bool, float, str]:
    if out.numel() == 0:
        return True, 0.0, ""
    if not (out.dtype.is_floating_point or out.dtype.is_complex):
        wrong = int((out.to(torch.int64) != ref.to(torch.int64)).sum())
        if wrong:
            return False, math.inf, f"{name}: {wrong} of {out.numel()} elements differ"
        return True, 0.0, ""
    wide = torch.complex128 if out.dtype.is_complex else (
        torch.float64 if out.dtype == torch.float64 else torch.float32)
    o, r = out.to(wide), ref.to(wide)
    o_nan, r_nan = torch.isnan(o), torch.isnan(r)
    if o.is_complex():
        o_nan, r_nan = o_nan | torch.isnan(o.imag), r_nan | torch.isnan(r.imag)
    bad_nan = int((o_nan & ~r_nan).sum())
    if bad_nan:
        return False, math.inf, (f"{name}: {bad_nan} of {o.numel()} elements are NaN "
                                 "(unwritten?) where the reference has a number")
    diff = torch.where((o == r) | (o_nan & r_nan), torch.zeros_like(o.real if o.is_complex()
                                                                      else o), (o - r).abs())
    err = float(diff.max())
    finite_ref = r.abs()[torch.isfinite(r.abs())]
    scale = float(finite_ref.max()) if finite_ref.numel() else 0.0
    tol = atol + rtol * scale
    if not err <= tol:  # also catches NaN
        return False, err, (f"{name}: max abs err {err:.3g} > tol {tol:.3g} "
                            f"(atol {atol:g} + rtol {rtol:g} x max|ref| {scale:.3g})")
    return True, err, ""
