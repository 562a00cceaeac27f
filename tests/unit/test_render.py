"""Rendering and the source map: literal text, expressions, macros, includes, extends,
loops, companions, line directives, project helpers, limits."""

from __future__ import annotations

import time

from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure

from conftest import line_of

GEMM = """\
{#- cutlens
[samples.square]
X = { dtype = "bfloat16", size = [256, 128] }
W = { dtype = "bfloat16", size = [128, 64], stride = [1, 128] }
Bias = false
Y = { dtype = "bfloat16", size = [256, 64] }

[samples.dynamic]
X = { dtype = "float16", size = ["M", 128] }
W = { dtype = "float16", size = [128, 64] }
Bias = false
Y = { dtype = "float16", size = ["M", 64] }
hints = { M = 1024 }

[variants]
tile = [[128, 256, 64], [128, 128, 64]]
schedule = ["cooperative", "pingpong"]
skip_if = "schedule == 'pingpong' and tile[1] > 128"
-#}
{% import "macros.cuh.jinja" as m %}
#include <cstdint>
extern "C" {
{{ kernel.def_kernel(inputs=[X, W, Bias], outputs=[Y], names_str="X, W, Bias, Y") }} {
  int64_t rows = {{ kernel.size(X, 0) }};
  int64_t lda = {{ kernel.row_or_column_stride(X) }};
  // tile {{ tile | join("x") }} {{ schedule }}
{{ m.launch(tile) }}
{%- for i in range(2) %}
  int x{{ i }} = {{ i }};
{%- endfor %}
{% include "inc.cuh.jinja" %}
  return 0;
}
}
"""
MACROS = """\
{% macro launch(tile) %}
  // launch
  dim3 grid({{ tile[0] }}, {{ tile[1] }});
{% endmacro %}
"""
INC = """\
  // included
  int inc = 1;
"""


def _gemm(project):
    project.write("gemm.cu.jinja", GEMM)
    project.write("macros.cuh.jinja", MACROS)
    project.write("inc.cuh.jinja", INC)


def _origin(unit, needle, file=None):
    o = unit.source_map.origin(line_of(unit.text, needle), file)
    assert o is not None
    return o.file.rsplit("/", 1)[-1], o.line


def test_samples_variants_and_skip_if(project):
    _gemm(project)
    t = project.load("gemm.cu.jinja")
    assert t.errors == []
    assert [s.name for s in t.samples] == ["square", "dynamic"]
    names = [v.name for v in t.variants(t.samples[0])]
    assert names == ["128x256x64 cooperative", "128x128x64 cooperative",
                     "128x128x64 pingpong"]
    assert [v.index for v in t.variants(t.samples[0])] == [0, 2, 3]
    assert len(t.pairs()) == 6


def test_source_map_literal_expression_macro_include(project):
    _gemm(project)
    u = project.render("gemm.cu.jinja")
    assert isinstance(u, RenderedUnit)
    src = GEMM.splitlines()
    assert _origin(u, "#include <cstdint>") == ("gemm.cu.jinja", line_of(GEMM, "#include"))
    assert _origin(u, "PT_EXPORT int") == ("gemm.cu.jinja", line_of(GEMM, "def_kernel"))
    assert _origin(u, "int64_t rows = 256L;") == ("gemm.cu.jinja", line_of(GEMM, "rows"))
    assert "int64_t lda = 128L;" in u.text
    # macro text: the macro's line, with the call site as the outer frame
    ln = line_of(u.text, "dim3 grid(128, 256);")
    frames = u.source_map.frames(ln)
    assert [(f.file.rsplit("/", 1)[-1], f.line, f.kind) for f in frames] == [
        ("gemm.cu.jinja", line_of(GEMM, "m.launch"), "expr"),
        ("macros.cuh.jinja", 3, "text")]
    # the call-site column is the column of its {{
    assert frames[0].column == src[line_of(GEMM, "m.launch") - 1].index("{{")
    # included template
    assert _origin(u, "int inc = 1;") == ("inc.cuh.jinja", 2)
    assert _origin(u, "int inc = 1;", file=str(project.root / "gemm.cu.jinja")) == (
        "gemm.cu.jinja", line_of(GEMM, "{% include"))
    # loop body, each iteration on the same line; whitespace control keeps lines exact
    assert _origin(u, "int x0 = 0;") == ("gemm.cu.jinja", line_of(GEMM, "int x{{ i }}"))
    assert _origin(u, "int x1 = 1;") == ("gemm.cu.jinja", line_of(GEMM, "int x{{ i }}"))
    assert _origin(u, "return 0;") == ("gemm.cu.jinja", line_of(GEMM, "return 0;"))
    # and back: template line -> rendered lines
    assert u.source_map.rendered_lines(str(project.root / "gemm.cu.jinja"),
                                       line_of(GEMM, "int x{{ i }}")) == [
        line_of(u.text, "int x0"), line_of(u.text, "int x1")]


def test_symbolic_sample_renders_size_symbols(project):
    _gemm(project)
    u = project.render("gemm.cu.jinja", sample="dynamic")
    assert "int64_t rows = M;" in u.text
    assert "(const half* X, const half* W, half* Y, int64_t M, size_t* workspace_size" in u.text
    assert u.signature.to_json({"M": 1024})["args"][-1]["value"] == 1024


def test_hover_spans_what_an_expression_rendered_to(project):
    _gemm(project)
    u = project.render("gemm.cu.jinja")
    ln = line_of(GEMM, "int x{{ i }}")
    col = GEMM.splitlines()[ln - 1].index("{{ i }} =") + 3
    _frame, spans = u.source_map.expression_at(str(project.root / "gemm.cu.jinja"), ln, col)
    assert [u.text[s.start:s.end] for s in spans] == ["0", "1"]


def test_extends_blocks_map_to_the_child(project):
    project.write("base.cu.jinja", "// base\n{% block body %}{% endblock %}\n// end\n")
    project.write("child.cu.jinja",
                  '{#- cutlens\n[variants]\nn = [3]\n-#}\n{% extends "base.cu.jinja" %}\n'
                  "{% block body %}\nint n = {{ n }};\n{% endblock %}\n")
    u = project.render("child.cu.jinja")
    assert _origin(u, "// base") == ("base.cu.jinja", 1)
    assert _origin(u, "int n = 3;") == ("child.cu.jinja", 7)
    assert _origin(u, "// end") == ("base.cu.jinja", 3)


def test_set_block_and_macro_values_stay_clean(project):
    project.write("k.cu.jinja", """\
{#- cutlens
[variants]
kind = ["a"]
-#}
{% macro tname() %}float{% endmacro %}
{% set name %}cool{% endset %}
{% if name == "cool" %}int ok = 1;{% endif %}
// {{ template.cute_int(tname(), "t") }}
""")
    u = project.render("k.cu.jinja")
    assert "int ok = 1;" in u.text
    assert "// float /* t */" in u.text
    assert "\ue000" not in u.text and "\ue002" not in u.text


def test_line_directives(project):
    _gemm(project)
    u = project.render("gemm.cu.jinja")
    text = u.with_line_directives()
    gemm = str(project.root / "gemm.cu.jinja")
    lines = text.splitlines()
    i = lines.index("  int inc = 1;")
    assert lines[i - 2].startswith('#line 1 "') and lines[i - 2].endswith('inc.cuh.jinja"')
    # What a compiler honouring #line sees for each line is exactly the source map's origin.
    cur_file, cur_line, seen = None, 0, 0
    for s in lines:
        if s.startswith("#line "):
            _, n, f = s.split(" ", 2)
            cur_file, cur_line = f.strip('"'), int(n)
            continue
        seen += 1
        o = u.source_map.origin(seen)
        if o is not None:
            assert (cur_file, cur_line) == (o.file, o.line), (seen, s)
        cur_line += 1
    assert seen == len(u.text.splitlines())
    assert lines[0] == f'#line {line_of(GEMM, "{% import")} "{gemm}"'


def test_companion_output_is_rendered_with_its_own_map(project):
    project.write("attn_config.jinja", "#define HEAD_DIM {{ head_dim }}\n"
                                       "using DTypeQ = {{ dtype_q }};\n")
    project.write("attn_inst.cu.jinja", """\
{#- cutlens
[variants]
head_dim = [64, 128]
dtype_q = ["half"]
[companions]
"config.inc" = "attn_config.jinja"
-#}
#include "config.inc"
int hd = HEAD_DIM;
""")
    t = project.load("attn_inst.cu.jinja")
    assert t.errors == []
    s = t.sample(None)
    u = project.renderer.render(t, s, t.variant(s, "head_dim=128 half"))
    assert isinstance(u, RenderedUnit)
    comp = u.companions["config.inc"]
    # jinja2's own render (FlashInfer's): the final newline dropped (issue 16, item 12)
    assert comp.text == "#define HEAD_DIM 128\nusing DTypeQ = half;"
    o = comp.source_map.origin(2)
    assert o.file.endswith("attn_config.jinja") and o.line == 2


def test_template_class_brings_project_helpers(project):
    project.write("helpers.py", """
from cutlens.render.hooks import TemplateContext

class GemmTemplate(TemplateContext):
    def render_gemm_arguments(self, x):
        return f"{{ {self.kernel.ptr(x)}, {self.kernel.stride(x, 0)} }}"
""")
    project.write("g.cu.jinja", """\
{#- cutlens
template_class = "helpers:GemmTemplate"
[samples.s]
X = { dtype = "float32", size = [8, 4] }
-#}
{{ kernel.def_kernel(inputs=[X], outputs=[], names_str="X") }};
auto args = {{ template.render_gemm_arguments(X) }};
""")
    u = project.render("g.cu.jinja")
    assert isinstance(u, RenderedUnit), getattr(u, "diagnostics", None)
    assert "auto args = { X, 4L };" in u.text


def test_per_template_table_in_project_config(project):
    project.write("cutlens.toml", """
arch = "sm_80"
[template."vendor/kernel_inst.jinja".samples.small]
A = { dtype = "float32", size = [16] }
[template."vendor/kernel_inst.jinja".variants]
unroll = [1, 4]
""")
    project.write("vendor/kernel_inst.jinja", "// {{ A.get_size() }} unroll {{ unroll }}\n")
    t = project.load("vendor/kernel_inst.jinja")
    assert t.config.arch == "sm_80"
    assert [v.name for v in t.variants(t.samples[0])] == ["unroll=1", "unroll=4"]
    u = project.renderer.render(t, t.samples[0], t.variants(t.samples[0])[1])
    assert u.text == "// [16] unroll 4"  # as jinja2 renders it: no final newline


def test_pyproject_tool_cutlens(project):
    project.write("pyproject.toml", '[project]\nname = "x"\n[tool.cutlens]\narch = "sm_89"\n'
                                    'defines = ["FOO=1"]\n')
    project.write("a.cu.jinja", "{#- cutlens\n[variants]\nv = [1]\n-#}\nint v = {{ v }};\n")
    t = project.load("a.cu.jinja")
    assert t.config.arch == "sm_89" and t.config.defines == ["FOO=1"]


def test_render_time_limit(project):
    project.write("slow.cu.jinja", """\
{#- cutlens
[variants]
n = [1]
-#}
{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}
""")
    t = project.load("slow.cu.jinja")
    s = t.sample(None)
    t0 = time.monotonic()
    r = project.renderer.render(t, s, t.variant(s, None), timeout_s=0.3)
    assert time.monotonic() - t0 < 3
    assert isinstance(r, RenderFailure)
    assert r.diagnostics[0].code == "timeout"
    assert r.diagnostics[0].line == 5


def test_sandbox_blocks_python_internals(project):
    project.write("evil.cu.jinja", "{#- cutlens\n[variants]\nv = [1]\n-#}\n"
                                   "{{ v.__class__.__subclasses__() }}\n")
    r = project.render("evil.cu.jinja")
    assert isinstance(r, RenderFailure)
    d = r.diagnostics[0]
    assert d.line == 5 and d.source == "jinja"


def test_overlay_text_wins_over_disk(project):
    _gemm(project)
    project.renderer.overlays[str(project.root / "inc.cuh.jinja")] = "  int inc = 2;\n"
    u = project.render("gemm.cu.jinja")
    assert "int inc = 2;" in u.text


def test_literal_edit_reuses_the_compile(project):
    """A keystroke in C++ text swaps literal strings in the compiled template (no re-parse);
    any other edit recompiles. Both render exactly what a fresh compile renders."""
    _gemm(project)
    path = str(project.root / "gemm.cu.jinja")
    t = project.load("gemm.cu.jinja")
    s = t.sample(None)
    v = t.variant(s, None)
    env = project.renderer.environment(t)
    project.renderer.render(t, s, v)
    before = env.fast_reloads

    def render_with(text):
        project.renderer.overlays[path] = text
        fresh = Renderer()
        fresh.overlays[path] = text
        u = project.renderer.render(t, s, v)
        assert u.text == fresh.render(t, s, v).text
        return u

    edited = GEMM.replace("return 0;", "return 7;").replace("#include <cstdint>",
                                                             "#include <cstddef>")
    u = render_with(edited)
    assert env.fast_reloads == before + 1
    assert "return 7;" in u.text and "#include <cstddef>" in u.text
    assert u.source_map.origin(line_of(u.text, "return 7;")).line == line_of(GEMM, "return 0")
    u = render_with(edited.replace("{{ schedule }}", "{{ schedule | upper }}"))
    assert env.fast_reloads == before + 1  # an expression changed: recompiled
    assert "COOPERATIVE" in u.text
