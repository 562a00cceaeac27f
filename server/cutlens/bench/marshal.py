"""From a recorded call signature to tensors and the ctypes arguments of the kernel ABI.

The ABI (Inductor's): ``extern "C" int kernel(<buffers, size symbols and scalars, in
signature order>, size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)``. Buffers
are passed as the base pointer of their storage (the kernel adds its offset itself), absent
optional inputs as null, size symbols as ``int64_t``, scalars as their C type.

Signature arguments (``signature["args"]``), in call order::

    {"name", "kind": "input" | "output" | "inout", "dtype", "size", "stride", "offset"}
    {"name", "kind": "input", "dtype": null, "none": true}      # absent optional node
    {"name", "kind": "size", "value": 4096}
    {"name", "kind": "scalar", "ctype": "uint8_t", "value": 8}  # any extra scalar argument:
                                                                # a runtime variant parameter,
                                                                # Inductor's swizzle

Inputs (and ``inout`` buffers) get deterministic random data for the seed (floats: standard
normal, as Inductor and do_bench scripts time on); outputs are filled
with NaN (floats) or an unlikely sentinel (integers) so that unwritten elements fail
verification. Imports torch: only the worker and the fidelity script use this module.
"""

from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass, field
from typing import Any

import torch

BUFFER_KINDS = ("input", "output", "inout")

#: C type of a scalar argument -> its ctypes type.
SCALAR_CTYPES: dict[str, Any] = {
    "bool": ctypes.c_bool, "int": ctypes.c_int, "unsigned": ctypes.c_uint,
    "long": ctypes.c_long, "float": ctypes.c_float, "double": ctypes.c_double,
    "size_t": ctypes.c_size_t, "int8_t": ctypes.c_int8, "int16_t": ctypes.c_int16,
    "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64, "uint8_t": ctypes.c_uint8,
    "uint16_t": ctypes.c_uint16, "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64,
    "unsigned int": ctypes.c_uint, "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong,
}

#: Signature dtype names torch spells differently.
_DTYPE_ALIASES = {"half": "float16", "float": "float32", "double": "float64",
                  "bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "int": "int32",
                  "long": "int64"}


class SignatureError(ValueError):
    """The recorded signature can't be marshalled."""


def torch_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` -> ``torch.bfloat16``."""
    name = _DTYPE_ALIASES.get(name, name)
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise SignatureError(f"unknown dtype {name!r}")
    return dt


def storage_numel(size: list[int], stride: list[int], offset: int) -> int:
    """Elements of storage needed for a strided view: ``offset + max index + 1``."""
    if len(size) != len(stride):
        raise SignatureError(f"size {size} and stride {stride} differ in rank")
    if any(s == 0 for s in size):
        return offset
    if any(st < 0 for st in stride):
        raise SignatureError(f"negative stride {stride}")
    return offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True)) + 1


def fill_random(t: torch.Tensor, gen: torch.Generator) -> None:
    """Fill ``t`` in place with seeded data suited to its dtype: floats from the standard
    normal distribution (what Inductor's autotuning, ``rand_strided``, and most
    ``triton.testing.do_bench`` scripts time on: a tensor-core GEMM's speed depends on its
    data through the power it draws, so the distribution is part of the measurement;
    ``benchmarks/fidelity_do_bench.py`` measures U(-1, 1), used before, against it),
    signed integers in [-8, 8), unsigned in [0, 16), booleans 0/1."""
    dt = t.dtype
    if t.numel() == 0:
        return
    if dt.is_complex:
        t.copy_(torch.randn(t.shape, generator=gen, device=t.device, dtype=dt))
    elif dt.is_floating_point:
        n = torch.randn(t.shape, generator=gen, device=t.device, dtype=torch.float32)
        t.copy_(n.to(dt))
    elif dt == torch.bool:
        t.copy_(torch.randint(0, 2, t.shape, generator=gen, device=t.device).bool())
    else:
        lo, hi = (0, 16) if _is_unsigned(dt) else (-8, 8)
        t.copy_(torch.randint(lo, hi, t.shape, generator=gen, device=t.device,
                              dtype=torch.int64).to(dt))


def fill_poison(t: torch.Tensor) -> None:
    """Fill an output so that unwritten elements are recognisable: NaN for floats, the
    dtype's extreme for integers (never produced by :func:`fill_random` inputs' ranges)."""
    dt = t.dtype
    if dt.is_floating_point or dt.is_complex:
        if dt in _FP8:  # fill_ can't write fp8 on every backend: go through float32
            t.copy_(torch.full(t.shape, float("nan"), device=t.device).to(dt))
        else:
            t.fill_(float("nan"))
    elif dt == torch.bool:
        t.fill_(True)
    else:
        info = torch.iinfo(dt)
        t.fill_(info.max if _is_unsigned(dt) else info.min)


_FP8 = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                                         "float8_e5m2fnuz") if hasattr(torch, n))


def _is_unsigned(dt: torch.dtype) -> bool:
    return dt == torch.uint8 or str(dt).startswith("torch.uint")


@dataclass
class Arg:
    """One marshalled argument."""

    name: str
    kind: str
    #: Base storage (buffers), the strided view, or None for an absent input.
    storage: torch.Tensor | None = None
    view: torch.Tensor | None = None
    #: Size symbols' and scalars' value.
    value: int | float | None = None
    #: A scalar's ctypes type.
    ctype: Any = None
    #: The sample node's name when it differs from the argument's (the reference uses it).
    node: str | None = None

    @property
    def is_buffer(self) -> bool:
        return self.kind in BUFFER_KINDS


@dataclass
class Marshalled:
    """Tensors for a signature and the matching ctypes argument list."""

    kernel: str
    library: str
    args: list[Arg] = field(default_factory=list)
    #: Optional nodes absent from this sample: not arguments, bound as None for the reference.
    absent: list[str] = field(default_factory=list)
    #: The variant's values and the sample's vars, also visible to the reference.
    values: dict[str, Any] = field(default_factory=dict)

    def by_name(self) -> dict[str, Any]:
        """Name -> tensor view (``None`` for absent inputs) or number, as the reference sees
        them; buffers also under their node's name. A scalar argument named like a variant
        key leaves the key's variant value (``raster = "along_m"``, not its C value)."""
        out: dict[str, Any] = {**self.values, **dict.fromkeys(self.absent)}
        for a in self.args:
            value = a.view if a.is_buffer else a.value
            if a.kind == "scalar" and a.name in self.values:
                continue
            out[a.name] = value
            if a.node and a.node not in out:
                out[a.node] = value
        return out

    @property
    def outputs(self) -> list[Arg]:
        return [a for a in self.args if a.kind in ("output", "inout")]

    @property
    def inputs(self) -> list[Arg]:
        return [a for a in self.args if a.kind in ("input", "inout")]

    def argtypes(self) -> list[Any]:
        """ctypes types of the full call: data args, then workspace_size, workspace, stream."""
        data = [ctypes.c_void_p if a.is_buffer else a.ctype or ctypes.c_int64
                for a in self.args]
        return [*data, ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p, ctypes.c_void_p]

    def data_args(self, null_buffers: bool = False) -> list[Any]:
        """ctypes values of the data arguments: base pointers (null for absent inputs, or
        all null for the workspace query when ``null_buffers``) and int64 sizes."""
        out: list[Any] = []
        for a in self.args:
            if a.is_buffer:
                ptr = None if (null_buffers or a.storage is None) else a.storage.data_ptr()
                out.append(ctypes.c_void_p(ptr))
            elif a.ctype is not None:
                out.append(a.ctype(a.value))
            else:
                out.append(ctypes.c_int64(int(a.value or 0)))
        return out


def marshal(signature: dict[str, Any], device: str | torch.device, seed: int = 0) -> Marshalled:
    """Allocate every buffer of ``signature`` on ``device``: random inputs, poisoned outputs."""
    try:
        kernel, library, raw_args = signature["kernel"], signature["library"], signature["args"]
    except KeyError as e:
        raise SignatureError(f"signature lacks {e.args[0]!r}") from None
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
    m = Marshalled(kernel=kernel, library=library,
                   absent=[str(n) for n in signature.get("absent", [])],
                   values=dict(signature.get("values") or {}))
    for raw in raw_args:
        m.args.append(_marshal_arg(raw, dev, gen))
    return m


def _marshal_arg(raw: dict[str, Any], dev: torch.device, gen: torch.Generator) -> Arg:
    name, kind = raw.get("name"), raw.get("kind")
    if not name or kind not in (*BUFFER_KINDS, "size", "scalar"):
        raise SignatureError(f"bad argument {raw!r}")
    if kind == "scalar":
        return _scalar(name, raw)
    if kind == "size":
        if not isinstance(raw.get("value"), int):
            raise SignatureError(f"size argument {name!r} has no integer value")
        return Arg(name=name, kind=kind, value=int(raw["value"]))
    if raw.get("none"):
        if kind != "input":
            raise SignatureError(f"only inputs may be absent ({name!r} is {kind})")
        return Arg(name=name, kind=kind)
    dt = torch_dtype(str(raw.get("dtype")))
    size = [int(s) for s in raw.get("size", [])]
    stride = [int(s) for s in raw.get("stride") or _contiguous(size)]
    offset = int(raw.get("offset", 0) or 0)
    storage = torch.empty(storage_numel(size, stride, offset), dtype=dt, device=dev)
    if kind == "output":
        fill_poison(storage)
    else:
        fill_random(storage, gen)
    view = torch.as_strided(storage, size, stride, offset)
    node = raw.get("node")
    return Arg(name=name, kind=kind, storage=storage, view=view,
               node=str(node) if node and node != name else None)


def _scalar(name: str, raw: dict[str, Any]) -> Arg:
    ctype = SCALAR_CTYPES.get(str(raw.get("ctype")))
    if ctype is None:
        raise SignatureError(f"scalar argument {name!r}: unknown C type {raw.get('ctype')!r} "
                             f"(known: {', '.join(SCALAR_CTYPES)})")
    value = raw.get("value")
    floating = ctype in (ctypes.c_float, ctypes.c_double)
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not floating):
        raise SignatureError(f"scalar argument {name!r} ({raw.get('ctype')}) has no "
                             f"{'number' if floating else 'integer'} value: {value!r}")
    if not floating and ctype is not ctypes.c_bool:
        bits = 8 * ctypes.sizeof(ctype)
        signed = ctype(-1).value == -1
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not lo <= value <= hi:
            raise SignatureError(f"scalar argument {name!r}: {value} does not fit a "
                                 f"{raw.get('ctype')}")
    return Arg(name=name, kind="scalar", value=value, ctype=ctype)


def _contiguous(size: list[int]) -> list[int]:
    stride, acc = [], 1
    for n in reversed(size):
        stride.append(acc)
        acc *= max(n, 1)
    return stride[::-1]


def load_kernel(library: str, kernel: str, argtypes: list[Any]) -> tuple[ctypes.CDLL, Any]:
    """dlopen ``library`` and return (handle, function) with the ABI's types set."""
    try:
        lib = ctypes.CDLL(library, mode=ctypes.RTLD_LOCAL)
    except OSError as e:
        raise SignatureError(f"cannot load {library}: {e}") from None
    try:
        fn = getattr(lib, kernel)
    except AttributeError:
        raise SignatureError(f"{library} exports no {kernel!r}") from None
    fn.restype = ctypes.c_int
    fn.argtypes = argtypes
    return lib, fn


def unload(lib: ctypes.CDLL) -> None:
    """dlclose a library loaded by :func:`load_kernel`, so a rebuilt file loads afresh."""
    import _ctypes

    with contextlib.suppress(OSError):
        _ctypes.dlclose(lib._handle)
