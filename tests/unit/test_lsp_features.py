"""The language features as pure functions: definition, document symbols, completion of
filters/nodes/variant keys, hover on a statement."""

from __future__ import annotations

from lsprotocol import types as lsp

from cutlens.lsp import completion, hover, navigation

from conftest import line_of

TEMPLATE = """\
{#- cutlens
[samples.a]
X = { dtype = "float32", size = [8, 4] }
[variants]
block = [64, 128]
-#}
{% import "macros.cuh.jinja" as m %}
{% from "macros.cuh.jinja" import guard %}
{% macro local(n) %}int n{{ n }};{% endmacro %}
{% block body %}
{{ m.launch(block) }}
{{ guard("x") }}
{{ local(3) }}
{% include "part.cuh.jinja" %}
int w = {{ block | string }};
{% endblock %}
"""
MACROS = "// helpers\n{% macro launch(b) %}launch<{{ b }}>();{% endmacro %}\n" \
         "{% macro guard(x) %}if (!{{ x }}) return;{% endmacro %}\n"


def setup(project):
    project.write("macros.cuh.jinja", MACROS)
    project.write("part.cuh.jinja", "// part\n")
    path = project.write("t.cu.jinja", TEMPLATE)
    return path, project.load("t.cu.jinja")


def defn(path, t, needle, offset=0):
    ln = line_of(TEMPLATE, needle) - 1
    col = TEMPLATE.splitlines()[ln].index(needle) + offset
    locs = navigation.definition(t, path, TEMPLATE, ln, col, lambda p: p.read_text())
    return [(loc.uri.rsplit("/", 1)[-1], loc.range.start.line) for loc in locs]


def test_definition_of_macros_and_templates(project):
    path, t = setup(project)
    assert defn(path, t, "m.launch", 3) == [("macros.cuh.jinja", 1)]
    assert defn(path, t, 'guard("x")', 1) == [("macros.cuh.jinja", 2)]
    assert defn(path, t, "local(3)", 1) == [("t.cu.jinja", line_of(TEMPLATE, "macro local") - 1)]
    assert defn(path, t, '"part.cuh.jinja"', 2) == [("part.cuh.jinja", 0)]
    assert defn(path, t, '"macros.cuh.jinja" as m', 2) == [("macros.cuh.jinja", 0)]


def test_document_symbols(project):
    _, t = setup(project)
    syms = {s.name: s for s in navigation.document_symbols(t, TEMPLATE)}
    assert syms["local"].kind == lsp.SymbolKind.Function
    assert syms["body"].kind == lsp.SymbolKind.Namespace
    assert syms["a"].kind == lsp.SymbolKind.Struct
    assert [c.name for c in syms["a"].children] == ["X"]
    assert syms["a"].range.start.line == line_of(TEMPLATE, "[samples.a]") - 1
    assert {"block=64", "block=128"} <= set(syms)


def test_completion_of_filters_names_and_keys(project):
    _, t = setup(project)
    ln = line_of(TEMPLATE, "block | string") - 1
    line = TEMPLATE.splitlines()[ln]
    filters = {i.label for i in completion.complete(t, TEMPLATE, line, line.index("string") + 2)}
    assert {"string", "join", "upper", "indent"} <= filters
    names = {i.label for i in completion.complete(t, TEMPLATE, line, line.index("block") + 1)}
    assert {"X", "block", "kernel", "template", "local", "m"} <= names
    assert completion.complete(t, TEMPLATE, line, 2) == []  # C++ text: no completion


def test_hover_on_a_statement_shows_its_output(project):
    path, t = setup(project)
    s = t.sample(None)
    unit = project.renderer.render(t, s, t.variant(s, None))
    ln = line_of(TEMPLATE, "{% include") - 1
    h = hover.hover(t, unit, str(path), TEMPLATE, ln, 3)
    assert h.contents.value.startswith("**renders ") and "// part" in h.contents.value
    ln = line_of(TEMPLATE, "m.launch") - 1
    h = hover.hover(t, unit, str(path), TEMPLATE, ln, 1)
    assert "launch<64>();" in h.contents.value


def test_one_best_row_per_sample_even_on_a_tie():
    """CPU timings can tie: the results view still marks exactly one row best per sample,
    never a refuted or failed one."""
    from cutlens.bench import report
    from cutlens.bench.best import best_row, best_rows
    from cutlens.lsp.lenses import sample_text

    runs = [{"sample": "s", "variant_name": "a", "ms": 0.5, "verified": False},
            {"sample": "s", "variant_name": "b", "ms": 1.0, "verified": True},
            {"sample": "s", "variant_name": "c", "ms": 1.0, "verified": True},
            {"sample": "s", "variant_name": "d", "ms": None, "error": "boom"},
            {"sample": "t", "variant_name": "a", "ms": 2.0, "verified": None}]
    best = best_rows(runs)
    assert {k: v["variant_name"] for k, v in best.items()} == {"s": "b", "t": "a"}
    assert sum(r is best.get(r["sample"]) for r in runs) == 2
    # the one rule: the lenses, hovers, the results view and the CLI's table all use it
    assert report.best_rows({"results": runs}) == best
    assert best_row([runs[0], runs[3]]) is None
    assert sample_text("s", runs, []).startswith("best b:")
