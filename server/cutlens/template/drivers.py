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
import re
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
    #: Cases of one build compile once (they differ in runtime arguments only).
    build: str | None = None

    @property
    def files(self) -> set[str]:
        """The files its lines come from (the modules whose templates it uses)."""
        out = {f[0] for fr in self.lines for f in fr} | {e.file for e in self.errors}
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
    key: tuple[Any, ...]
    modules: list[str]
    fingerprint: str
    runs: list[DriverRun]


_CACHE: dict[tuple[Any, ...], _Cached] = {}
_LOCK = threading.Lock()


@dataclass
class DriverSpec:
    """One driver to run: its config, where it is declared, its arguments, and the files
    outside the project that count as the project's (the Inductor bridge's template
    module)."""

    driver: DriverConfig
    declared: tuple[str, int]
    args: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    #: Problems found before it could run (bad samples): it does not run.
    errors: list[Diagnostic] = field(default_factory=list)

    @property
    def module_files(self) -> list[str]:
        f = driver_module_file(Path(self.declared[0]).parent, self.driver.entry)
        return [str(f)] if f is not None else list(self.sources)


INDUCTOR_ENTRY = "cutlens.inductor.driver:cases"


def specs(config: ProjectConfig) -> list[DriverSpec]:
    """The drivers of a project: its ``[[driver]]`` tables, then ``[inductor]``."""
    lines = config.index.array_lines(".".join(p for p in (config.index_prefix, "driver")
                                              if p)) if config.index is not None else []
    file = str(config.file or config.root / "cutlens.toml")
    out = [DriverSpec(d, (file, lines[i] if i < len(lines) else 1))
           for i, d in enumerate(config.driver)]
    if config.inductor is not None:
        out.append(_inductor(config, file))
    return out


def inductor_source(config: ProjectConfig) -> Path | None:
    """The template module the Inductor bridge checks: the configured one, else the
    installed torch's (found without importing torch)."""
    if config.inductor is None:
        return None
    if config.inductor.source:
        return Path(config.inductor.source)
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    f = Path(spec.origin).parent / "_inductor" / "codegen" / "cutlass" / "gemm_template.py"
    return f.resolve() if f.is_file() else None


def _inductor(config: ProjectConfig, file: str) -> DriverSpec:
    from cutlens.template.ir import IRError, make_node

    ind = config.inductor
    assert ind is not None
    line = config.config_line("inductor")
    spec = DriverSpec(DriverConfig(entry=INDUCTOR_ENTRY, timeout_s=ind.timeout_s),
                      (file, line))
    samples: dict[str, dict[str, Any]] = {}
    for sname, nodes in ind.samples.items():
        table = f"inductor.samples.{sname}"
        if not isinstance(nodes, dict):
            spec.errors.append(_problem(config, table, None, f"sample {sname!r} must be a "
                                        "table of nodes X, W, Y"))
            continue
        hints = nodes.get("hints", {}) if isinstance(nodes.get("hints"), dict) else {}
        concrete = {}
        for name in ("X", "W", "Y"):
            if name not in nodes:
                spec.errors.append(_problem(config, table, None,
                                            f"sample {sname!r} needs a node {name}"))
                continue
            try:
                node = make_node(name, nodes[name])
                concrete[name] = {"dtype": node.get_dtype().name, **node.concrete(hints)}
            except (IRError, TypeError, KeyError) as e:
                spec.errors.append(_problem(config, table, name, f"{name}: {e}"))
        samples[sname] = concrete
    if not ind.samples:
        spec.errors.append(_problem(config, "inductor", None, "[inductor] needs at least one "
                                    "sample: [inductor.samples.NAME] with nodes X, W, Y"))
    source = inductor_source(config)
    if source is None:
        spec.errors.append(_problem(config, "inductor", "source", "no gemm_template.py: torch "
                                    "is not installed here; set source = the file to check"))
    arch = ind.arch or re.sub(r"\D", "", config.arch) or "90"
    spec.args = {"samples": samples, "cache": str(config.cache_dir / "inductor"),
                 "arch": arch, "source": str(source) if ind.source else None,
                 "templates": ind.templates, "ops": ind.ops, "max_ops": ind.max_ops,
                 "swizzles": ind.swizzles, "nvcc": config.nvcc}
    spec.sources = [str(source)] if source is not None else []
    return spec


def _problem(config: ProjectConfig, table: str, key: str | None, message: str) -> Diagnostic:
    return Diagnostic(file=str(config.file or config.root), line=config.config_line(table, key),
                      message=message, source="cutlens", code="config")


def run_drivers(config: ProjectConfig, overlays: dict[str, str] | None = None) -> list[DriverRun]:
    """Every driver of the project, run (or their last run, while nothing it read changed)."""
    overlays = {k: v for k, v in (overlays or {}).items() if k.endswith(".py")}
    todo = specs(config)
    key = (str(config.root), repr([(s.driver, s.args) for s in todo]))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and _fingerprint(cached.modules, overlays) == cached.fingerprint:
            return cached.runs
    runs = _run(config, todo, overlays)
    modules = sorted({m for r in runs for m in r.modules} |
                     {m for s in todo for m in s.module_files})
    with _LOCK:
        _CACHE[key] = _Cached(key, modules, _fingerprint(modules, overlays), runs)
    return runs


def _run(config: ProjectConfig, todo: list[DriverSpec],
         overlays: dict[str, str]) -> list[DriverRun]:
    """Run the drivers in a worker process (those with problems already: not at all)."""
    ready = [s for s in todo if not s.errors]
    runs = {id(s): DriverRun(s.driver, errors=list(s.errors)) for s in todo if s.errors}
    for s in ready:  # the Inductor bridge loads its template module itself
        src = s.args.get("source")
        if src is not None and str(Path(src).resolve()) in overlays:
            s.args["overlay"] = overlays[str(Path(src).resolve())]
    request = {"root": str(config.root), "overlays": overlays,
               "sources": [f for s in ready for f in s.sources],
               "drivers": [{"entry": s.driver.entry, "file": s.declared[0],
                            "line": s.declared[1], "args": s.args} for s in ready]}
    timeout = max((s.driver.timeout_s for s in ready), default=120.0)

    def failed(message: str) -> None:
        for s in ready:
            runs[id(s)] = DriverRun(s.driver, errors=[Diagnostic(
                file=s.declared[0], line=s.declared[1], message=message, source="cutlens",
                code="driver")])

    if ready:
        try:
            proc = subprocess.run([sys.executable, "-m", "cutlens.pyhost.worker"],
                                  input=json.dumps(request), capture_output=True, text=True,
                                  timeout=timeout, cwd=config.root, env=_worker_env())
            reply = json.loads(proc.stdout)
            for s, r in zip(ready, reply["drivers"], strict=True):
                runs[id(s)] = _from_json(s.driver, r, reply["files"])
        except subprocess.TimeoutExpired:
            failed(f"the render driver did not finish within {timeout:g} s and was stopped "
                   "(timeout_s sets the limit)")
        except OSError as e:
            failed(f"cannot start the driver worker: {e}")
        except ValueError:
            tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
            failed(f"the driver worker crashed (exit status {proc.returncode}): {tail}")
    return [runs[id(s)] for s in todo]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _from_json(driver: DriverConfig, data: dict[str, Any], files: list[str]) -> DriverRun:
    def frames(lines: list[list[Any]]) -> list[tuple[RawFrame, ...]]:
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
            line=c.get("line", 0), build=c.get("build")))
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
        src = inductor_source(config)
        if src is not None and (src.is_relative_to(folder) or folder == config.root):
            out.append(src.resolve())  # the project's Inductor templates, wherever they are
        return sorted(set(out))

    def settings(self, path: Path, config: ProjectConfig, text: str) -> sources.Found | None:
        if path.suffix != ".py" or not (config.driver or config.inductor):
            return None
        return sources.Found(self.name, {}, config.file, "", engine="driver")


sources.register(DriverSource())


def fill(t: Template, overlays: dict[str, str] | None = None) -> None:
    """Make ``t`` (a ``.py`` file) the template of the driver cases it hosts: all of a
    driver module's cases, else the cases whose lines come from it."""
    cfg = t.config
    entries = [s.driver.entry for s in specs(cfg)]
    if not trust.exec_allowed():
        t.variants_unknown = (f"the workspace is not trusted: render driver(s) "
                              f"{', '.join(map(repr, entries))} were not run, so the cases "
                              "are unknown")
        return
    runs = run_drivers(cfg, {**(overlays or {}), str(t.path): t.source})
    path = str(t.path)
    src = inductor_source(cfg)
    own = [r for r in runs if str(driver_module_file(cfg.root, r.driver.entry)) == path or
           (r.driver.entry == INDUCTOR_ENTRY and src is not None and str(src.resolve()) == path)]
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
                                      line=c.line if own else _case_line(c, path),
                                      build_name=c.build or "")
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
