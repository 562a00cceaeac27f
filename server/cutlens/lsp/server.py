"""The cutlens language server's state and publishing: the session (projects, documents,
diagnostics by tier), the debouncer, the render thread, the status notification. The
features, the tiers' scheduling and the commands live in their own modules and are
registered by :func:`cutlens.lsp.app.create_server`.

The event loop never renders, loads a template or compiles: the Jinja tier, hovers and
template loads run on the render thread (one at a time), nvcc in the compile pool's
subprocesses, benchmarks in GPU worker processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import wraps
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from cutlens import __version__
from cutlens.check.jinja_tier import JinjaCheck
from cutlens.check.nvcc_tier import NvccCheck
from cutlens.diagnostics import Diagnostic
from cutlens.lsp.convert import path_to_uri, to_lsp, uri_to_path
from cutlens.lsp.debounce import Debouncer
from cutlens.lsp.session import Project, Session, TemplateDoc
from cutlens.render.unit import RenderedUnit, RenderFailure

log = logging.getLogger(__name__)
_F = TypeVar("_F", bound=Callable[..., Any])
#: A stored result row (a benchmark run or a check).
Row = dict[str, Any]


class TierScheduler(Protocol):
    """What the handlers ask of the tiers (:class:`cutlens.lsp.tiers.Tiers`, which imports
    this module: the server knows it by this interface)."""

    async def jinja(self, doc: TemplateDoc) -> JinjaCheck | None: ...
    async def nvcc(self, doc: TemplateDoc) -> NvccCheck | None: ...
    def schedule_jinja(self, doc: TemplateDoc, delay: float | None = None) -> None: ...
    def schedule_nvcc(self, doc: TemplateDoc, delay: float = 0.0) -> None: ...
    def recheck_open(self, nvcc_delay: float = 0.2) -> None: ...
    def on_file_changed(self, path: Path) -> None: ...
    def config_problems(self, proj: Project, publish: bool = False) -> set[str]: ...


class FileWatcher(Protocol):
    """The workspace watcher (:mod:`cutlens.lsp.watch`)."""

    def refresh(self) -> None: ...
    def stop(self) -> None: ...


class CutlensServer(LanguageServer):
    """The server: ``session`` holds its state, ``tiers`` schedules the checks."""

    #: The tiers' scheduler (set by :func:`cutlens.lsp.app.create_server`).
    tiers: TierScheduler

    def __init__(self, no_exec: bool = False) -> None:
        super().__init__("cutlens", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.session = Session(no_exec)
        self.debouncer = Debouncer()
        #: Renders run here, one at a time, off the event loop.
        self.render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.compiling = 0
        self.benchmarking = 0
        self.watcher: FileWatcher | None = None
        #: Bumped when results may have changed (lenses listed again, results arrived): the
        #: results read for resolving lenses and hints are reused within one generation.
        self.results_generation = 0
        self._results_memo: dict[tuple[str, str], tuple[int, list[Row], list[Row]]] = {}

    # -- settings ----------------------------------------------------------------------------
    async def reload(self) -> None:
        """Settings or a config file changed: new projects, every open template again."""
        for proj in self.session.reload_projects():
            await proj.close()
        old = [k for k in self.session.tiers if k[1] == "config"]
        shown = {str(k[0]) for k in old if self.session.tiers[k]}
        for k in old:
            del self.session.tiers[k]
        self.publish(shown)  # cleared; the new config's problems come with the next check
        self.tiers.recheck_open()
        for root in self.session.workspace_roots:
            self.tiers.config_problems(self.session.project_for(root), publish=True)

    def show_settings_problems(self, problems: list[Diagnostic]) -> None:
        """Editor settings have no lines: their problems are a message."""
        text = "; ".join(d.message for d in problems)
        with suppress(Exception):
            self.window_show_message(lsp.ShowMessageParams(
                type=lsp.MessageType.Warning if all(d.severity != "error" for d in problems)
                else lsp.MessageType.Error, message=text))

    # -- status ------------------------------------------------------------------------------
    def status(self, state: str | None = None, message: str = "") -> None:
        if state is None:
            state = ("benchmarking" if self.benchmarking else
                     "compiling" if self.compiling else "ready")
        pending = self.compiling + self.benchmarking
        with suppress(Exception):
            self.protocol.notify("cutlens/status",
                                 {"state": state, "pending": pending, "message": message})

    # -- publishing --------------------------------------------------------------------------
    def publish(self, files: set[str]) -> None:
        for f in files:
            path = Path(f)
            diags = self.session.diagnostics_for(f)
            text = self.session.text_of(path)
            lines = text.splitlines() if text is not None else None
            uri = path_to_uri(path)
            doc = self.workspace.text_documents.get(uri)
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, diagnostics=[to_lsp(d, lines) for d in diags],
                version=doc.version if doc is not None else None))

    def refresh_lenses(self) -> None:
        """Results arrived: the client asks for lenses and inlay hints again."""
        self.results_generation += 1
        caps = self.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            with suppress(Exception):
                self.workspace_code_lens_refresh(None)
        if caps and caps.inlay_hint and caps.inlay_hint.refresh_support:
            with suppress(Exception):
                self.workspace_inlay_hint_refresh(None)

    def results_of(self, doc: TemplateDoc) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(latest benchmark runs, latest checks) of a template's current text, read once per
        results generation (resolving a screenful of lenses reads the store once)."""
        t = doc.template
        if t is None:
            return [], []
        key = (str(doc.path), t.content_hash)
        memo = self._results_memo.get(key)
        if memo is not None and memo[0] == self.results_generation:
            return memo[1], memo[2]
        store = self.session.project_for(doc.path).store
        try:
            runs, checks = store.latest(t.content_hash), store.checks(t.content_hash)
        except Exception:
            log.exception("reading results")
            runs, checks = [], []
        if len(self._results_memo) > 64:
            self._results_memo.clear()
        self._results_memo[key] = (self.results_generation, runs, checks)
        return runs, checks

    # -- documents ---------------------------------------------------------------------------
    def template_doc(self, uri: str) -> TemplateDoc | None:
        try:
            path = uri_to_path(uri)
        except ValueError:
            return None
        return self.session.docs.get(path)

    def active_unit(self, doc: TemplateDoc, sample: str | None = None,
                    variant: str | None = None) -> RenderedUnit | RenderFailure | None:
        t = doc.template
        if t is None:
            return None
        s = t.sample(sample or doc.active_sample)
        v = t.variant(s, variant if variant is not None else doc.active_variant)
        return self.session.project_for(doc.path).renderer.render(t, s, v)


def guarded(fn: _F) -> _F:
    """Log and answer instead of raising: a failing handler never kills the server."""
    if asyncio.iscoroutinefunction(fn):
        @wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler %s failed", fn.__name__)
                return None
        return awrapper  # type: ignore[return-value]

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("handler %s failed", fn.__name__)
            return None
    return wrapper  # type: ignore[return-value]
