"""The real language server over stdio (pytest-lsp): a grid's one summary lens and its
hover after a real (CPU) benchmark, per-variant lenses of ``[[variant]]`` tables, code
actions (did you mean, add a missing node, open the header an nvcc error came from), document
links, inlay hints with ptxas' figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from test_lsp import open_doc, resolved_lenses, wait_for

from conftest import HAS_NVCC, line_of, start_lsp

BENCH_TOML = ('[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\n'
              'max_iters = 50\nflush_bytes = 1048576\n')

LISTED = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [64] }
Y = { dtype = "float32", size = [64] }

[[variant]]
name = "narrow"
block = 32

[[variant]]
name = "wide"
block = 128
-#}
{{ template.header() }}
{{ template.globals() }}
__global__ void k(const float* x, float* y) { y[threadIdx.x] = x[threadIdx.x] * {{ block }}; }
"""

FIXES = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [64] }  # the input
Y = { dtype = "float32", size = [64] }
[samples.big]
X = { dtype = "float16", size = [4096] }
Y = { dtype = "float16", size = [4096] }
[variants]
block = [64, 128]
-#}
{% import "macros.cuh.jinja" as m %}
#include <cstdint>
{{ template.header() }}
{{ template.globals() }}
__global__ void k(const float* x, float* y) { y[threadIdx.x] = x[threadIdx.x] * {{ blok }}; }
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  const float* b = {{ kernel.ptr(Bias) }};
  return 0;
}
}
"""

HEADER = """\
#pragma once
template <int N> struct Check {
  static_assert(N % 64 == 0, "block must be a multiple of 64");
};
"""

USES_HEADER = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [64] }
[variants]
block = [96]
-#}
#include "check.h"
#include <cuda_runtime.h>
{{ template.header() }}
Check<{{ block }}> instance;
"""


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "macros.cuh.jinja").write_text("{% macro noop() %}{% endmacro %}\n")
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "check.h").write_text(HEADER)
    (tmp_path / "cutlens.toml").write_text('include_dirs = ["inc"]\ncutlass = false\njobs = 2\n'
                                           + BENCH_TOML)
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "save"})


def jinja_diags(client: LanguageClient, uri: str) -> list[lsp.Diagnostic]:
    return [d for d in client.diagnostics.get(uri, []) if d.source == "cutlens-jinja"]


async def actions_for(client: LanguageClient, uri: str,
                      d: lsp.Diagnostic) -> list[lsp.CodeAction]:
    got = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), d.range, lsp.CodeActionContext(diagnostics=[d])))
    return [a for a in got or [] if isinstance(a, lsp.CodeAction)]


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """``text`` with ``edits`` applied (as a client applies a WorkspaceEdit)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def at(p: lsp.Position) -> int:
        return offsets[min(p.line, len(lines))] + p.character

    for e in sorted(edits, key=lambda e: at(e.range.start), reverse=True):
        text = text[:at(e.range.start)] + e.new_text + text[at(e.range.end):]
    return text


# -- lenses and hover --------------------------------------------------------------------------
@pytest.mark.nvcc
async def test_grid_gets_one_summary_lens_and_a_results_hover(client: LanguageClient):
    from test_bench_cli import TEMPLATE as HOST

    uri = open_doc(client, "v.cu.jinja", HOST)
    res = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="cutlens.benchmark", arguments=[uri, None, "vec"]))
    assert res["results"] == 4 and res["failed"] == 1, res
    grid = line_of(HOST, "[variants]") - 1
    lenses = await resolved_lenses(client, uri)
    on_grid = [c for c in lenses if c.range.start.line == grid]
    assert len(on_grid) == 1
    best = res["best"]["variant"]
    title = on_grid[0].command.title
    assert title.startswith(f"3 variants · best {best} "), title
    assert " · spread " in title and title.endswith(" · 2 ✓ · 1 ✗")
    assert on_grid[0].command.command == "cutlens.results"
    # hover on a grid key: its values, each with its results
    ln = line_of(HOST, "fail = [false, true]") - 1
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, 1)))
    md = h.contents.value
    assert md.startswith("**fail** — 2 value(s) over 3 variant(s) of sample `vec`"), md
    assert "| fail | variants | ✓ | ✗ | best ms | best variant |" in md
    rows = [r for r in md.splitlines() if r.startswith("| `")]
    assert rows[0].startswith("| `false` | 2 | 2 | 0 | ") and rows[0].endswith(f" | {best} |")
    assert rows[1] == "| `true` | 1 | 0 | 1 | — | — |"
    ln = line_of(HOST, "unroll = [1, 2]") - 1
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(ln, 2)))
    assert sorted(r.split(" | ")[0] for r in h.contents.value.splitlines()
                  if r.startswith("| `")) == ["| `1`", "| `2`"]
    # hover on the [variants] header: every variant, fastest first, failures last
    h = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(grid, 3)))
    rows = [r for r in h.contents.value.splitlines() if r.startswith("| ") and "ms" not in r
            and "---" not in r]
    assert rows[0].startswith(f"| {best} | ") and rows[0].endswith(" | ✓ |")
    assert rows[-1].startswith("| unroll=1 fail | — | ") and "✗ returned 3" in rows[-1]


async def test_variant_tables_keep_one_lens_each(client: LanguageClient):
    uri = open_doc(client, "l.cu.jinja", LISTED)
    await wait_for(lambda: client.seen.status and client.seen.status[-1].get("state") == "ready")
    lenses = await resolved_lenses(client, uri)
    variant_lenses = {c.range.start.line: c.command for c in lenses
                      if c.command.command == "cutlens.selectVariant"}
    tables = [i for i, ln in enumerate(LISTED.splitlines()) if ln == "[[variant]]"]
    assert sorted(variant_lenses) == tables
    assert [variant_lenses[t].title.split(" · ")[0] for t in tables] == ["narrow", "wide"]
    assert list(variant_lenses[tables[1]].arguments) == [uri, "wide"]


@pytest.mark.nvcc
async def test_inlay_hints_show_ptxas_figures_on_each_variant_line(client: LanguageClient):
    uri = open_doc(client, "l.cu.jinja", LISTED)
    await wait_for(lambda: client.seen.lens_refreshes > 0, what="the compile's results")
    everything = lsp.Range(lsp.Position(0, 0), lsp.Position(len(LISTED.splitlines()), 0))
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        lsp.TextDocumentIdentifier(uri), everything))
    tables = [i for i, ln in enumerate(LISTED.splitlines()) if ln == "[[variant]]"]
    assert [h.position for h in hints] == [lsp.Position(t, len("[[variant]]")) for t in tables]
    for h in hints:
        assert h.label.startswith("regs ") and h.label.endswith(" · smem 0 B · 0 spills")
        assert "ptxas" in h.tooltip.value
    # a range that holds one table's line gets that hint only
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        lsp.TextDocumentIdentifier(uri),
        lsp.Range(lsp.Position(tables[1], 0), lsp.Position(tables[1] + 1, 0))))
    assert [h.position.line for h in hints] == [tables[1]]


# -- code actions ------------------------------------------------------------------------------
async def test_quick_fixes_for_an_undefined_name(client: LanguageClient):
    uri = open_doc(client, "f.cu.jinja", FIXES)
    found = await wait_for(lambda: jinja_diags(client, uri), what="the Jinja error")
    blok = found[0]
    assert blok.message.startswith("'blok' is undefined")
    acts = await actions_for(client, uri, blok)
    assert [a.title for a in acts] == ["Did you mean 'block'?"]  # no node: a lowercase name
    assert acts[0].kind == lsp.CodeActionKind.QuickFix and acts[0].is_preferred
    fixed = apply(FIXES, acts[0].edit.changes[uri])
    assert "x[threadIdx.x] * {{ block }}; }" in fixed
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [lsp.TextDocumentContentChangeWholeDocument(text=fixed)]))
    found = await wait_for(lambda: [d for d in jinja_diags(client, uri)
                                    if d.message.startswith("'Bias' is undefined")],
                           what="the next error")
    acts = await actions_for(client, uri, found[0])
    add = next(a for a in acts if a.title.startswith("Add node"))
    assert add.title == "Add node 'Bias' to samples 'small', 'big'"
    fixed = apply(fixed, add.edit.changes[uri])
    # shaped like each sample's first node, after its last key
    assert 'Y = { dtype = "float32", size = [64] }\nBias = { dtype = "float32", size = [64] }' \
           '\n[samples.big]' in fixed
    assert 'Bias = { dtype = "float16", size = [4096] }\n[variants]' in fixed
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
        [lsp.TextDocumentContentChangeWholeDocument(text=fixed)]))
    await wait_for(lambda: client.diagnostics.get(uri) is not None
                   and not jinja_diags(client, uri), what="the fixes to clear the errors")


@pytest.mark.nvcc
async def test_open_the_header_an_nvcc_error_came_from(client: LanguageClient):
    uri = open_doc(client, "h.cu.jinja", USES_HEADER)
    err = await wait_for(lambda: [d for d in client.diagnostics.get(uri, [])
                                  if d.source == "cutlens-nvcc" and "multiple of 64"
                                  in d.message], what="the nvcc error")
    d = err[0]
    assert d.range.start.line == line_of(USES_HEADER, "Check<{{ block }}>") - 1
    acts = await actions_for(client, uri, d)
    opens = [a for a in acts if a.command and a.command.command == "cutlens.openLocation"]
    header = (client.root / "inc" / "check.h").resolve()  # type: ignore[attr-defined]
    assert opens and opens[0].title.startswith("Open check.h:3 ")
    res = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=opens[0].command.command, arguments=opens[0].command.arguments))
    assert res["shown"] is True
    shown = client.shown_documents[-1]  # pytest-lsp records window/showDocument
    assert shown.uri == header.as_uri() and shown.selection.start.line == 2
    assert shown.take_focus


# -- document links ----------------------------------------------------------------------------
async def test_document_links_on_includes_and_imports(client: LanguageClient):
    root = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, "h.cu.jinja", USES_HEADER.replace(
        "#include <cuda_runtime.h>", '#include <cuda_runtime.h>\n{% import "macros.cuh.jinja" '
        'as m %}\n#include "nowhere.h"'))
    links = await client.text_document_document_link_async(lsp.DocumentLinkParams(
        lsp.TextDocumentIdentifier(uri)))
    by_line = {ln.range.start.line: ln for ln in links}
    text = (root / "h.cu.jinja").read_text()
    inc = line_of(text, '#include "check.h"') - 1
    assert by_line[inc].target == (root / "inc" / "check.h").resolve().as_uri()
    assert (by_line[inc].range.start.character, by_line[inc].range.end.character) == (10, 17)
    imp = line_of(text, "{% import") - 1
    assert by_line[imp].target == (root / "macros.cuh.jinja").resolve().as_uri()
    assert line_of(text, "nowhere.h") - 1 not in by_line  # unresolved: no link
    if HAS_NVCC:
        cuda = by_line[line_of(text, "<cuda_runtime.h>") - 1]
        assert cuda.target.endswith("/cuda_runtime.h")
