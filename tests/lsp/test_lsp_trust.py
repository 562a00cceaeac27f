"""Workspace trust in the real language server (stdio, pytest-lsp): an untrusted client gets
Jinja diagnostics and one notice per template, and no generator, nvcc or benchmark runs;
trust granted later (didChangeConfiguration) runs them; ``--no-exec`` overrides the client."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from test_lsp import wait_for
from test_trust import GEN_TEMPLATE, GENERATOR, PLAIN_TEMPLATE, fake_nvcc

from conftest import start_lsp

CLEAN_GEN = GEN_TEMPLATE.replace("{% if %}\n", "")
INFO = lsp.DiagnosticSeverity.Information


def _workspace(root: Path) -> None:
    nvcc = fake_nvcc(root)
    (root / "cutlens.toml").write_text(f'nvcc = "{nvcc}"\ncutlass = false\n')
    (root / "gen.py").write_text(GENERATOR)


async def _start(client: LanguageClient, root: Path, options: dict) -> None:
    await start_lsp(client, root, {"checkOn": "save", **options})


@pytest.fixture
def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    _workspace(tmp_path)
    lsp_server.root = tmp_path  # type: ignore[attr-defined]
    return lsp_server


@pytest.fixture
def no_exec_client(lsp_server_no_exec: LanguageClient, tmp_path: Path) -> LanguageClient:
    _workspace(tmp_path)
    return lsp_server_no_exec


def open_doc(client: LanguageClient, name: str, text: str) -> str:
    path = client.root / name  # type: ignore[attr-defined]
    path.write_text(text)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=path.as_uri(), language_id="cuda-jinja", version=1, text=text)))
    return path.as_uri()


def published(client: LanguageClient, uri: str) -> list[lsp.Diagnostic]:
    return list(client.diagnostics.get(uri, []))


def notices(client: LanguageClient, uri: str) -> list[lsp.Diagnostic]:
    return [d for d in published(client, uri) if d.severity == INFO]


async def check_command(client: LanguageClient, uri: str) -> dict:
    """Both tiers now (nvcc whatever checkOn says, if it may run at all)."""
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.check", arguments=[uri]))


async def test_untrusted_client_gets_jinja_diagnostics_and_one_notice(client: LanguageClient,
                                                                      tmp_path: Path):
    await _start(client, tmp_path, {"trusted": False})
    gen = open_doc(client, "gen.cu.jinja", GEN_TEMPLATE)
    plain = open_doc(client, "plain.cu.jinja", PLAIN_TEMPLATE)
    await wait_for(lambda: len(published(client, gen)) == 2, what="gen diagnostics")
    await wait_for(lambda: len(published(client, plain)) == 2, what="plain diagnostics")
    clean = open_doc(client, "clean.cu.jinja", PLAIN_TEMPLATE.replace("blok", "block"))
    await wait_for(lambda: notices(client, clean), what="clean diagnostics")
    for uri in (gen, plain, clean):
        await check_command(client, uri)
    assert [d.severity for d in published(client, clean)] == [INFO]
    for uri, error_line, error in ((gen, 6, "syntax error"), (plain, 5, "'blok' is undefined")):
        diags = published(client, uri)
        [note] = notices(client, uri)
        assert note.message.startswith("Workspace not trusted") and note.range.start.line == 0
        [err] = [d for d in diags if d.severity == lsp.DiagnosticSeverity.Error]
        assert err.range.start.line == error_line and error in err.message
    assert "generator 'gen:variants'" in notices(client, gen)[0].message
    assert not (tmp_path / "GENERATOR_RAN").exists()
    assert not (tmp_path / "NVCC_LOG").exists()
    res = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.benchmark", arguments=[plain]))
    assert "untrusted workspace" in res["error"]


async def test_a_client_that_says_nothing_is_trusted(client: LanguageClient, tmp_path: Path):
    await _start(client, tmp_path, {})
    gen = open_doc(client, "gen.cu.jinja", CLEAN_GEN)
    await wait_for(lambda: (tmp_path / "GENERATOR_RAN").exists(), what="the generator")
    await check_command(client, gen)
    assert (tmp_path / "NVCC_LOG").exists()
    assert notices(client, gen) == []


async def test_granting_trust_runs_what_was_held_back(client: LanguageClient, tmp_path: Path):
    await _start(client, tmp_path, {"trusted": False})
    gen = open_doc(client, "gen.cu.jinja", CLEAN_GEN)
    await wait_for(lambda: notices(client, gen), what="the notice")
    assert not (tmp_path / "GENERATOR_RAN").exists()
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(
        settings={"cutlens": {"checkOn": "save", "trusted": True}}))
    await wait_for(lambda: (tmp_path / "GENERATOR_RAN").exists(), what="the generator")
    await wait_for(lambda: (tmp_path / "NVCC_LOG").exists(), what="nvcc")
    await wait_for(lambda: not notices(client, gen), what="the notice to go")


async def test_no_exec_server_ignores_a_trusting_client(no_exec_client: LanguageClient,
                                                        tmp_path: Path):
    await _start(no_exec_client, tmp_path, {"trusted": True})
    gen = open_doc(no_exec_client, "gen.cu.jinja", CLEAN_GEN)
    await wait_for(lambda: notices(no_exec_client, gen), what="the notice")
    await check_command(no_exec_client, gen)
    assert not (tmp_path / "GENERATOR_RAN").exists()
    assert not (tmp_path / "NVCC_LOG").exists()
