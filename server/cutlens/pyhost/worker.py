"""``python -m cutlens.pyhost.worker``: run render drivers in a process of their own.

Reads one JSON request on stdin — ``{"root", "drivers": [{"entry", "file", "line"}],
"overlays": {path: text}}`` — imports each driver's module from the project root (unsaved
editor text first), runs it with jinja2 instrumented (:mod:`cutlens.pyhost.interpose`), and
writes one JSON reply on stdout: per driver, its cases (text, the frames behind each line,
companions, compile options, bench call) and its diagnostics. Whatever the driver prints goes
to stderr. The caller (:mod:`cutlens.template.drivers`) runs this only in a trusted
workspace, and stops it at a time limit.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

from cutlens.diagnostics import Diagnostic, Related
from cutlens.pyhost import anchor
from cutlens.pyhost.case import Case, CaseError, as_case
from cutlens.pyhost.errors import diagnostic
from cutlens.pyhost.interpose import Registry, installed
from cutlens.pyhost.overlay import overlays_installed
from cutlens.render.sourcemap import Frame

KINDS = {"text": "t", "expr": "e", "include": "i"}


class _Encoder:
    """Frames as compact JSON: ``[file index, line, column, kind]``."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._index: dict[str, int] = {}

    def frame(self, f: Frame) -> list[Any]:
        if f.file not in self._index:
            self._index[f.file] = len(self.files)
            self.files.append(f.file)
        return [self._index[f.file], f.line, f.column, KINDS.get(f.kind, "t")]

    def lines(self, frames: list[tuple[Frame, ...]]) -> list[list[Any]]:
        return [[self.frame(f) for f in fr] for fr in frames]


def _entry(spec: str) -> tuple[str, str]:
    mod, _, fn = spec.partition(":")
    return mod, fn


def _load(entry: str) -> Any:
    mod_name, fn_name = _entry(entry)
    mod = importlib.import_module(mod_name)
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise CaseError(f"driver {entry!r}: {mod_name} has no function {fn_name!r}")
    return fn


def _cases(fn: Any, args: dict[str, Any]) -> tuple[Any, int]:
    """The driver's result (an iterator) and the line a plain list result maps to."""
    out = fn(**args)
    if out is None:
        raise CaseError("the driver returned None: it must return or yield cases")
    line = getattr(getattr(fn, "__code__", None), "co_firstlineno", 1)
    return out, line


def run_driver(reg: Registry, spec: dict[str, Any], enc: _Encoder) -> dict[str, Any]:
    """Run one driver; its cases and diagnostics (never raises)."""
    entry = spec["entry"]
    declared = (spec.get("file", ""), int(spec.get("line", 1)))
    result: dict[str, Any] = {"entry": entry, "cases": [], "errors": []}
    t0 = time.perf_counter()
    names: set[str] = set()

    def error(e: BaseException, case: str | None) -> None:
        result["errors"].append(diagnostic(e, reg, case, declared).to_json())

    try:
        fn = _load(entry)
        module_file = str(Path(sys.modules[fn.__module__].__file__ or "").resolve())
        builtin = not reg.in_project(module_file)
        if builtin:  # a built-in driver (cutlens's own): its lines are the config's
            module_file = declared[0]
        out, first_line = _cases(fn, spec.get("args") or {})
        it = iter(out)
    except Exception as e:
        error(e, None)
        result["seconds"] = time.perf_counter() - t0
        return result
    while True:
        try:
            obj = next(it)
        except StopIteration:
            break
        except Exception as e:
            error(e, None)
            break
        frame = getattr(it, "gi_frame", None)
        line = frame.f_lineno if frame is not None and not builtin else \
            declared[1] if builtin else first_line
        driver_frame = Frame(module_file, line, 0, "text")
        try:
            case = as_case(obj)
        except CaseError as e:
            result["errors"].append(Diagnostic(file=module_file, line=line, message=str(e),
                                               source="cutlens", code="driver").to_json())
            continue
        if case.name in names:
            result["errors"].append(Diagnostic(
                file=module_file, line=line, source="cutlens", code="driver",
                message=f"two cases are named {case.name!r}: names must be unique").to_json())
            continue
        names.add(case.name)
        result["cases"].append(_case(reg, case, driver_frame, enc, error))
    result["errors"] += [d.to_json() for d in _undefined_warnings(reg.undefined)]
    result["seconds"] = time.perf_counter() - t0
    return result


def _undefined_warnings(printed: list[tuple[str, str, int]]) -> list[Diagnostic]:
    """One warning per undefined name printed as empty text, on the first line that printed
    it; the other lines are its related information."""
    out: dict[str, Diagnostic] = {}
    for message, file, line in printed:
        d = out.get(message)
        if d is None:
            out[message] = Diagnostic(file=file, line=line, message=message,
                                      severity="warning", source="jinja", code="undefined")
        else:
            d.related.append(Related(file, line, "also printed here"))
    return list(out.values())


def _case(reg: Registry, case: Case, driver_frame: Frame, enc: _Encoder,
          error: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": case.name, "sample": case.sample, "source": None,
                           "line": driver_frame.line,
                           "lines": [], "companions": {}, "bench": case.bench, "templates": [],
                           "build": case.build,
                           "compile": {k: getattr(case, k) for k in
                                       ("arch", "std", "defines", "include_dirs",
                                        "extra_flags", "exact_flags")}}
    source: Any = case.source
    if callable(source):
        try:
            source = source()
        except Exception as e:
            error(e, case.name)
            return out
        if not isinstance(source, str):
            error(CaseError(f"case {case.name!r}: its source callable returned "
                            f"{type(source).__name__}, not a string"), case.name)
            return out
    out["source"] = str.__str__(source)
    resolve = getattr(case.bench, "resolve", None)
    if callable(resolve):  # a call spec known once the unit is made
        out["bench"] = resolve()
    reg.used = set()
    out["lines"] = enc.lines(anchor.line_frames(source, reg, driver_frame))
    for name, text in case.companions.items():
        if isinstance(text, str):
            out["companions"][name] = {
                "text": str.__str__(text),
                "lines": enc.lines(anchor.line_frames(text, reg, driver_frame))}
    out["templates"] = [[enc.frame(Frame(f, ln))[0], ln] for f, ln in reg.constants(reg.used)]
    return out


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Every driver of the request, in one process."""
    root = Path(request["root"]).resolve()
    overlays = {str(Path(k).resolve()): v for k, v in request.get("overlays", {}).items()}
    extra = [str(Path(f).resolve()) for f in request.get("sources", [])]
    sys.path.insert(0, str(root))
    sys.dont_write_bytecode = True
    enc = _Encoder()
    drivers = []
    reg = Registry(root, overlays, extra_files=set(extra))
    with overlays_installed(overlays), installed(reg):
        for spec in request["drivers"]:
            reg.renders, reg.undefined = [], []
            drivers.append(run_driver(reg, spec, enc))
            mods = sorted({str(Path(str(m.__file__)).resolve()) for m in list(sys.modules.values())
                           if isinstance(m, types.ModuleType) and getattr(m, "__file__", None)
                           and str(m.__file__).endswith(".py") and reg.in_project(str(m.__file__))})
            drivers[-1]["modules"] = mods
    return {"files": enc.files, "drivers": drivers}


def main() -> int:
    request = json.load(sys.stdin)
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        reply = run(request)
    json.dump(reply, real_stdout)
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
