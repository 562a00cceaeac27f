"""Templates that live in Python, through the real language server over stdio: an unsaved
edit of a hosted module is checked as typed, on its .py line; a .py file no driver uses gets
nothing; lenses sit on the template constants; the rendered view maps a case's lines."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from conftest import start_lsp

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pyhost"


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".cutlens", "__pycache__"))
    return await start_lsp(lsp_server, root, {"checkOn": "off"})


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=path.as_uri(), language_id="python", version=1,
        text=path.read_text() if text is None else text)))
    return path.as_uri()


async def wait_for(pred, what: str, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_unsaved_edit_is_checked_on_its_py_line(client: LanguageClient):
    root: Path = client.root  # type: ignore[attr-defined]
    unused = open_doc(client, root / "aitlike" / "__init__.py")
    path = root / "aitlike" / "backend" / "elementwise.py"
    text = path.read_text().replace("  v = {{ step }};", "  v = {{ stepp }};")
    line = next(i for i, ln in enumerate(text.splitlines()) if "{{ stepp }}" in ln)
    uri = open_doc(client, path, text)  # unsaved: the file on disk is clean
    await wait_for(lambda: client.diagnostics.get(uri), "the edited module's diagnostics")
    [d] = client.diagnostics[uri]
    assert d.range.start.line == line and "'stepp' is undefined" in d.message
    assert d.severity == lsp.DiagnosticSeverity.Error
    assert unused not in client.diagnostics  # nothing at all for a file no driver uses
    # fixing it (still unsaved) clears it
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [lsp.TextDocumentContentChangeWholeDocument(text=path.read_text())]))
    await wait_for(lambda: list(client.diagnostics.get(uri, [None])) == [],
                   "the diagnostics cleared")


async def test_lenses_and_the_rendered_view_of_a_hosted_module(client: LanguageClient):
    root: Path = client.root  # type: ignore[attr-defined]
    path = root / "aitlike" / "backend" / "gemm.py"
    uri = open_doc(client, path)
    lines = path.read_text().splitlines()
    src = next(i for i, ln in enumerate(lines) if ln.startswith("SRC_TEMPLATE ="))
    exe = next(i for i, ln in enumerate(lines) if ln.startswith("EXEC_TEMPLATE ="))
    lenses: list[lsp.CodeLens] = []

    async def fetch() -> bool:
        lenses[:] = await client.text_document_code_lens_async(
            lsp.CodeLensParams(lsp.TextDocumentIdentifier(uri)))
        return any(lens.range.start.line == src for lens in lenses)

    for _ in range(600):
        if await fetch():
            break
        await asyncio.sleep(0.1)
    on = {lens.range.start.line: lens.command.title for lens in lenses if lens.command}
    assert on[src].startswith("3 cases (gemm_rcr_float, gemm_rcr_double, gemm_banner)")
    assert on[exe].startswith("3 cases")
    rendered = await client.protocol.send_request_async(
        "cutlens/rendered", {"uri": uri, "sample": "gemm", "variant": "gemm_banner"})
    text, maps = _get(rendered, "text"), _get(rendered, "lines")
    i = next(k for k, ln in enumerate(text.splitlines()) if "<<<grid" in ln)
    m = maps[i]
    launch = next(k for k, ln in enumerate(lines) if "{{kernel}}<<<grid" in ln)
    assert (_get(m, "uri"), _get(m, "line")) == (uri, launch)


def _get(obj, key: str):
    """A field of a custom response (a dict, or pygls's attribute object)."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)
