"""The built-in ``inductor`` render driver (``[inductor]`` in the project config): Inductor's
own CUTLASS GEMM template classes render each sample's ops, with cutlens watching jinja2, so
every line of every unit maps to the ``gemm_template.py`` line that produced it.

Each case is one op with one swizzle (named ``<op name> swizzle=<s>``); the swizzles of an
op share its build (swizzle is a runtime argument of Inductor's kernels). A problem that stops
everything (another torch, a missing wheel) is one error naming what was not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cutlens.inductor import render as r
from cutlens.inductor.setup import BridgeError, prepare
from cutlens.pyhost.case import Case


def cases(*, samples: dict[str, dict[str, Any]], cache: str, arch: str = "90",
          source: str | None = None, overlay: str | None = None,
          templates: list[str] | None = None, ops: list[str] | None = None,
          max_ops: int = 4, swizzles: list[int] | None = None,
          nvcc: str | None = None) -> Iterator[Case]:
    """Yield a case per sample × template class × op × swizzle."""
    ind = prepare(Path(cache), arch, nvcc)
    mod = r.load_templates(ind, source, overlay)
    classes = r.template_classes(mod, templates or [])
    flags = r.nvcc_flags(ind)
    swizzles = swizzles or [1, 2, 4, 8]
    for sample, nodes in samples.items():
        lowering = r.graph(ind)
        with r.graph_handler(ind, lowering):
            inputs, out_layout = r.buffers(ind, lowering, nodes)
            for cls in classes:
                t = r.make_template(cls, inputs, out_layout)
                for op_name, op in r.pick_ops(r.gen_ops(ind, t), ops or [], max_ops):
                    made: dict[str, Any] = {}

                    def unit(t: Any = t, op_name: str = op_name, op: Any = op,
                             made: dict[str, Any] = made, out_layout: Any = out_layout) -> str:
                        if "code" not in made:  # one render serves every swizzle
                            code, extra, kname = r.render_op(ind, t, op_name, op, out_layout,
                                                             swizzles[0])
                            made.update(code=code, extra=extra, kernel=kname,
                                        names=r.extra_arg_names(code, kname))
                        return str(made["code"])

                    for s in swizzles:
                        yield Case(name=f"{op_name} swizzle={s}", sample=sample,
                                   source=_bound(unit), build=op_name,
                                   extra_flags=flags, exact_flags=True,
                                   bench=_Bench(made, nodes, s))


def _bound(fn: Any) -> Any:
    return lambda: fn()


class _Bench(dict[str, Any]):
    """A case's bench call, filled in once its unit is rendered."""

    def __init__(self, made: dict[str, Any], nodes: dict[str, Any], swizzle: int) -> None:
        super().__init__()
        self.made, self.nodes, self.swizzle = made, nodes, swizzle

    def resolve(self) -> dict[str, Any] | None:
        if "code" not in self.made:
            return None
        extra = list(self.made["extra"])
        names = self.made["names"]
        if "swizzle" in names:
            extra[names.index("swizzle")] = self.swizzle
        return r.call_spec(self.made["kernel"], self.nodes, extra, names)


__all__ = ["BridgeError", "cases"]
