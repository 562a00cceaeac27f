"""Templates that live in Python, as a template source: the project config's render drivers
(``[[driver]]``) run in a worker process (``python -m cutlens.pyhost.worker``), and each
driver's cases become the variants of a template.

A driver's module is a template whose variants are all its cases; a ``.py`` module that
hosts template text (a case's lines map into it) is a template whose variants are the cases
that use it. Drivers are workspace code: they run only in a trusted workspace, never in the
caller's process, and one still running at its ``timeout_s`` is stopped. A run is reused
while no module it imported changed (on disk or in the editor).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens import trust
from cutlens.config import DriverConfig, ProjectConfig, driver_module_file
from cutlens.diagnostics import Diagnostic
from cutlens.template import sources
from cutlens.template.model import Sample, Template, Variant

#: A frame of a case's line as the worker sends it: (file, line, column, kind).
RawFrame = tuple[str, int, int, str]
_KINDS = {"t": "text", "e": "expr", "i": "include"}


@dataclass
class CaseData:
    """One case of a driver run: its text and where each line came from."""

    name: str
    sample: str
    entry: str
    source: str | None
    lines: list[tuple[RawFrame, ...]] = field(default_factory=list)
    #: Companion name -> (text, lines).
    companions: dict[str, tuple[str, list[tuple[RawFrame, ...]]]] = field(default_factory=dict)
    compile: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] | None = None
    errors: list[Diagnostic] = field(default_factory=list)
    #: (file, line) of each template constant it used (its ``NAME = jinja2.Template(``).
    templates: list[tuple[str, int]] = field(default_factory=list)
    #: The driver's line that produced it (its ``yield``).
    line: int = 0

    @property
    def files(self) -> set[str]:
        """The files its lines come from (the modules whose templates it uses)."""
        out = {f[0] for fr in self.lines for f in fr}
        for _, lines in self.companions.values():
            out |= {f[0] for fr in lines for f in fr}
        return out


@dataclass
class DriverRun:
    """What one driver produced."""

    driver: DriverConfig
    cases: list[CaseData] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    #: The project modules it imported (a change in one of them means a new run).
    modules: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _fingerprint(files: list[str], overlays: dict[str, str]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.encode() + b"\0")
        if f in overlays:
            h.update(b"o" + hashlib.sha256(overlays[f].encode()).digest())
            continue
        try:
            st = os.stat(f)
            h.update(f"{st.st_mtime_ns}:{st.st_size}".encode())
        except OSError:
            h.update(b"-")
    return h.hexdigest()


@dataclass
class _Cached:
    key: tuple
    modules: list[str]
    fingerprint: str
    runs: list[DriverRun]


_CACHE: dict[tuple, _Cached] = {}
_LOCK = threading.Lock()


def run_drivers(config: ProjectConfig, overlays: dict[str, str] | None = None) -> list[DriverRun]:
    """Every driver of the project, run (or their last run, while nothing it read changed)."""
    overlays = {k: v for k, v in (overlays or {}).items() if k.endswith(".py")}
    key = (str(config.root), tuple((d.entry, d.timeout_s) for d in config.driver))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and _fingerprint(cached.modules, overlays) == cached.fingerprint:
            return cached.runs
    runs = _run(config, overlays)
    modules = sorted({m for r in runs for m in r.modules} |
                     {str(driver_module_file(config.root, d.entry)) for d in config.driver})
    with _LOCK:
        _CACHE[key] = _Cached(key, modules, _fingerprint(modules, overlays), runs)
    return runs


def _declared_at(config: ProjectConfig, i: int) -> tuple[str, int]:
    lines = config.index.array_lines(".".join(p for p in (config.index_prefix, "driver")
                                              if p)) if config.index is not None else []
    return str(config.file or config.root), lines[i] if i < len(lines) else 1


def _run(config: ProjectConfig, overlays: dict[str, str]) -> list[DriverRun]:
    """Run the drivers in a worker process."""
    request = {"root": str(config.root), "overlays": overlays, "drivers": [
        {"entry": d.entry, "file": _declared_at(config, i)[0],
         "line": _declared_at(config, i)[1]} for i, d in enumerate(config.driver)]}
    timeout = max((d.timeout_s for d in config.driver), default=120.0)
    file, _ = _declared_at(config, 0)

    def failed(message: str) -> list[DriverRun]:
        return [DriverRun(d, errors=[Diagnostic(file=file, line=_declared_at(config, i)[1],
                                                message=message, source="cutlens",
                                                code="driver")])
                for i, d in enumerate(config.driver)]

    try:
        proc = subprocess.run([sys.executable, "-m", "cutlens.pyhost.worker"],
                              input=json.dumps(request), capture_output=True, text=True,
                              timeout=timeout, cwd=config.root, env=_worker_env())
    except subprocess.TimeoutExpired:
        return failed(f"the render driver did not finish within {timeout:g} s and was "
                      "stopped (timeout_s in [[driver]] sets the limit)")
    except OSError as e:
        return failed(f"cannot start the driver worker: {e}")
    try:
        reply = json.loads(proc.stdout)
    except ValueError:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return failed(f"the driver worker crashed (exit status {proc.returncode}): {tail}")
    return [_from_json(d, r, reply["files"]) for d, r in zip(config.driver, reply["drivers"],
                                                            strict=True)]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _from_json(driver: DriverConfig, data: dict, files: list[str]) -> DriverRun:
    def frames(lines: list[list]) -> list[tuple[RawFrame, ...]]:
        return [tuple((files[f[0]], f[1], f[2], _KINDS.get(f[3], "text")) for f in fr)
                for fr in lines]

    run = DriverRun(driver, errors=[Diagnostic.from_json(e) for e in data["errors"]],
                    modules=data.get("modules", []), seconds=data.get("seconds", 0.0))
    for c in data["cases"]:
        run.cases.append(CaseData(
            name=c["name"], sample=c.get("sample") or "default", entry=driver.entry,
            source=c["source"], lines=frames(c["lines"]),
            companions={n: (v["text"], frames(v["lines"])) for n, v in c["companions"].items()},
            compile={k: v for k, v in c["compile"].items() if v}, bench=c.get("bench"),
            templates=[(files[f], ln) for f, ln in c.get("templates", [])],
            line=c.get("line", 0)))
    for e in run.errors:  # an error while producing a case belongs to it
        for case in run.cases:
            if case.name in e.variants:
                case.errors.append(e)
    return run


class DriverSource:
    """The render drivers' modules, and the ``.py`` modules their cases' templates live in."""

    name = "driver"

    def discover(self, folder: Path, config: ProjectConfig) -> list[Path]:
        folder = folder.resolve()
        out = []
        for d in config.driver:
            f = driver_module_file(config.root, d.entry)
            if f is not None and (f == folder or f.is_relative_to(folder)):
                out.append(f)
        return sorted(set(out))

    def settings(self, path: Path, config: ProjectConfig, text: str) -> sources.Found | None:
        if path.suffix != ".py" or not config.driver:
            return None
        return sources.Found(self.name, {}, config.file, "", engine="driver")


sources.register(DriverSource())


def fill(t: Template, overlays: dict[str, str] | None = None) -> None:
    """Make ``t`` (a ``.py`` file) the template of the driver cases it hosts: all of a
    driver module's cases, else the cases whose lines come from it."""
    cfg = t.config
    entries = [d.entry for d in cfg.driver]
    if not trust.exec_allowed():
        t.variants_unknown = (f"the workspace is not trusted: render driver(s) "
                              f"{', '.join(map(repr, entries))} were not run, so the cases "
                              "are unknown")
        return
    runs = run_drivers(cfg, {**(overlays or {}), str(t.path): t.source})
    path = str(t.path)
    own = [r for r in runs if str(driver_module_file(cfg.root, r.driver.entry)) == path]
    cases = [c for r in own for c in r.cases] or \
        [c for r in runs for c in r.cases if path in c.files]
    errors = [e for r in (own or runs) for e in r.errors if not e.variants]
    t.hosts_templates = bool(own) or bool(cases) or any(e.file == path for e in errors)
    if not own:  # a hosted module: its own problems, and those that stop every driver
        stop_all = {str(cfg.file)} | {str(driver_module_file(cfg.root, d.entry))
                                     for d in cfg.driver}
        errors = [e for e in errors if e.file == path or e.file in stop_all]
    if t.hosts_templates:
        t.errors += errors
    t.cases = {c.name: c for c in cases}
    t.content_hash_of_run = run_hash(runs)
    samples = list(dict.fromkeys(c.sample for c in cases))
    t.samples = [Sample(s) for s in samples if s != "default" or len(samples) > 1]
    for s in samples:
        t.variant_table[s] = [Variant(i, c.name, {"case": c.name},
                                      line=c.line if own else _case_line(c, path))
                              for i, c in enumerate(cases) if c.sample == s]
    if not samples:
        t.variant_table["default"] = []


def run_hash(runs: list[DriverRun]) -> str:
    """What the results of a run's cases are stored under: its drivers and every case's text
    (the same for the driver module and every module hosting its templates)."""
    h = hashlib.sha256()
    for r in runs:
        h.update(r.driver.entry.encode() + b"\0")
        for c in r.cases:
            h.update(c.name.encode() + b"\0" + (c.source or "").encode() + b"\0")
            for n, (text, _) in sorted(c.companions.items()):
                h.update(n.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def _case_line(case: CaseData, path: str) -> int:
    """The line of ``path`` a case's lens goes on: its first template constant there, else
    its first template line in that file."""
    for file, line in case.templates:
        if file == path:
            return line
    for fr in case.lines:
        for f in reversed(fr):
            if f[0] == path:
                return f[1]
    return 0
