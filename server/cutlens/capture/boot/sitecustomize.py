"""cutlens capture's hook inside the captured program (``cutlens capture`` puts this folder
first on the child's ``PYTHONPATH``; Python imports ``sitecustomize`` at start-up).

With ``CUTLENS_CAPTURE_OUT`` set it records, for the whole run, every matmul-family ATen op
(``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``_scaled_mm``, ``_int_mm``; ``nn.Linear`` reaches
them): ``torch.profiler`` sees each call (eager, or from an Inductor-compiled graph) with its
inputs' sizes, strides and dtypes and, on a GPU, its kernels' time; a post-grad pass in
Inductor adds what only the compiled graph knows (symbolic sizes, the module a node came
from, the pointwise ops after it: its epilogue); global module hooks name the module an eager
call ran in. At exit the raw records go to ``CUTLENS_CAPTURE_OUT`` as JSON; the parent
(:mod:`cutlens.capture.run`) merges, names and writes the samples file. Only this process
imports torch. Another ``sitecustomize`` on the path still runs after this one.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import sys
import weakref
from typing import Any

OPS = {"aten::mm": "mm", "aten::addmm": "addmm", "aten::bmm": "bmm", "aten::baddbmm": "baddbmm",
       "aten::_scaled_mm": "_scaled_mm", "aten::_int_mm": "_int_mm"}
MODULE_PREFIX = "cutlens.module:"
#: Ranges of compilation (Inductor's and Dynamo's timers): ops in them run on fake tensors.
COMPILING_MARK = "(dynamo_timed)"
#: Ranges of autograd's engine running a backward function.
BACKWARD_MARK = "autograd::engine::evaluate_function"
CPP_DTYPES = {"float": "float32", "double": "float64", "c10::Half": "float16",
              "c10::BFloat16": "bfloat16", "signed char": "int8", "unsigned char": "uint8",
              "int": "int32", "long int": "int64", "long": "int64", "short": "int16",
              "bool": "bool", "c10::Float8_e4m3fn": "float8_e4m3fn",
              "c10::Float8_e5m2": "float8_e5m2"}


def _dtype_name(dt: Any) -> str:
    return str(dt).removeprefix("torch.")


def _dim(v: Any) -> Any:
    """An int, or ``[expr, hint]`` for a symbolic size."""
    try:
        return int(v)
    except Exception:  # a SymInt without a hint, or data-dependent
        pass
    node = getattr(v, "node", None)
    hint = getattr(node, "hint", None)
    return [str(v), int(hint) if hint is not None else None]


def _fake(val: Any) -> dict[str, Any] | None:
    if val is None or not hasattr(val, "size"):
        return None
    out: dict[str, Any] = {"dtype": _dtype_name(val.dtype),
                           "size": [_sym(s) for s in val.size()],
                           "stride": [_sym(s) for s in val.stride()]}
    off = _sym(val.storage_offset())
    if off != 0:
        out["offset"] = off
    return out


def _sym(v: Any) -> Any:
    import torch

    if isinstance(v, torch.SymInt):
        expr = v.node.expr
        if getattr(expr, "is_number", False):
            return int(expr)
        hint = v.node.hint
        return [str(expr), int(hint) if hint is not None else None]
    return int(v)


def _module_path(meta: dict[str, Any]) -> str | None:
    stack = meta.get("nn_module_stack") or meta.get("fwd_nn_module_stack")
    if not stack:
        return None
    path, _cls = list(stack.values())[-1]
    return _clean_path(str(path))


def _clean_path(path: str) -> str:
    """``L['self'].transformer.h[0].attn`` or ``_orig_mod.transformer.h.0.attn`` ->
    ``transformer.h.0.attn``."""
    import re

    path = re.sub(r"^L\['self'\]\.?|^L__self___?", "", path)
    path = re.sub(r"\[(\d+)\]", r".\1", path).replace("['", ".").replace("']", "")
    path = path.removeprefix("_orig_mod.").replace("._orig_mod.", ".")
    return path.strip(".")


def _epilogue(node: Any) -> list[str]:
    """The pointwise ops that consume the product alone, in order (Inductor's fusion
    candidates for a GEMM template's epilogue)."""
    import torch

    out: list[str] = []
    cur = node
    while len(cur.users) == 1:
        (user,) = cur.users
        target = getattr(user, "target", None)
        tags = getattr(target, "tags", ())
        if user.op != "call_function" or torch.Tag.pointwise not in tags:
            break
        out.append(str(getattr(target, "__name__", target)).split(".")[0])
        cur = user
    return out


class Recorder:
    """What one run captured: graph nodes at compile time, op calls at run time."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.graph_nodes: list[dict[str, Any]] = []
        self.names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self.handles: list[Any] = []
        self.prof: Any = None
        self.gpu = False

    # -- compile time: Inductor's post-grad graph ------------------------------------------
    def record_graph(self, graph: Any) -> None:
        import torch

        aten = torch.ops.aten
        targets = {aten.mm.default: "mm", aten.addmm.default: "addmm",
                   aten.bmm.default: "bmm", aten.baddbmm.default: "baddbmm",
                   aten._int_mm.default: "_int_mm"}
        if hasattr(aten, "_scaled_mm"):
            targets[aten._scaled_mm.default] = "_scaled_mm"
        for node in graph.nodes:
            op = targets.get(node.target) if node.op == "call_function" else None
            if op is None:
                continue
            inputs = [_fake(getattr(a, "meta", {}).get("val")) if hasattr(a, "meta") else None
                      for a in node.args]
            self.graph_nodes.append({
                "op": op, "inputs": inputs, "output": _fake(node.meta.get("val")),
                "module": _module_path(node.meta), "epilogue": _epilogue(node),
                "backward": bool(node.meta.get("autograd_backward"))
                or node.meta.get("partitioner_tag") == "is_backward"})

    # -- run time: module names for eager calls --------------------------------------------
    def pre_hook(self, module: Any, args: Any) -> None:
        import torch

        if torch.compiler.is_compiling():
            return
        if module not in self.names:
            for name, sub in module.named_modules():
                self.names.setdefault(sub, _clean_path(name))
        name = self.names.get(module, "")
        handle = torch.ops.profiler._record_function_enter_new(MODULE_PREFIX + name, None)
        self.handles.append(handle)

    def post_hook(self, module: Any, args: Any, output: Any) -> None:
        import torch

        if torch.compiler.is_compiling() or not self.handles:
            return
        torch.ops.profiler._record_function_exit(self.handles.pop())

    # -- start and end ---------------------------------------------------------------------
    def start(self) -> None:
        import torch
        from torch.profiler import ProfilerActivity, profile

        self.gpu = bool(torch.cuda.is_available())
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.gpu else [])
        self.prof = profile(activities=acts, record_shapes=True)
        self.prof.__enter__()
        torch.nn.modules.module.register_module_forward_pre_hook(self.pre_hook)
        torch.nn.modules.module.register_module_forward_hook(self.post_hook)
        self._install_pass()

    def _install_pass(self) -> None:
        try:
            from torch._inductor import config as ic
            from torch._inductor.custom_graph_pass import CustomGraphPass
        except ImportError:  # eager only
            return
        rec = self
        before = ic.post_grad_custom_post_pass

        earlier: list[Any] = list(before) if isinstance(before, list | tuple) else \
            [before] if before is not None else []

        class CapturePass(CustomGraphPass):  # type: ignore[misc]  # (torch taken as Any)
            def __call__(self, graph: Any) -> None:
                for p in earlier:  # the program's own passes still run, first
                    p(graph)
                rec.record_graph(graph)

            def uuid(self) -> Any:
                return None  # never cached: each compile is seen

        ic.post_grad_custom_post_pass = CapturePass()
        ic.fx_graph_cache = False

    def finish(self) -> None:
        if self.prof is None:
            return
        prof, self.prof = self.prof, None
        calls: list[dict[str, Any]] = []
        try:
            prof.__exit__(None, None, None)
            calls = self._calls(prof)
        except Exception as e:  # report it; the parent says nothing was captured
            sys.stderr.write(f"cutlens capture: reading the profile failed: {e}\n")
        data = {"gpu": self.gpu, "calls": calls, "graph_nodes": self.graph_nodes,
                "torch": _torch_version()}
        tmp = self.out + ".part"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.out)

    def _calls(self, prof: Any) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        kineto_dtypes = _kineto_dtypes(prof)
        found = []
        forward_module: dict[int, str] = {}  # autograd sequence number -> forward's module
        for evt in prof.events():
            if evt.name not in OPS:
                continue
            module, skip, grad_of = _context(evt)
            if skip:
                continue
            found.append((evt, module, grad_of))
            seq = getattr(evt, "sequence_nr", -1)
            if grad_of is None and module and seq is not None and seq >= 0:
                forward_module[seq] = module
        for evt, module, grad_of in found:
            if grad_of is not None and module is None:
                module = forward_module.get(grad_of)
            shapes = [list(s) if isinstance(s, (list, tuple)) else s
                      for s in (getattr(evt, "structured_input_shapes", None)
                                or evt.input_shapes or [])]
            strides = getattr(evt, "structured_input_strides", None) or []
            dtypes = [CPP_DTYPES.get(d, d) for d in (kineto_dtypes.get(evt.id)
                                                      or getattr(evt, "input_dtypes", None)
                                                      or [])]
            call = {"op": OPS[evt.name], "shapes": shapes, "strides": [list(s) if isinstance(
                s, (list, tuple)) else s for s in strides], "dtypes": dtypes, "module": module,
                "backward": grad_of is not None}
            key = json.dumps(call, sort_keys=True, default=str)
            entry = merged.setdefault(key, {**call, "count": 0, "device_us": 0.0,
                                            "cpu_us": 0.0})
            entry["count"] += 1
            entry["device_us"] += _device_us(evt)
            entry["cpu_us"] += float(evt.cpu_time_total or 0.0)
        return list(merged.values())


def _device_us(evt: Any) -> float:
    """The time of the kernels an op launched (``cuda_time_total`` before torch 2.4)."""
    name = "device_time_total" if hasattr(type(evt), "device_time_total") else "cuda_time_total"
    return float(getattr(evt, name, 0.0) or 0.0)


def _kineto_dtypes(prof: Any) -> dict[int, list[str]]:
    """Input dtypes of the matmul ops by event id, from the profiler's own events (a
    ``FunctionEvent`` carries them only from torch 2.12; its id is the correlation id)."""
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError:
        return {}
    return {int(k.correlation_id()): [str(d) for d in k.dtypes()] for k in events
            if k.name() in OPS}


def _context(evt: Any) -> tuple[str | None, bool, int | None]:
    """(the module an op ran in; whether to leave it out — it ran while compiling, on fake
    tensors, or inside another matmul op —; when autograd's engine ran it, a gradient, the
    sequence number of the forward op it is the gradient of, else None)."""
    module = None
    grad_of: int | None = None
    parent = evt.cpu_parent
    while parent is not None:
        name = parent.name
        if COMPILING_MARK in name or name in OPS:
            return None, True, None
        if module is None and name.startswith(MODULE_PREFIX):
            module = name[len(MODULE_PREFIX):] or None
        if grad_of is None and name.startswith(BACKWARD_MARK):
            seq = getattr(parent, "sequence_nr", -1)
            grad_of = seq if seq is not None and seq >= 0 else -1
        parent = parent.cpu_parent
    return module, False, grad_of


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _chain_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` this one shadows (a virtualenv's or a distribution's)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        cand = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(cand):
            spec = importlib.util.spec_from_file_location("_cutlens_next_sitecustomize", cand)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


def _main() -> None:
    # popped: the program's own subprocesses (compile workers...) record nothing
    out = os.environ.pop("CUTLENS_CAPTURE_OUT", None)
    _chain_next_sitecustomize()
    if not out:
        return
    rec = Recorder(out)
    try:
        rec.start()
    except Exception as e:
        sys.stderr.write(f"cutlens capture: cannot start the recorder: {e}\n")
        return
    atexit.register(rec.finish)


_main()
