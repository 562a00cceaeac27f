"""``cutlens lsp --headless PATH...``: the real server (a subprocess over stdio) driven by an
in-process LSP client that opens every template as an editor would, waits for all tiers,
and prints what was published in ``check``'s formats — CI sees what an editor sees."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from cutlens import config as config_mod
from cutlens.check import formats
from cutlens.check.run import configs_for
from cutlens.diagnostics import Diagnostic, sort_key
from cutlens.lsp.convert import from_lsp
from cutlens.template.discovery import discover

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _client(published: dict[str, list[lsp.Diagnostic]]) -> LanguageClient:
    client = LanguageClient("cutlens-headless", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # type: ignore[untyped-decorator]
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published[params.uri] = list(params.diagnostics)

    @client.feature("cutlens/status")  # type: ignore[untyped-decorator]
    def on_status(params: object) -> None:
        return None

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)  # type: ignore[untyped-decorator]
    def on_refresh(params: object) -> None:
        return None

    return client


async def collect(paths: list[Path], settings: dict[str, Any] | None = None,
                  no_exec: bool = False) -> tuple[list[Diagnostic], int]:
    """Open every template under ``paths`` in a fresh server and return what it published
    once every tier is done, and the number of templates. ``no_exec``: an untrusted
    workspace (the server is started with ``--no-exec`` too)."""
    published: dict[str, list[lsp.Diagnostic]] = {}
    client = _client(published)
    await client.start_io(sys.executable, "-m", "cutlens", "lsp",
                          *(["--no-exec"] if no_exec else []))
    if no_exec:
        settings = {**(settings or {}), "trusted": False}
    roots = [config_mod.root_for(p) for p in paths]
    caps = lsp.ClientCapabilities(
        text_document=lsp.TextDocumentClientCapabilities(
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(
                related_information=True, data_support=True)))
    await client.initialize_async(lsp.InitializeParams(
        capabilities=caps, root_uri=roots[0].as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(r.as_uri(), r.name) for r in dict.fromkeys(roots)],
        initialization_options={"checkOn": "off", **(settings or {})}))
    client.initialized(lsp.InitializedParams())
    templates: list[Path] = []
    for p in paths:
        cfg = config_mod.load(config_mod.root_for(p))
        templates += discover([p], cfg).templates
    for t in templates:
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
            uri=t.as_uri(), language_id="cuda-jinja", version=1, text=t.read_text())))
    if templates:
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            command="cutlens.check", arguments=[]))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    diags = [from_lsp(uri, d) for uri, ds in published.items() for d in ds]
    return sorted(diags, key=sort_key), len(templates)


def run_headless(paths: list[Path], fmt: str = "text", no_exec: bool = False,
                 color: bool = False) -> int:
    """Run, print like ``cutlens check``, exit like it (a project config with problems: those,
    on stderr, exit 2)."""
    _, problems = configs_for(paths)
    if problems:
        sys.stderr.write(formats.text(problems, Path.cwd()))
        sys.stderr.write("cutlens lsp --headless: the project config has problems: fix it "
                         "first\n")
        return EXIT_USAGE
    diags, n = asyncio.run(collect(paths, no_exec=no_exec))
    base = Path.cwd()
    shown, untrusted = formats.untrusted_once(diags) if fmt == "text" else (diags, False)
    sys.stdout.write(formats.render(fmt, shown, n, base, color))
    if fmt == "text":
        if untrusted:
            sys.stderr.write(f"cutlens lsp --headless: {formats.UNTRUSTED_ADVICE}\n")
        s = formats.summary(diags, n)
        sys.stderr.write(f"cutlens lsp --headless: {s['templates']} template(s), "
                         f"{s['errors']} error(s), {s['warnings']} warning(s)\n")
    return EXIT_ERRORS if any(d.severity == "error" for d in diags) else EXIT_OK
