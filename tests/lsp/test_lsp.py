"""The real language server over stdio, driven by pytest-lsp: diagnostics in both tiers,
cancellation, lenses, the rendered view, hover, completion and re-checks on change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from conftest import line_of, start_lsp

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = [1024] }
[variants]
block = [128, 256]
-#}
{% import "macros.cuh.jinja" as m %}
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
{{ m.launch("scale_kernel", block, kernel.size(X, 0)) }}
  return 0;
}
}
"""
MACROS = """\
{% macro launch(name, block, n) %}
  {{ name }}<<<({{ n }} + {{ block }} - 1) / {{ block }}, {{ block }}, 0, stream>>>(X, Y, {{ n }});
{% endmacro %}
"""


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "macros.cuh.jinja").write_text(MACROS)
    (tmp_path / "cutlens.toml").write_text("jobs = 2\n")
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "save"})


def open_doc(client: LanguageClient, name: str, text: str, version: int = 1) -> str:
    path = client.root / name  # type: ignore[attr-defined]
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=uri, language_id="cuda-jinja", version=version, text=text)))
    return uri


def change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def wait_for(pred, timeout: float = 60.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def resolved_lenses(client: LanguageClient, uri: str) -> list[lsp.CodeLens]:
    """The lenses as an editor shows them: listed (without commands), then each resolved."""
    listed = await client.text_document_code_lens_async(
        lsp.CodeLensParams(lsp.TextDocumentIdentifier(uri)))
    assert all(c.command is None and c.data for c in listed)  # cheap to list
    return [await client.code_lens_resolve_async(c) for c in listed]


def diags(client: LanguageClient, uri: str, source: str | None = None) -> list[lsp.Diagnostic]:
    out = client.diagnostics.get(uri, [])
    return [d for d in out if source is None or d.source == source]


async def test_jinja_error_has_exact_range(client: LanguageClient):
    text = TEMPLATE.replace("{{ block }} + threadIdx", "{{ blok }} + threadIdx")
    uri = open_doc(client, "t.cu.jinja", text)
    found = await wait_for(lambda: diags(client, uri, "cutlens-jinja"), what="jinja diags")
    d = found[0]
    ln = line_of(text, "{{ blok }}") - 1
    col = text.splitlines()[ln].index("blok")
    assert d.range == lsp.Range(lsp.Position(ln, col), lsp.Position(ln, col + 4))
    assert d.message == "'blok' is undefined"
    assert d.severity == lsp.DiagnosticSeverity.Error


@pytest.mark.nvcc
async def test_nvcc_error_on_save_lands_on_the_line(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    # open runs both tiers; the clean template has no nvcc errors
    await wait_for(lambda: any(s.get("state") == "compiling" for s in client.seen.status),
                   what="compile start")
    await wait_for(lambda: client.seen.status[-1].get("state") == "ready", what="ready")
    assert [d for d in diags(client, uri) if d.severity == lsp.DiagnosticSeverity.Error] == []
    bad = TEMPLATE.replace("  return 0;\n}\n}", "  return undeclared_status;\n}\n}")
    change(client, uri, bad, 2)
    (client.root / "t.cu.jinja").write_text(bad)  # type: ignore[attr-defined]
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        lsp.TextDocumentIdentifier(uri)))
    found = await wait_for(lambda: diags(client, uri, "cutlens-nvcc"), what="nvcc diags")
    await wait_for(lambda: client.seen.status[-1].get("state") == "ready", what="ready")
    found = diags(client, uri, "cutlens-nvcc")
    assert found[0].range.start.line == line_of(bad, "undeclared_status") - 1
    assert found[0].message == 'identifier "undeclared_status" is undefined'
    # the quick pass is superseded by the full pass: never shown twice
    assert len(diags(client, uri, "cutlens-nvcc")) == 1


@pytest.mark.nvcc
async def test_stale_compile_is_cancelled_and_never_published(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    await wait_for(lambda: any(s.get("state") == "compiling" for s in client.seen.status))
    await wait_for(lambda: client.seen.status[-1].get("state") == "ready", what="ready")
    n_status = len(client.seen.status)
    # save a version with an error, then edit before its compile finishes
    bad = TEMPLATE.replace("#include <cstdint>", "#include <cstdint>\n#include <iostream>\n"
                           "int stale_marker = undeclared_stale_marker;")
    change(client, uri, bad, 2)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    await wait_for(lambda: any(s.get("state") == "compiling"
                               for s in client.seen.status[n_status:]), what="compile start")
    change(client, uri, TEMPLATE, 3)
    await wait_for(lambda: client.seen.status[-1].get("state") == "ready", what="ready")
    root = str(client.root)  # type: ignore[attr-defined]

    def alive() -> list[str]:
        out = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if root in cmd and ("nvcc" in cmd or "cicc" in cmd):
                    out.append(cmd)
        return out

    # the compile of version 2 was killed: no nvcc of this workspace stays alive (killed
    # tools take a moment to go: polled, not a fixed sleep)
    await wait_for(lambda: not alive(), what="the killed compile's processes to go")
    # a request answered now comes after anything the server published before it
    await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(uri)))
    assert not any("stale_marker" in d.message for d in diags(client, uri))


@pytest.mark.nvcc
async def test_lenses_before_and_after_results(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    await wait_for(lambda: client.seen.status and client.seen.status[-1].get("state") == "ready")
    lenses = await resolved_lenses(client, uri)
    titles = [c.command.title for c in lenses]
    assert titles[:3] == ["▶ Check", "▶ Benchmark (2 variants)", "Show rendered"]
    await wait_for(lambda: client.seen.lens_refreshes > 0, what="lens refresh")
    lenses = await resolved_lenses(client, uri)
    grid = line_of(TEMPLATE, "[variants]") - 1
    # the grid's two variants share one summary lens on its line (not one lens each)
    on_grid = [c for c in lenses if c.range.start.line == grid]
    assert len(on_grid) == 1
    v = on_grid[0]
    assert v.command.title.startswith("2 variants · nvcc ✓ · regs "), v.command.title
    assert v.command.command == "cutlens.selectVariant"  # no benchmark yet: the picker
    s = next(c for c in lenses if c.command.title.startswith("● small"))
    assert s.range.start.line == line_of(TEMPLATE, "[samples.small]") - 1
    assert "✓ nvcc (2 variants)" in s.command.title
    # ptxas' figures as an inlay hint at the end of the grid's line
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        lsp.TextDocumentIdentifier(uri), lsp.Range(lsp.Position(0, 0), lsp.Position(40, 0))))
    assert [h.position.line for h in hints] == [grid]
    assert hints[0].position.character == len(TEMPLATE.splitlines()[grid])
    assert hints[0].label.startswith("regs ") and " · smem 0 B · 0 spills" in hints[0].label


async def test_show_rendered_maps_positions(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    res = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.showRendered", arguments=[uri, "small", "block=256"]))
    text = res["text"]
    assert "scale_kernel<<<(1024L + 256 - 1) / 256, 256, 0, stream>>>(X, Y, 1024L);" in text
    i = line_of(text, "scale_kernel<<<") - 1
    assert res["lines"][i] == {"uri": uri, "line": line_of(TEMPLATE, "m.launch") - 1}
    j = line_of(text, "int64_t i = blockIdx.x") - 1
    assert res["lines"][j]["line"] == line_of(TEMPLATE, "int64_t i = blockIdx.x") - 1
    assert res["variant"] == "block=256" and res["kernelName"] == "cutlens_t"
    sel = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.selectVariant", arguments=[uri, "block=256"]))
    assert sel == {"variant": "block=256"}
    res2 = await client.protocol.send_request_async("cutlens/rendered", {"uri": uri})
    assert res2.variant == "block=256"


async def test_hover_on_an_expression(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    await wait_for(lambda: client.seen.status and client.seen.status[-1].get("state") == "ready")
    ln = line_of(TEMPLATE, "(int64_t){{ block }}") - 1
    col = TEMPLATE.splitlines()[ln].index("{{ block }}") + 1
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, col)))
    assert "renders to" in h.contents.value and "128" in h.contents.value
    # a hook: its documentation and what this call rendered to
    ln = line_of(TEMPLATE, "kernel.def_kernel") - 1
    col = TEMPLATE.splitlines()[ln].index("def_kernel") + 2
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, col)))
    assert "kernel.def_kernel(inputs" in h.contents.value
    assert "PT_EXPORT int cutlens_t(const float* X, float* Y" in h.contents.value
    # a node: dtype, sizes, strides
    col = TEMPLATE.splitlines()[ln].index("[X]") + 1
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, col)))
    assert "| float32 | ['1024'] | ['1'] | 0 |" in h.contents.value


async def test_completion_after_kernel_dot(client: LanguageClient):
    text = TEMPLATE.replace("  return 0;\n}\n}", "  int64_t s = {{ kernel. }};\n  return 0;\n}\n}")
    uri = open_doc(client, "t.cu.jinja", text)
    ln = line_of(text, "{{ kernel. }}") - 1
    col = text.splitlines()[ln].index("kernel.") + len("kernel.")
    res = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, col)))
    labels = {i.label: i for i in res.items}
    for hook in ("def_kernel", "size", "stride", "ptr", "row_or_column_stride",
                 "check_not_null", "batch_stride", "max_valid_index"):
        assert hook in labels
    assert labels["stride"].detail == "kernel.stride(node: 'Node | None', index: 'int', " \
                                      "default_value: 'int' = 0) -> 'str'"
    # template. offers the template hooks
    text2 = text.replace("{{ kernel. }}", "{{ template. }}")
    change(client, uri, text2, 2)
    res = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, col + 2)))
    assert {"header", "globals", "cute_int", "cutlass_type_cast"} <= {i.label for i in res.items}


async def test_change_to_included_template_rechecks_parent(client: LanguageClient):
    uri = open_doc(client, "t.cu.jinja", TEMPLATE)
    await wait_for(lambda: client.seen.status and client.seen.status[-1].get("state") == "ready")
    assert diags(client, uri, "cutlens-jinja") == []
    macros = client.root / "macros.cuh.jinja"  # type: ignore[attr-defined]
    macros.write_text(MACROS.replace("{{ block }}, 0, stream", "{{ blocks }}, 0, stream"))
    muri = macros.as_uri()
    found = await wait_for(lambda: diags(client, muri, "cutlens-jinja"), what="partial diags")
    assert found[0].range.start.line == 1 and found[0].message == "'blocks' is undefined"
    rel = found[0].related_information[0]
    assert rel.location.uri == uri
    assert rel.location.range.start.line == line_of(TEMPLATE, "m.launch") - 1


@pytest.mark.nvcc
async def test_benchmark_command_fills_lenses_and_results(client: LanguageClient):
    """The benchmark command on CPU workers (a host-side kernel): results reach the lenses
    and the cutlens/results request."""
    root = client.root  # type: ignore[attr-defined]
    (root / "cutlens.toml").write_text(
        '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\nmax_iters = 50\n'
        "flush_bytes = 1048576\n")
    from test_bench_cli import TEMPLATE as HOST

    uri = open_doc(client, "v.cu.jinja", HOST)
    res = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.benchmark", arguments=[uri]))
    assert res["results"] == 4 and res["failed"] == 1  # 3 variants + torch, one fails
    lenses = await resolved_lenses(client, uri)
    grid = [c for c in lenses if c.range.start.line == line_of(HOST, "[variants]") - 1]
    assert len(grid) == 1, [c.command.title for c in lenses]  # one summary, not 3 lenses
    title = grid[0].command.title
    assert title.startswith("3 variants · best unroll=") and " ms · spread " in title, title
    assert title.endswith(" · 2 ✓ · 1 ✗"), title
    assert grid[0].command.command == "cutlens.results" and list(grid[0].command.arguments) == [uri]
    shown = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.results", arguments=[uri]))
    assert len(shown["rows"]) == 3 and sum(r["best"] for r in shown["rows"]) == 1
    table = await client.protocol.send_request_async("cutlens/results", {"uri": uri})
    rows = table.rows
    assert [r.best for r in rows].count(True) == 1
    assert rows[0].best and rows[0].verified
    assert table.baseline.vec.ms > 0


#: A fake nvcc that reports the marker it compiled at once (no real nvcc runs).
MARKER_NVCC = r"""for a; do case "$a" in *.cu) src=$a;; esac; done
m=$(grep -o 'marker_[0-9]*' "$src" | head -1)
echo "$m" >> "$(dirname "$0")/runs"
echo "$src(1): error: compiled $m"
exit 1
"""
MARKED = """\
{#- cutlens
kind = "cuda"
[samples.s]
X = { dtype = "float32", size = [256] }
-#}
int marker_1 = 0;
"""


@pytest.mark.parametrize("check_on", ["change", "save"])
async def test_the_projects_check_on_decides_without_a_client_setting(
        lsp_server: LanguageClient, tmp_path: Path, check_on: str):
    """``check_on`` in cutlens.toml is the project's say: with no ``checkOn`` from the
    editor, "change" compiles each edit (unsaved) and "save" compiles none of them."""
    from test_compile import fake_nvcc

    nvcc = fake_nvcc(tmp_path, MARKER_NVCC)
    (tmp_path / "cutlens.toml").write_text(f'nvcc = "{nvcc}"\ncutlass = false\n'
                                           f'check_on = "{check_on}"\n')
    await start_lsp(lsp_server, tmp_path)  # no initialization options at all
    uri = open_doc(lsp_server, "t.cu.jinja", MARKED)

    def nvcc_says(n: int) -> bool:
        return any(f"compiled marker_{n}" in d.message
                   for d in lsp_server.diagnostics.get(uri, []))

    await wait_for(lambda: nvcc_says(1), what="the compile on open")
    change(lsp_server, uri, MARKED.replace("marker_1", "marker_2"), 2)
    if check_on == "change":
        await wait_for(lambda: nvcc_says(2), what="the compile of the unsaved edit")
    else:
        await asyncio.sleep(2.0)  # the change debounce (0.8 s) is long past
        runs = (tmp_path / "runs").read_text().split()
        assert set(runs) == {"marker_1"} and not nvcc_says(2)
