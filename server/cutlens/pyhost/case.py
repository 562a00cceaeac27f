"""A case: one translation unit a render driver yields.

A driver is a function (``[[driver]] entry = "package.module:function"``) returning or
yielding cases, each a :class:`Case` or a dict with the same keys::

    Case(name="gemm_rcr_f16",
         source=SRC_TEMPLATE.render(...),        # the translation unit (or a callable making it)
         companions={"config.inc": "..."},        # more files beside it (name -> text)
         arch="sm_80", std="c++17", defines=["X=1"], include_dirs=["3rdparty/cutlass/include"],
         extra_flags=["--use_fast_math"],
         bench={"function": "gemm_rcr_f16",       # the exported function to benchmark
                "args": [{"name": "a", "kind": "input", "dtype": "float16", "size": [256, 128]},
                         {"name": "b", "kind": "input", "dtype": "float16", "size": [64, 128]},
                         {"name": "c", "kind": "output", "dtype": "float16", "size": [256, 64]},
                         {"name": "M", "kind": "size", "value": 256}],
                "reference": "c = a @ b.t()", "flops": "2*256*64*128"})

``source`` may be a zero-argument callable: its errors are then the case's own, and the
driver's other cases still run. ``include_dirs`` resolve against the project root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SCALARS = ("arch", "std")
LISTS = ("defines", "include_dirs", "extra_flags")


@dataclass
class Case:
    """One translation unit of a render driver."""

    name: str
    source: str | Callable[[], str]
    companions: dict[str, str] = field(default_factory=dict)
    arch: str | None = None
    std: str | None = None
    defines: list[str] = field(default_factory=list)
    include_dirs: list[str] = field(default_factory=list)
    extra_flags: list[str] = field(default_factory=list)
    #: How to call the built library: ``function``, ``args`` (the bench signature),
    #: ``reference``, ``flops``, ``bytes``, ``atol``, ``rtol``.
    bench: dict[str, Any] | None = None
    #: A group of cases (shown as a sample): e.g. the problem shape.
    sample: str = "default"
    #: Cases with the same build (and the same text) compile once: they differ only in how
    #: the kernel is called (a runtime argument such as a swizzle).
    build: str | None = None
    #: ``extra_flags`` are the whole nvcc command line (no cutlens defaults added): a
    #: project's own flags, e.g. Inductor's.
    exact_flags: bool = False


class CaseError(ValueError):
    """A driver yielded something that is not a case."""


def as_case(obj: Any) -> Case:
    """A :class:`Case` from what a driver yielded (a Case, a dict, or an object with the
    same attributes)."""
    if isinstance(obj, Case):
        case = obj
    else:
        data = dict(obj) if isinstance(obj, Mapping) else {
            f.name: getattr(obj, f.name) for f in fields(Case) if hasattr(obj, f.name)}
        unknown = sorted(set(data) - {f.name for f in fields(Case)})
        if unknown:
            raise CaseError(f"unknown case key(s) {', '.join(unknown)} (expected "
                            f"{', '.join(f.name for f in fields(Case))})")
        if "name" not in data or "source" not in data:
            raise CaseError(f"a case needs a name and a source, not {obj!r:.80}")
        case = Case(**data)
    if not isinstance(case.name, str) or not case.name:
        raise CaseError(f"a case name must be a non-empty string, not {case.name!r}")
    if not (isinstance(case.source, str) or callable(case.source)):
        raise CaseError(f"case {case.name!r}: source must be a string or a callable, not "
                        f"{type(case.source).__name__}")
    for key in SCALARS:
        if getattr(case, key) is not None and not isinstance(getattr(case, key), str):
            raise CaseError(f"case {case.name!r}: {key} must be a string")
    for key in LISTS:
        value = getattr(case, key)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise CaseError(f"case {case.name!r}: {key} must be a list of strings")
    if case.build is not None and not isinstance(case.build, str):
        raise CaseError(f"case {case.name!r}: build must be a string")
    if not isinstance(case.companions, Mapping):
        raise CaseError(f"case {case.name!r}: companions must map names to texts")
    return case
