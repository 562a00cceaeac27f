"""The standard LSP features: lifecycle, settings, document sync (which drives the tiers),
and the views — code lenses (listed cheaply, resolved on demand), hover, completion,
definition, symbols, code actions, document links and inlay hints. Each handler is a short
function that delegates to a helper module."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from cutlens.lsp import actions as actions_mod
from cutlens.lsp import case_lenses, navigation
from cutlens.lsp import completion as completion_mod
from cutlens.lsp import hints as hints_mod
from cutlens.lsp import hover as hover_mod
from cutlens.lsp import lenses as lenses_mod
from cutlens.lsp import links as links_mod
from cutlens.lsp import profile as profile_mod
from cutlens.lsp.convert import uri_to_path
from cutlens.lsp.server import CutlensServer, guarded
from cutlens.lsp.tiers import NVCC_CHANGE_DEBOUNCE_S
from cutlens.render.unit import RenderedUnit
from cutlens.template.model import Template

log = logging.getLogger(__name__)


def register_lifecycle(server: CutlensServer) -> None:
    """initialize, initialized, shutdown, settings and workspace folders."""
    ses = server.session

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: CutlensServer, params: lsp.InitializeParams) -> None:
        opts = params.initialization_options
        if isinstance(opts, dict):
            ses.settings = ses.settings.updated(opts.get("cutlens", opts))
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
        ls.debouncer.cancel_all()
        for proj in ses.reload_projects():
            await proj.close()
        if ls.watcher is not None:
            with suppress(Exception):
                ls.watcher.stop()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded
    async def did_change_configuration(ls: CutlensServer,
                                       params: lsp.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict):
            ses.settings = ses.settings.updated(settings.get("cutlens", settings))
        if ses.apply_trust():
            log.info("workspace trust: %s", "trusted" if ses.trusted else "untrusted")
        await ls.reload()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    @guarded
    def did_change_folders(ls: CutlensServer,
                           params: lsp.DidChangeWorkspaceFoldersParams) -> None:
        for f in params.event.removed:
            p = uri_to_path(f.uri)
            ses.workspace_roots = [r for r in ses.workspace_roots if r != p]
        for f in params.event.added:
            ses.workspace_roots.append(uri_to_path(f.uri))


def register_documents(server: CutlensServer) -> None:
    """didOpen/didChange/didSave/didClose: they schedule the tiers."""
    ses, tiers = server.session, server.tiers

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
        tiers.schedule_jinja(doc, 0)
        if ses.check_on(path) != "off":
            tiers.schedule_nvcc(doc, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: CutlensServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        path = uri_to_path(uri)
        ses.overlays[str(path)] = ls.workspace.get_text_document(uri).source
        doc = ses.doc(path, uri)
        doc.version = params.text_document.version
        ls.debouncer.cancel(("nvcc", path))  # a newer edit cancels stale compiles
        if ses.check_on(path) == "change":
            # The last compile's diagnostics describe an older text, and a compile of this one
            # is due: never publish them again under this version.
            ses.set_tier(path, "nvcc", [])
            tiers.schedule_nvcc(doc, NVCC_CHANGE_DEBOUNCE_S)
        tiers.schedule_jinja(doc)
        for dep in ses.dependents(path):
            if dep.is_open:
                ls.debouncer.cancel(("nvcc", dep.path))
                if ses.check_on(dep.path) == "change":  # its compile read the old text
                    ls.publish(ses.set_tier(dep.path, "nvcc", []))
                    tiers.schedule_nvcc(dep, NVCC_CHANGE_DEBOUNCE_S)
                tiers.schedule_jinja(dep)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(ls: CutlensServer, params: lsp.DidSaveTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        doc = ses.docs.get(path)
        if doc is not None and ses.check_on(path) == "save":
            tiers.schedule_nvcc(doc, 0)
        for dep in ses.dependents(path):
            if dep.is_open and ses.check_on(dep.path) == "save":
                tiers.schedule_nvcc(dep, 0)

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
        tiers.on_file_changed(path)  # parents now read it from disk


def with_profile(h: lsp.Hover | None, md: str | None) -> lsp.Hover | None:
    """A hover with a variant's latest Nsight Compute profile added below."""
    if md is None:
        return h
    if h is None:
        return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, md))
    old = h.contents.value if isinstance(h.contents, lsp.MarkupContent) else str(h.contents)
    return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown,
                                                f"{old}\n\n---\n{md}"), range=h.range)


def register_views(server: CutlensServer) -> None:
    """Code lenses, hover, completion, definition and document symbols."""
    ses = server.session

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS, lsp.CodeLensOptions(resolve_provider=True))
    @guarded
    def code_lens(ls: CutlensServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        """The lenses, unresolved: cheap to list (no results are read here)."""
        doc = ls.template_doc(params.text_document.uri)
        if doc is None or doc.template is None or not (doc.template.has_settings or
                                                       doc.template.engine == "driver"):
            return []
        t = doc.template
        ls.results_generation += 1  # the resolves that follow read the results afresh
        if t.engine == "driver":  # a few lenses, resolved at once
            runs, checks = ls.results_of(doc)
            try:
                inductor = ses.project_for(doc.path).store.latest(t.content_hash,
                                                                  kind="inductor")
            except Exception:
                inductor = []
            return case_lenses.code_lenses(params.text_document.uri, t, runs, checks,
                                           inductor)
        return lenses_mod.list_lenses(params.text_document.uri, t, doc.active_sample) + \
            profile_mod.list_lenses(params.text_document.uri, t, doc.active_sample)

    @server.feature(lsp.CODE_LENS_RESOLVE)
    @guarded
    def code_lens_resolve(ls: CutlensServer, lens: lsp.CodeLens) -> lsp.CodeLens:
        """A lens's title and command, from the latest results."""
        data = lens.data if isinstance(lens.data, dict) else {}
        doc = ls.template_doc(str(data.get("uri", "")))
        if doc is None or doc.template is None:
            return lsp.CodeLens(range=lens.range, data=lens.data,
                                command=lsp.Command(title="(template closed)", command=""))
        runs, checks = ls.results_of(doc)
        if data.get("kind") == "profile":
            store = ses.project_for(doc.path).store
            return profile_mod.resolve_lens(lens, doc.template, runs, store, doc.active_variant)
        return lenses_mod.resolve_lens(lens, doc.template, runs, checks, doc.active_variant)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded
    async def hover(ls: CutlensServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.template_doc(params.text_document.uri)
        if doc is None or doc.template is None or doc.path.suffix == ".py":
            return None  # a Python file's hover is its Python language server's
        t = doc.template
        source = ses.text_of(doc.path) or ""
        in_front = t.front.start_line <= params.position.line + 1 <= t.front.end_line
        if in_front:  # the grid's results: no render needed
            sample = lenses_mod.active_sample(t, doc.active_sample)
            h = hover_mod.hover(t, None, str(doc.path), source, params.position.line,
                                params.position.character, ls.results_of(doc)[0], sample)
            # the latest profile is a store read: off the event loop
            prof = await asyncio.to_thread(
                profile_mod.hover_text, t, ses.project_for(doc.path).store, doc.active_sample,
                params.position.line, doc.active_variant)
            return with_profile(h, prof)
        unit = None
        if doc.checkable:  # the render (cached after the Jinja tier's) on the render thread
            ses.project_for(doc.path)  # (projects are made on the event loop's thread)
            unit = await asyncio.get_running_loop().run_in_executor(ls.render_pool,
                                                                    ls.active_unit, doc)
        if not isinstance(unit, RenderedUnit):
            unit = None
        return hover_mod.hover(t, unit, str(doc.path), source,
                               params.position.line, params.position.character)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", "|", "{", " "]))
    @guarded
    def completion(ls: CutlensServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.template_doc(params.text_document.uri)
        if uri_to_path(params.text_document.uri).suffix == ".py":
            return lsp.CompletionList(is_incomplete=False, items=[])
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
        if path.suffix == ".py":
            return []
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
        if path.suffix == ".py":
            return []
        return navigation.document_symbols(doc.template if doc else None,
                                           ses.text_of(path) or "")


def register_assists(server: CutlensServer) -> None:
    """Code actions (quick fixes), document links and inlay hints."""
    ses = server.session

    async def template_of(path: Path) -> Template | None:
        """The document's template, loaded now (on the render thread) when the Jinja tier
        has not run yet."""
        doc = ses.docs.get(path)
        if doc is not None and doc.template is not None:
            return doc.template
        if ses.text_of(path) is None or not ses.is_template_file(path):
            return None
        return await asyncio.get_running_loop().run_in_executor(
            server.render_pool, ses.load_template, ses.doc(path))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    @guarded
    async def code_action(ls: CutlensServer,
                          params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        path = uri_to_path(params.text_document.uri)
        return actions_mod.code_actions(params.text_document.uri, await template_of(path),
                                        ses.text_of(path) or "", params.context.diagnostics)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_LINK)
    @guarded
    async def document_link(ls: CutlensServer,
                            params: lsp.DocumentLinkParams) -> list[lsp.DocumentLink]:
        path = uri_to_path(params.text_document.uri)
        return links_mod.document_links(await template_of(path), path,
                                        ses.text_of(path) or "")

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    @guarded
    def inlay_hint(ls: CutlensServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        doc = ls.template_doc(params.text_document.uri)
        if doc is None or doc.template is None:
            return []
        _runs, checks = ls.results_of(doc)
        return hints_mod.inlay_hints(doc.template, ses.text_of(doc.path) or "", checks,
                                     doc.active_sample, params.range)
