"""Rendering Inductor's CUTLASS GEMM templates through Inductor's own classes: the template
module (the installed ``gemm_template.py``, or an edited copy loaded in its place), fake
input buffers on a ``cuda`` device, the ops Inductor would generate, each op's translation
unit as ``CUTLASSTemplate.generate`` makes it, Inductor's own nvcc flags, and the call of the
built kernel (Inductor's ABI: layout arguments, offsets, the runtime ``swizzle``)."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from cutlens.inductor.setup import BridgeError, Inductor, need

MODULE = "torch._inductor.codegen.cutlass.gemm_template"
GEMM_BASE = "CUTLASSGemmTemplate"


def load_templates(ind: Inductor, source: str | None, overlay: str | None) -> Any:
    """The gemm_template module: Inductor's, or ``source`` (``overlay``: its unsaved text)
    executed as a fresh module in its place."""
    if source is None:
        return importlib.import_module(MODULE)
    path = Path(source).resolve()
    loader = None
    if overlay is not None:
        from cutlens.pyhost.overlay import _OverlayLoader

        loader = _OverlayLoader(MODULE, str(path), overlay)
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    if spec is None or spec.loader is None:
        raise BridgeError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = mod
    spec.loader.exec_module(mod)
    return mod


def template_classes(mod: Any, names: list[str]) -> list[type]:
    """The CUTLASS GEMM template classes to render: those named, else every concrete subclass
    of CUTLASSGemmTemplate the module defines."""
    base = need(mod, GEMM_BASE, "Inductor's gemm_template")
    if names:
        out = []
        for n in names:
            cls = getattr(mod, n, None)
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise BridgeError(f"{n} is not a CUTLASS GEMM template class of {mod.__file__}")
            out.append(cls)
        return out
    return [c for _, c in inspect.getmembers(mod, inspect.isclass)
            if issubclass(c, base) and c is not base and not inspect.isabstract(c)
            and c.__module__ == mod.__name__]


def graph(ind: Inductor) -> Any:
    """A GraphLowering over an empty FX graph, to stand as ``V.graph``."""
    g = ind.torch.fx.Graph()
    g.output(())  # GraphLowering needs an output node
    return ind.GraphLowering(ind.torch.fx.GraphModule({}, g))


def buffers(ind: Inductor, lowering: Any, nodes: dict[str, dict[str, Any]]) -> tuple[list[Any],
            Any]:
    """The inputs (X, W) as Inductor buffers on a ``cuda`` device, and the output layout (Y)."""
    torch = ind.torch
    dev = torch.device("cuda")  # a device object only: no CUDA runtime is touched

    def layout(spec: dict[str, Any]) -> Any:
        dtype = getattr(torch, spec["dtype"])
        size = [int(s) for s in spec["size"]]
        stride = spec.get("stride") or _contiguous(size)
        return ind.ir.FixedLayout(dev, dtype, size, [int(s) for s in stride],
                                  int(spec.get("offset", 0)))

    inputs = []
    for name in ("X", "W"):
        if name not in nodes:
            raise BridgeError(f"an Inductor sample needs nodes X, W and Y (no {name})")
        buf = ind.ir.Buffer(name=name, layout=layout(nodes[name]))
        lowering.graph_inputs[name] = buf
        inputs.append(buf)
    if "Y" not in nodes:
        raise BridgeError("an Inductor sample needs nodes X, W and Y (no Y)")
    return inputs, layout(nodes["Y"])


def _contiguous(size: list[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(size):
        out.append(acc)
        acc *= max(s, 1)
    return out[::-1]


def make_template(cls: type, inputs: list[Any], out_layout: Any) -> Any:
    """An instance of a CUTLASS GEMM template class for ``inputs`` -> ``out_layout``."""
    try:
        return cls(inputs, out_layout, alpha=1, beta=0)
    except TypeError as e:
        raise BridgeError(f"{cls.__name__}(input_nodes, layout, alpha, beta): {e}") from None


def gen_ops(ind: Inductor, template: Any) -> list[tuple[str, Any]]:
    """The ops Inductor generates for this problem, as on a GPU host (torch 2.13 only drops
    ops whose alignment exceeds the tensors' when CUDA is available)."""
    fn = need(template, "gen_ops", type(template).__name__)
    cache = getattr(type(template), "filtered_ops_cache", None)
    if isinstance(cache, dict):  # keyed by the inputs only: another class's ops otherwise
        cache.clear()
    with mock.patch.object(ind.torch.cuda, "is_available", lambda: True):
        try:
            return list(fn())
        except TypeError:  # a version whose gen_ops takes the device type
            return list(fn("cuda"))


def op_facts(op: Any) -> dict[str, str]:
    """What tells ops apart: tile, cluster, kernel and epilogue schedules."""
    def shape(s: Any) -> str:
        return "x".join(str(d) for d in getattr(s, "shape", s) or [])

    return {"tile": shape(getattr(getattr(op, "tile_description", None), "tile_shape", "")),
            "cluster": shape(getattr(getattr(op, "tile_description", None), "cluster_shape",
                                     "")),
            "kernel": str(getattr(op, "kernel_schedule", "")),
            "epilogue": str(getattr(op, "epilogue_schedule", ""))}


def pick_ops(ops: list[tuple[str, Any]], wanted: list[str], max_ops: int) -> list[tuple[str, Any]]:
    """The ops to check: those whose name contains one of ``wanted``; by default (the
    sampling rule) up to ``max_ops`` ops, one per kernel schedule first, then one per
    tile × cluster shape, in Inductor's own order."""
    if wanted:
        return [(n, op) for n, op in ops if any(w in n for w in wanted)]
    chosen: list[tuple[str, Any]] = []
    seen_kernel: set[str] = set()
    seen_shape: set[tuple[str, str]] = set()
    for n, op in ops:
        f = op_facts(op)
        if f["kernel"] not in seen_kernel:
            seen_kernel.add(f["kernel"])
            seen_shape.add((f["tile"], f["cluster"]))
            chosen.append((n, op))
    for n, op in ops:
        f = op_facts(op)
        if len(chosen) >= max_ops:
            break
        if (f["tile"], f["cluster"]) not in seen_shape:
            seen_shape.add((f["tile"], f["cluster"]))
            chosen.append((n, op))
    return chosen[:max_ops]


@contextmanager
def graph_handler(ind: Inductor, lowering: Any) -> Iterator[None]:
    with ind.V.set_graph_handler(lowering):
        yield


def render_op(ind: Inductor, template: Any, op_name: str, op: Any, out_layout: Any,
              swizzle: int) -> tuple[str, list[Any], str]:
    """One op's translation unit as ``CUTLASSTemplate.generate`` makes it: the rendered code
    with Inductor's kernel name (``cutlass_<sha256 prefix>``), and the extra call arguments
    (layout arguments, offsets, runtime arguments)."""
    gen = need(template, "generate_code_and_args", type(template).__name__)
    code, extra_args = gen(name=op_name, input_key=template.cache_key,
                           layout_repr=str(out_layout), op=op, swizzle=swizzle)
    kernel_name = "cutlass_" + hashlib.sha256(code.encode("utf-8")).hexdigest()[:8]
    return code.replace(str(template.name), kernel_name), list(extra_args), kernel_name


_DROP = re.compile(r"^-t(=\d+)?$|^-L|^-l|^-c$")


def nvcc_flags(ind: Inductor) -> list[str]:
    """Inductor's own nvcc flags (``cuda_compile_command``), without the source, output,
    link options and ``-t`` (cutlens runs its own jobs in parallel; nvcc 13 also hangs with
    ``-t`` and output to /dev/null)."""
    try:
        utils = importlib.import_module("torch._inductor.codegen.cuda.compile_utils")
    except ImportError:
        utils = None
    fn = getattr(utils, "cuda_compile_command", None) if utils is not None else None
    if fn is None:
        codecache = importlib.import_module("torch._inductor.codecache")
        fn = need(codecache, "cuda_compile_command", "Inductor's nvcc command")
    cmd = shlex.split(fn(["SOURCE.cu"], "OUT.o", "o"))
    out: list[str] = []
    i = 1
    while i < len(cmd):
        a = cmd[i]
        if a in ("-o", "-Xlinker") and i + 1 < len(cmd):
            i += 2
            continue
        if a == "SOURCE.cu" or _DROP.match(a) or a.startswith("-Xlinker"):
            i += 1
            continue
        if a == "-Xcompiler" and i + 1 < len(cmd):
            out += [a, cmd[i + 1]]
            i += 2
            continue
        out.append(a)
        i += 1
    if ind.curand:
        out.append(f"-I{ind.curand}")
    return out


ARG_CTYPES = {"swizzle": "uint8_t"}


def call_spec(kernel_name: str, nodes: dict[str, dict[str, Any]], extra_args: list[Any],
              arg_names: list[str]) -> dict[str, Any]:
    """How the bench worker calls the built kernel: X, W, Y, then the extra arguments in
    Inductor's order (``const int`` layout arguments and offsets, ``uint8_t swizzle``)."""
    args: list[dict[str, Any]] = [
        {"name": n, "kind": "output" if n == "Y" else "input", "dtype": nodes[n]["dtype"],
         "size": list(nodes[n]["size"]),
         **({"stride": list(nodes[n]["stride"])} if nodes[n].get("stride") else {})}
        for n in ("X", "W", "Y")]
    for name, value in zip(arg_names, extra_args, strict=True):
        args.append({"name": name, "kind": "scalar", "ctype": ARG_CTYPES.get(name, "int"),
                     "value": int(value)})
    m, k = nodes["X"]["size"][-2:]
    n = nodes["W"]["size"][-1]
    return {"function": kernel_name, "args": args, "reference": "Y = X @ W",
            "flops": str(2 * int(m) * int(n) * int(k))}


_SIG_RE = re.compile(r"PT_EXPORT int (\w+)\((.*?)\)\s*\{", re.S)


def extra_arg_names(code: str, kernel_name: str) -> list[str]:
    """The names of the scalar arguments after the buffers, from the rendered signature."""
    for m in _SIG_RE.finditer(code):
        if m.group(1) != kernel_name:
            continue
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        names = [re.split(r"[\s*&]+", p)[-1] for p in params]
        scalars = [n for p, n in zip(params, names, strict=True) if "*" not in p
                   and n not in ("stream",)]
        return scalars
    raise BridgeError(f"the rendered code declares no function {kernel_name}")
