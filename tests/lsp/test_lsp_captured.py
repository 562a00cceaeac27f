"""The editor shows which captured samples a template takes: hover on ``samples_from`` and
on ``[accepts]`` in the real language server (stdio, pytest-lsp), from a recorded samples
file; a template that cannot read its file says so on the ``samples_from`` line."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from test_lsp import open_doc, wait_for

from conftest import line_of, start_lsp

CAPTURED = """\
[capture]
command = ["python", "train.py"]
device = "cuda"
weight_by = "time"

[samples.c_fc]
op = "mm"
count = 24
weight = 0.6
time_ms = 1.5
modules = ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]
epilogue = ["add", "mul", "tanh"]
mat1 = { dtype = "bfloat16", size = [4096, 768], stride = [768, 1] }
mat2 = { dtype = "bfloat16", size = [768, 3072], stride = [3072, 1] }
out = { dtype = "bfloat16", size = [4096, 3072], stride = [3072, 1] }

[samples.c_attn]
op = "addmm"
count = 24
weight = 0.3
time_ms = 0.75
modules = ["transformer.h.0.attn.c_attn"]
epilogue = []
bias = { dtype = "float32", size = [2304], stride = [1] }
mat1 = { dtype = "float32", size = [4096, 768], stride = [768, 1] }
mat2 = { dtype = "float32", size = [768, 2304], stride = [2304, 1] }
out = { dtype = "float32", size = [4096, 2304], stride = [2304, 1] }

[samples.attn_bmm]
op = "bmm"
count = 24
weight = 0.1
time_ms = 0.25
modules = ["transformer.h.0.attn"]
epilogue = []
batch1 = { dtype = "bfloat16", size = [96, 512, 64], stride = [32768, 64, 1] }
batch2 = { dtype = "bfloat16", size = [96, 64, 512], stride = [32768, 512, 1] }
out = { dtype = "bfloat16", size = [96, 512, 512], stride = [262144, 512, 1] }
"""

TEMPLATE = """\
{#- cutlens
kind = "cuda"
samples_from = "captured"
[accepts]
ops = ["mm", "addmm"]
dtypes = ["bfloat16"]
nodes = { X = "mat1", W = "mat2", Bias = "bias", Y = "out" }
-#}
// {{ X.get_size() }} x {{ W.get_size() }}
"""


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "cutlens.toml").write_text("jobs = 1\n")
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "save"})


async def hover_at(client: LanguageClient, uri: str, text: str, needle: str) -> str:
    ln = line_of(text, needle) - 1
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, 2)))
    assert h is not None, f"no hover on {needle!r}"
    return h.contents.value


async def test_hover_lists_taken_and_skipped_captured_samples(client: LanguageClient):
    root = client.root  # type: ignore[attr-defined]
    (root / ".cutlens").mkdir()
    (root / ".cutlens" / "captured.toml").write_text(CAPTURED)
    uri = open_doc(client, "g.cu.jinja", TEMPLATE)
    await wait_for(lambda: uri in client.diagnostics, what="diagnostics")
    for needle in ("samples_from", "[accepts]"):
        md = await hover_at(client, uri, TEMPLATE, needle)
        assert "captured.toml`: 1 taken, 2 skipped" in md
        assert "| `c_fc` | mm | 60.0% | 24 (1.500 ms) | bfloat16[4096×768] | " \
               "bfloat16[768×3072] | — | bfloat16[4096×3072] |" in md
        assert "- `c_attn`: X is float32 (the template accepts bfloat16)" in md
        assert "- `attn_bmm`: op bmm (the template accepts mm, addmm)" in md
    assert not [d for d in client.diagnostics[uri] if d.severity == 1]
    # the results view's payload: the captured samples and what their weights are shares of
    res = await client.protocol.send_request_async("cutlens/results", {"uri": uri})
    assert res.capturedWeightBy == "time"
    assert res.captured.c_fc.weight == 0.6 and res.captured.c_fc.op == "mm"
    assert res.captured.c_fc.modules == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]
    assert set(res.captured._fields) == {"c_fc"}  # the two skipped ones are not the template's


async def test_missing_samples_file_is_a_warning_on_samples_from(client: LanguageClient):
    uri = open_doc(client, "g.cu.jinja", TEMPLATE)
    diags = await wait_for(lambda: client.diagnostics.get(uri), what="diagnostics")
    warn = [d for d in diags if "samples_from" in d.message]
    assert len(warn) == 1 and warn[0].severity == lsp.DiagnosticSeverity.Warning
    assert warn[0].range.start.line == line_of(TEMPLATE, "samples_from") - 1
    assert "run cutlens capture" in warn[0].message
    md = await hover_at(client, uri, TEMPLATE, "samples_from")
    assert "Run `cutlens capture -- python PROGRAM` first." in md
