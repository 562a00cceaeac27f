"""Server state: projects (config, renderer, compile pool, results), open templates, and
diagnostics by (template, tier) published per file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutlens import config as config_mod
from cutlens import trust
from cutlens.bench import project as bench_project
from cutlens.bench.runner import Runner
from cutlens.check.jinja_tier import JinjaCheck
from cutlens.check.nvcc_tier import NvccCheck
from cutlens.config import EditorSettings, ProjectConfig, parse_editor_settings
from cutlens.diagnostics import Diagnostic
from cutlens.nvcc.pool import Compiler
from cutlens.render.renderer import Renderer
from cutlens.results.store import ResultStore
from cutlens.template.discovery import dependencies, is_template
from cutlens.template.loader import load
from cutlens.template.model import Template
from cutlens.template.variants import generator_module_file

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)


@dataclass
class Project:
    """One workspace root: its config (with client settings applied), renderer, compile
    pool, results store and benchmark runner (its GPU workers stay up between benchmarks)."""

    root: Path
    config: ProjectConfig
    renderer: Renderer
    compiler: Compiler
    _store: ResultStore | None = None
    _runner: Runner | None = None
    #: Problems with the editor settings (the config file's are ``config.problems``).
    settings_problems: list[Diagnostic] = field(default_factory=list)
    settings_shown: bool = False

    @property
    def store(self) -> ResultStore:
        if self._store is None:
            self._store = ResultStore(self.root)
        return self._store

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = bench_project.runner(self.config)
        return self._runner

    async def close(self) -> None:
        self.compiler.cancel_all()
        if self._runner is not None:
            try:
                await self._runner.close()
            except Exception:
                log.exception("closing a runner")
            self._runner = None


@dataclass
class TemplateDoc:
    """A template the server tracks (open in the editor, or a parent of an open partial)."""

    path: Path
    uri: str
    version: int | None = None
    is_open: bool = False
    template: Template | None = None
    jinja: JinjaCheck | None = None
    #: Version the Jinja tier last ran on.
    jinja_version: int | None = None
    nvcc: NvccCheck | None = None
    nvcc_task: asyncio.Task[Any] | None = None
    active_sample: str | None = None
    active_variant: str | None = None
    deps: set[Path] = field(default_factory=set)

    #: True when other templates include this one (a partial: checked through them).
    is_partial: bool = False

    @property
    def checkable(self) -> bool:
        """Rendered on its own: it has settings, or nothing includes it."""
        return self.template is not None and (self.template.has_settings or
                                              not self.is_partial)


class Session:
    """Everything the handlers share."""

    def __init__(self, no_exec: bool = False) -> None:
        #: ``cutlens lsp --no-exec``: untrusted whatever the client says.
        self.no_exec = no_exec
        #: The editor's settings, typed (:mod:`cutlens.config.editor`).
        self.settings: EditorSettings = parse_editor_settings({})
        self.overlays: dict[str, str] = {}
        self.projects: dict[Path, Project] = {}
        self.docs: dict[Path, TemplateDoc] = {}
        #: (template path, tier) -> diagnostics (any file).
        self.tiers: dict[tuple[Path, str], list[Diagnostic]] = {}
        self.workspace_roots: list[Path] = []
        #: Directory -> project root (find_root walks the file system: once per directory).
        self._roots: dict[Path, Path] = {}

    @property
    def trusted(self) -> bool:
        """Workspace trust: the client's ``trusted`` setting (a client that sends none is
        trusted, like the CLI), never with ``--no-exec``."""
        return not self.no_exec and self.settings.trusted

    def apply_trust(self) -> bool:
        """Make the process-wide trust follow the session's; True when it changed."""
        changed = trust.exec_allowed() != self.trusted
        trust.set_exec_allowed(self.trusted)
        return changed

    # -- projects ----------------------------------------------------------------------------
    def project_for(self, path: Path) -> Project:
        key = path.parent if path.suffix else path
        root = self._roots.get(key)
        if root is None:
            root = self._roots[key] = self._find_root(path)
        proj = self.projects.get(root)
        if proj is None:
            proj = self._make_project(root)
            self.projects[root] = proj
        return proj

    def _find_root(self, path: Path) -> Path:
        root = config_mod.find_root(path)
        for wr in self.workspace_roots:  # a file inside a workspace folder without a config
            if path.is_relative_to(wr) and root == (path if path.is_dir() else path.parent) \
                    and not (root / "cutlens.toml").exists():
                root = wr
        if not config_mod.has_config(root):  # e.g. the installed torch module a project checks
            root = next((wr for wr in self.workspace_roots if config_mod.has_config(wr)), root)
        return root

    def _make_project(self, root: Path) -> Project:
        cfg = config_mod.load(root)
        for d in cfg.problems:
            log.warning("project config: %s:%d: %s", d.file, d.line, d.message)
        problems = [*self.settings.problems,
                    *config_mod.apply_settings(cfg, dict(self.settings.project))]
        return Project(root, cfg, Renderer(self.overlays), bench_project.compile_pool(cfg),
                       settings_problems=problems)

    def reload_projects(self) -> list[Project]:
        """Settings or a config file changed: forget every project (the caller closes the
        returned ones)."""
        old = list(self.projects.values())
        for proj in old:
            proj.compiler.cancel_all()
        self.projects.clear()
        self._roots.clear()
        return old

    # -- documents ---------------------------------------------------------------------------
    def doc(self, path: Path, uri: str | None = None) -> TemplateDoc:
        d = self.docs.get(path)
        if d is None:
            from cutlens.lsp.convert import path_to_uri

            d = self.docs[path] = TemplateDoc(path, uri or path_to_uri(path))
        return d

    def text_of(self, path: Path) -> str | None:
        text = self.overlays.get(str(path))
        if text is not None:
            return text
        try:
            return path.read_text()
        except OSError:
            return None

    def load_template(self, doc: TemplateDoc) -> Template | None:
        text = self.text_of(doc.path)
        if text is None:
            return None
        proj = self.project_for(doc.path)
        t = load(doc.path, proj.config, text, self.overlays)
        doc.template = t
        deps = set(dependencies(t)) if not t.broken else set()
        gen = generator_module_file(t)
        if gen is not None:
            deps.add(gen.resolve())
        if proj.config.file is not None:
            deps.add(proj.config.file.resolve())
        doc.deps = deps
        return t

    def check_on(self, path: Path) -> str:
        """When ``path``'s template is compiled: its project's ``check_on``, unless the
        editor sent ``checkOn`` (applied onto every project config)."""
        return self.project_for(path).config.check_on

    def is_template_file(self, path: Path) -> bool:
        proj = self.project_for(path)
        return is_template(path, proj.config)

    def dependents(self, path: Path) -> list[TemplateDoc]:
        """Tracked templates whose renders read ``path``."""
        return [d for d in self.docs.values() if path in d.deps and d.path != path]

    # -- diagnostics -------------------------------------------------------------------------
    def set_tier(self, template: Path, tier: str, diags: list[Diagnostic]) -> set[str]:
        """Replace a tier's diagnostics; returns the files whose publish set changed."""
        old = self.tiers.get((template, tier), [])
        self.tiers[(template, tier)] = diags
        return {d.file for d in old} | {d.file for d in diags} | {str(template)}

    def diagnostics_for(self, file: str) -> list[Diagnostic]:
        """Every tier's diagnostics on ``file``, each problem once."""
        seen: set[tuple[Any, ...]] = set()
        out = []
        for diags in self.tiers.values():
            for d in diags:
                if d.file == file:
                    k = (*d.key(), tuple(d.samples), tuple(d.variants))
                    if k not in seen:
                        seen.add(k)
                        out.append(d)
        return out
