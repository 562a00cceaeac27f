"""Nsight Compute in the real language server (stdio, pytest-lsp): the ``cutlens.profile``
command (a real nvcc build, the stand-in ncu of ``tests/fixtures/ncu`` reading back a recorded
H100 profile), the Profile lens of a ``[[variant]]`` line before and after, the profile in the
variant line's hover, the results payload's profile column, and the errors as answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from conftest import line_of, start_lsp

FIX = Path(__file__).parents[1] / "fixtures" / "ncu"

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = [1024] }

[[variant]]
name = "narrow"
block = 128

[[variant]]
name = "wide"
block = 256
-#}
#include <cstdint>
{{ template.header() }}
{{ template.globals() }}
__global__ void scale_kernel(const float* x, float* y, int64_t n) {
  int64_t i = blockIdx.x * (int64_t){{ block }} + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i];
}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  if (workspace_size) { *workspace_size = 0; return 0; }
  return 0;
}
}
"""

NCU = {"CUTLENS_NCU": str(FIX / "fake_ncu.py"), "FAKE_NCU_MODE": "ok",
       "FAKE_NCU_CSV": str(FIX / "raw_gemm_sm90.csv")}


@pytest.fixture(autouse=True)
def _stand_in_ncu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (started after this) inherits the stand-in ncu."""
    for k, v in NCU.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "cutlens.toml").write_text("jobs = 1\n")
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "save"})


def _open(client: LanguageClient) -> str:
    path = client.root / "p.cu.jinja"  # type: ignore[attr-defined]
    path.write_text(TEMPLATE)
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=uri, language_id="cuda-jinja", version=1, text=TEMPLATE)))
    return uri


async def _profile_lenses(client: LanguageClient, uri: str) -> dict[int, lsp.CodeLens]:
    for _ in range(200):  # until the template is loaded
        listed = await client.text_document_code_lens_async(
            lsp.CodeLensParams(lsp.TextDocumentIdentifier(uri)))
        if listed:
            break
        await asyncio.sleep(0.05)
    mine = [c for c in listed if c.data.get("kind") == "profile"]
    resolved = [await client.code_lens_resolve_async(c) for c in mine]
    return {c.range.start.line: c for c in resolved}


async def _command(client: LanguageClient, *args: object) -> dict:
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.profile", arguments=list(args)))


@pytest.mark.nvcc
async def test_profile_command_lens_and_hover(client: LanguageClient):
    uri = _open(client)
    narrow = line_of(TEMPLATE, 'name = "narrow"') - 2  # its [[variant]] line, 0-based
    wide = line_of(TEMPLATE, 'name = "wide"') - 2
    lenses = await _profile_lenses(client, uri)
    assert set(lenses) == {narrow, wide}
    assert lenses[wide].command.title == "⏱ Profile"
    assert lenses[wide].command.command == "cutlens.profile"
    assert list(lenses[wide].command.arguments[1:]) == ["wide", "small"]

    res = await _command(client, uri, "wide", "small", "narrow")
    assert "error" not in res, res
    assert res["profile"]["variant"] == "wide" and res["baseline"]["variant"] == "narrow"
    assert res["profile"]["summary"]["sm_pct"] == pytest.approx(81.53)
    assert Path(res["profile"]["report"]).is_file()
    assert res["open"].startswith("ncu-ui ") and res["open"].count(".ncu-rep") == 2
    assert res["comparison"]["difference"]["sm_pct"]["delta"] == 0.0

    lenses = await _profile_lenses(client, uri)
    assert lenses[wide].command.title.startswith("ncu: SM 82 % · mem 39 % · occupancy 19 %")
    hover = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(wide, 2)))
    assert hover is not None and "**wide**: **Nsight Compute** (NVIDIA H100 80GB HBM3)" \
        in hover.contents.value
    assert "speed of light: SM 81.5 % · memory 38.7 %" in hover.contents.value

    # a benchmark result of the same variant: its results row carries the profile
    import hashlib

    from cutlens.results.store import ResultStore

    ResultStore(client.root).add({  # type: ignore[attr-defined]
        "template": "p.cu.jinja", "template_hash": hashlib.sha256(TEMPLATE.encode()).hexdigest(),
        "sample": "small", "variant_name": "wide", "ms": 0.01, "verified": True})
    res = await client.protocol.send_request_async("cutlens/results", {"uri": uri})
    (row,) = res.rows
    assert row.variantName == "wide" and row.profile.smPct == pytest.approx(81.53)
    assert row.profile.report.endswith(".ncu-rep") and row.profile.registers == 168


async def test_profile_errors_are_answers(client: LanguageClient):
    uri = _open(client)
    res = await _command(client, uri, "nope", "small")
    assert "no variant 'nope'" in res["error"]
    res = await _command(client, uri, "wide", "nosuch")
    assert "no sample 'nosuch'" in res["error"]
