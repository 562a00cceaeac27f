"""The editor's invalid-variant warning, through a real pygls server over stdio: opening a
grid with variants that cannot compile puts "N of M variants cannot compile: ..." on the
grid's line and the failure on its key's line; an edit that makes them valid clears both."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from test_lsp import change, diags, open_doc, wait_for
from test_validity import GRID

from conftest import HAS_NVCC, line_of, start_lsp

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")]

SRC = GRID.replace('tag = ["a", "b"]', 'tag = "a"')


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "cutlens.toml").write_text("jobs = 2\n")
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "save"})


def warnings(client: LanguageClient, uri: str) -> list[lsp.Diagnostic]:
    return [d for d in diags(client, uri, "cutlens-cutlens") if d.code == "invalid-variant"]


async def test_grid_line_warning_and_key_line(client: LanguageClient):
    uri = open_doc(client, "grid.cu.jinja", SRC)
    found = await wait_for(lambda: len(warnings(client, uri)) == 2 and warnings(client, uri),
                           timeout=120, what="invalid-variant warnings")
    by_line = {d.range.start.line + 1: d for d in found}
    summary = by_line[line_of(SRC, "[variants]")]
    assert summary.severity == lsp.DiagnosticSeverity.Warning
    assert summary.message.startswith("3 of 9 variants cannot compile: 3 with block, vec "
                                      '(static assertion failed with "Block must be')
    key = by_line[line_of(SRC, "block = [")]
    assert "(block, vec) = (32, 4); (48, 2); (48, 4)" in key.message
    # every block a multiple of 64: all valid, the warnings go
    await wait_for(lambda: client.seen.status and client.seen.status[-1].get("state") == "ready",
                   timeout=120, what="ready")
    fixed = SRC.replace("block = [32, 48, 64]", "block = [64, 128]")
    change(client, uri, fixed, 2)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        lsp.TextDocumentIdentifier(uri), text=fixed))
    await wait_for(lambda: not warnings(client, uri), timeout=120, what="warnings cleared")
