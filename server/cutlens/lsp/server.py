"""The cutlens language server (pygls): two diagnostic tiers, lenses, hover, completion,
navigation, the rendered view and benchmarks, over the same core as the CLI.

The event loop never renders or compiles: the Jinja tier runs on a worker thread, nvcc in
the compile pool's subprocesses, benchmarks in GPU worker processes. A newer edit cancels
stale work, and results of an old version are never published over a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import wraps
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from cutlens import __version__
from cutlens.check.jinja_tier import JinjaCheck, jinja_check
from cutlens.check.nvcc_tier import NvccCheck, UnitCompile, compile_options, compile_unit, modes_for
from cutlens.lsp import completion as completion_mod
from cutlens.lsp import hover as hover_mod
from cutlens.lsp import lenses as lenses_mod
from cutlens.lsp import navigation
from cutlens.lsp.convert import path_to_uri, to_lsp, uri_to_path
from cutlens.lsp.debounce import Debouncer
from cutlens.lsp.session import Session, TemplateDoc
from cutlens.render.renderer import RenderedUnit, RenderFailure
from cutlens.template.discovery import dependencies, discover
from cutlens.template.model import Template, load

log = logging.getLogger("cutlens.lsp")

JINJA_DEBOUNCE_S = 0.15
#: The only address ``--tcp`` listens on.
LOOPBACK = "127.0.0.1"
NVCC_CHANGE_DEBOUNCE_S = 0.8


class CutlensServer(LanguageServer):
    """The server; ``session`` holds its state."""

    def __init__(self, no_exec: bool = False) -> None:
        super().__init__("cutlens", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.session = Session(no_exec)
        self.debouncer = Debouncer()
        #: Renders run here, one at a time, off the event loop.
        self.render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.compiling = 0
        self.benchmarking = 0
        self.watcher: Any = None

    # -- settings ----------------------------------------------------------------------------
    @property
    def check_on(self) -> str:
        return str(self.session.settings.get("checkOn") or
                   self.session.settings.get("check_on") or "save")

    @property
    def jinja_debounce_s(self) -> float:
        ms = self.session.settings.get("jinjaDebounceMs")
        return JINJA_DEBOUNCE_S if ms is None else max(float(ms), 0.0) / 1000

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
        caps = self.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            with suppress(Exception):
                self.workspace_code_lens_refresh(None)

    # -- the Jinja tier ----------------------------------------------------------------------
    async def jinja_tier(self, doc: TemplateDoc) -> JinjaCheck | None:
        """Render every sample × variant of ``doc`` and publish the Jinja diagnostics.
        A partial (no settings, included by others) is checked through its parents."""
        version = doc.version
        loop = asyncio.get_running_loop()
        proj = self.session.project_for(doc.path)  # created on the event loop's thread
        t = await loop.run_in_executor(self.render_pool, self.session.load_template, doc)
        if t is None or doc.version != version:
            return None
        parents: list[Template] = []
        if not t.has_settings:
            parents = await loop.run_in_executor(self.render_pool, self.find_parents, doc.path)
            doc.is_partial = bool(parents)
        jc = None
        if doc.checkable:
            jc = await loop.run_in_executor(self.render_pool, jinja_check, t, proj.renderer)
        if doc.version != version:
            return None  # a newer edit is on its way
        doc.jinja, doc.jinja_version = jc, version
        files = self.session.set_tier(doc.path, "jinja", jc.diagnostics if jc else [])
        for pt in parents:
            files |= await self.check_parent(pt)
        self.publish(files)
        return jc

    def find_parents(self, path: Path) -> list[Template]:
        """Templates of the project (tracked, or found on disk) whose renders include
        ``path``. Pure: runs on the render thread."""
        tracked = [d.template for d in list(self.session.docs.values())
                   if d.template is not None and d.template.has_settings and path in d.deps]
        if tracked:
            return tracked
        proj = self.session.project_for(path)
        out = []
        for tp in discover([proj.root], proj.config).templates:
            text = self.session.text_of(tp)
            if tp == path or text is None or path.name not in text:
                continue
            try:
                t = load(tp, proj.config, text)
            except Exception:  # a broken sibling must not break this one
                log.exception("loading %s", tp)
                continue
            if path in dependencies(t):
                out.append(t)
        return out

    async def check_parent(self, template: Template) -> set[str]:
        """Render a (closed) parent of an open partial; its diagnostics land on both."""
        parent = self.session.doc(template.path)
        if parent.is_open:
            return set()  # its own tiers run on its own events
        parent.template = template
        parent.deps = set(dependencies(template))
        proj = self.session.project_for(template.path)
        jc = await asyncio.get_running_loop().run_in_executor(
            self.render_pool, jinja_check, template, proj.renderer)
        parent.jinja, parent.jinja_version = jc, parent.version
        return self.session.set_tier(template.path, "jinja", jc.diagnostics)

    # -- the nvcc tier -----------------------------------------------------------------------
    async def nvcc_tier(self, doc: TemplateDoc) -> NvccCheck | None:
        """Compile every rendered unit (quick and full passes in parallel), publishing each
        pass as it lands; cancelled by a newer edit. Never in an untrusted workspace."""
        if not self.session.trusted:
            self.publish(self.session.set_tier(doc.path, "nvcc", []))
            return None
        if doc.jinja is None or doc.jinja_version != doc.version:
            pending = self.debouncer.pending(("jinja", doc.path))
            if pending is not None and not pending.done():
                # the scheduled Jinja tier renders this version: wait for it, don't render twice
                await asyncio.wait({pending})  # our own cancellation still propagates
            if doc.jinja is None or doc.jinja_version != doc.version:
                await self.jinja_tier(doc)
        jc = doc.jinja
        if jc is None or not jc.units:
            if jc is not None:
                self.publish(self.session.set_tier(doc.path, "nvcc", []))
            return None
        version = doc.version
        proj = self.session.project_for(doc.path)
        options = compile_options(jc.template)
        nc = NvccCheck(jc, [UnitCompile(u, unit_template=jc.template) for u in jc.units])
        total = len(nc.units)
        done = 0
        token = await self._progress_begin(f"nvcc 0/{total} variants")
        self.compiling += 1
        self.status()

        def publish_current() -> None:
            diags = nc.nvcc_diagnostics()
            self.publish(self.session.set_tier(doc.path, "nvcc", diags))

        def on_event(ev: tuple[str, UnitCompile]) -> None:
            nonlocal done
            if doc.version != version:
                return
            kind, uc = ev
            if kind == "full" or (uc.full is None and len(modes) == 1):
                done += 1
                self._progress_report(token, f"nvcc {done}/{total} variants",
                                      int(100 * done / max(total, 1)))
            publish_current()

        modes = modes_for("full")
        try:
            await asyncio.gather(*(compile_unit(proj.compiler, uc, options, modes, on_event)
                                   for uc in nc.units))
        finally:
            self.compiling -= 1
            self._progress_end(token, "nvcc done")
            self.status()
        if doc.version != version:
            return None
        doc.nvcc = nc
        publish_current()
        await asyncio.to_thread(self._store_checks, doc, nc)
        self.refresh_lenses()
        return nc

    def _store_checks(self, doc: TemplateDoc, nc: NvccCheck) -> None:
        proj = self.session.project_for(doc.path)
        t = nc.jinja.template
        for uc in nc.units:
            res = uc.final()
            if res is None:
                continue
            main = max(res.resources, key=lambda r: r.registers, default=None)
            errors = sum(1 for m in res.messages if m.severity == "error")
            warnings = sum(1 for m in res.messages if m.severity == "warning")
            try:
                proj.store.set_check(
                    t.content_hash, uc.unit.sample.name, uc.unit.variant.name, errors=errors,
                    warnings=warnings, regs=main.registers if main else None,
                    smem=main.smem_bytes if main else None,
                    spills=(main.spill_stores + main.spill_loads) if main else None,
                    template=str(t.path), variant=uc.unit.variant.values)
            except Exception:
                log.exception("storing check results")

    def schedule_nvcc(self, doc: TemplateDoc, delay: float = 0.0) -> None:
        doc.nvcc_task = self.debouncer.schedule(("nvcc", doc.path), delay,
                                                lambda: self.nvcc_tier(doc))

    def schedule_jinja(self, doc: TemplateDoc, delay: float | None = None) -> None:
        delay = self.jinja_debounce_s if delay is None else delay
        self.debouncer.schedule(("jinja", doc.path), delay, lambda: self.jinja_tier(doc))

    # -- progress ----------------------------------------------------------------------------
    async def _progress_begin(self, title: str) -> str | None:
        caps = self.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return None
        token = f"cutlens-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), 5)
        except Exception:
            return None
        self.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(
            title="cutlens", message=title, percentage=0, cancellable=False))
        return token

    def _progress_report(self, token: str | None, message: str, pct: int) -> None:
        if token is not None:
            with suppress(Exception):
                self.work_done_progress.report(token, lsp.WorkDoneProgressReport(
                    message=message, percentage=pct))

    def _progress_end(self, token: str | None, message: str) -> None:
        if token is not None:
            with suppress(Exception):
                self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=message))

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

    def recheck_open(self, nvcc_delay: float = 0.2) -> None:
        """Settings or the project config changed: both tiers again for every open template."""
        for doc in self.session.docs.values():
            if doc.is_open:
                self.schedule_jinja(doc, 0)
                if self.check_on != "off":
                    self.schedule_nvcc(doc, nvcc_delay)

    def on_file_changed(self, path: Path) -> None:
        """A file changed on disk (watcher) or in the editor: re-check what depends on it."""
        for dep in self.session.dependents(path):
            if dep.path == path:
                continue
            if dep.is_open or dep.jinja is not None:
                self.schedule_jinja(dep, 0.05)
                if self.check_on != "off" and dep.is_open:
                    self.schedule_nvcc(dep, NVCC_CHANGE_DEBOUNCE_S)


def guarded(fn):  # type: ignore[no-untyped-def]
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
        return awrapper

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("handler %s failed", fn.__name__)
            return None
    return wrapper


def create_server(no_exec: bool = False) -> CutlensServer:
    """A server with every feature registered (``no_exec``: never trusted)."""
    server = CutlensServer(no_exec)
    ses = server.session

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: CutlensServer, params: lsp.InitializeParams) -> None:
        opts = params.initialization_options
        if isinstance(opts, dict):
            ses.settings.update(opts.get("cutlens", opts))
        ses.apply_trust()
        roots = [uri_to_path(f.uri) for f in params.workspace_folders or []]
        if not roots and params.root_uri:
            roots = [uri_to_path(params.root_uri)]
        ses.workspace_roots = roots

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: CutlensServer, params: lsp.InitializedParams) -> None:
        from cutlens.lsp.watch import start_watcher

        try:
            ls.watcher = start_watcher(ls, asyncio.get_running_loop())
        except Exception:
            log.exception("file watching unavailable")
        ls.status("ready")

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: CutlensServer, params: Any = None) -> None:
        from cutlens.lsp.bench import close_runners

        await close_runners()
        ls.debouncer.cancel_all()
        for proj in ses.projects.values():
            proj.compiler.cancel_all()
        if ls.watcher is not None:
            with suppress(Exception):
                ls.watcher.stop()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded
    def did_change_configuration(ls: CutlensServer,
                                 params: lsp.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict):
            ses.settings.update(settings.get("cutlens", settings))
        if ses.apply_trust():
            log.info("workspace trust: %s", "trusted" if ses.trusted else "untrusted")
        ses.reload_projects()
        ls.recheck_open()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    @guarded
    def did_change_folders(ls: CutlensServer,
                           params: lsp.DidChangeWorkspaceFoldersParams) -> None:
        for f in params.event.removed:
            p = uri_to_path(f.uri)
            ses.workspace_roots = [r for r in ses.workspace_roots if r != p]
        for f in params.event.added:
            ses.workspace_roots.append(uri_to_path(f.uri))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(ls: CutlensServer, params: lsp.DidOpenTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        ses.overlays[str(path)] = params.text_document.text
        doc = ses.doc(path, params.text_document.uri)
        doc.is_open, doc.version = True, params.text_document.version
        if ls.watcher is not None:
            ls.session.project_for(path)
            ls.watcher.refresh()
        ls.schedule_jinja(doc, 0)
        if ls.check_on != "off":
            ls.schedule_nvcc(doc, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: CutlensServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        path = uri_to_path(uri)
        ses.overlays[str(path)] = ls.workspace.get_text_document(uri).source
        doc = ses.doc(path, uri)
        doc.version = params.text_document.version
        ls.debouncer.cancel(("nvcc", path))  # a newer edit cancels stale compiles
        if ls.check_on == "change":
            # The last compile's diagnostics describe an older text, and a compile of this one
            # is due: never publish them again under this version.
            ses.set_tier(path, "nvcc", [])
            ls.schedule_nvcc(doc, NVCC_CHANGE_DEBOUNCE_S)
        ls.schedule_jinja(doc)
        for dep in ses.dependents(path):
            if dep.is_open:
                ls.debouncer.cancel(("nvcc", dep.path))
                if ls.check_on == "change":  # its compile read the old text of this file
                    ls.publish(ses.set_tier(dep.path, "nvcc", []))
                    ls.schedule_nvcc(dep, NVCC_CHANGE_DEBOUNCE_S)
                ls.schedule_jinja(dep)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(ls: CutlensServer, params: lsp.DidSaveTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        doc = ses.docs.get(path)
        if ls.check_on == "save":
            if doc is not None:
                ls.schedule_nvcc(doc, 0)
            for dep in ses.dependents(path):
                if dep.is_open:
                    ls.schedule_nvcc(dep, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(ls: CutlensServer, params: lsp.DidCloseTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        ses.overlays.pop(str(path), None)
        doc = ses.docs.get(path)
        if doc is None:
            return
        doc.is_open = False
        ls.debouncer.cancel(("nvcc", path))
        ls.debouncer.cancel(("jinja", path))
        files = ses.set_tier(path, "jinja", []) | ses.set_tier(path, "nvcc", [])
        ls.publish(files)
        ls.on_file_changed(path)  # parents now read it from disk

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    @guarded
    def code_lens(ls: CutlensServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        doc = ls.template_doc(params.text_document.uri)
        if doc is None or doc.template is None or not doc.template.has_settings:
            return []
        t = doc.template
        proj = ses.project_for(doc.path)
        try:
            runs = proj.store.latest(t.content_hash)
            checks = proj.store.checks(t.content_hash)
        except Exception:
            log.exception("reading results")
            runs, checks = [], []
        return lenses_mod.code_lenses(params.text_document.uri, t, runs, checks,
                                      doc.active_sample, doc.active_variant)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(ls: CutlensServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.template_doc(params.text_document.uri)
        if doc is None or doc.template is None:
            return None
        unit = ls.active_unit(doc) if doc.checkable else None
        if not isinstance(unit, RenderedUnit):
            unit = None
        source = ses.text_of(doc.path) or ""
        return hover_mod.hover(doc.template, unit, str(doc.path), source,
                               params.position.line, params.position.character)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", "|", "{", " "]))
    @guarded
    def completion(ls: CutlensServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.template_doc(params.text_document.uri)
        source = ls.workspace.get_text_document(params.text_document.uri).source
        lines = source.splitlines()
        ln = params.position.line
        line = lines[ln] if ln < len(lines) else ""
        template = doc.template if doc is not None else None
        items = completion_mod.complete(template, source, line, params.position.character)
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def definition(ls: CutlensServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        path = uri_to_path(params.text_document.uri)
        doc = ses.docs.get(path)
        source = ses.text_of(path) or ""
        return navigation.definition(doc.template if doc else None, path, source,
                                     params.position.line, params.position.character,
                                     ses.text_of)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded
    def document_symbol(ls: CutlensServer,
                        params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        path = uri_to_path(params.text_document.uri)
        doc = ses.docs.get(path)
        return navigation.document_symbols(doc.template if doc else None,
                                           ses.text_of(path) or "")

    # -- commands and custom requests --------------------------------------------------------
    from cutlens.lsp.commands import register

    register(server)
    return server


def start(tcp: bool = False, port: int = 2087, log_file: Path | None = None,
          no_exec: bool = False) -> None:
    """Run the server on stdio (default) or TCP on 127.0.0.1 (loopback only: there is no
    option to listen elsewhere)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="watchdog")
    server = create_server(no_exec)
    if tcp:
        server.start_tcp(LOOPBACK, port)
    else:
        start_stdio(server)


class _PipeReader:
    """stdin read by the event loop itself (pygls's reader hands every line to a thread:
    four round trips per message, which under a flood of edits on a busy machine leave
    requests queued behind the edits). EOF reads as ``b""``, as pygls expects."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream

    async def readline(self) -> bytes:
        return await self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""


def start_stdio(server: CutlensServer) -> None:
    """pygls's stdio loop, reading stdin without threads where it is a pipe or socket (a
    file or terminal falls back to pygls's reader)."""
    import threading

    from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

    stop = threading.Event()
    server._stop_event = stop
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=1 << 20)
        reader: Any
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream),
                                         sys.stdin.buffer)
            reader = _PipeReader(stream)
        except (ValueError, OSError):  # not a pipe or socket
            reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
        await run_async(stop_event=stop, reader=reader, protocol=server.protocol, logger=log,
                        error_handler=server.report_server_error)

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("connection to the client lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
